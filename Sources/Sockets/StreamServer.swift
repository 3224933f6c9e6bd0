import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// One accepted connection. Used by exactly one thread (its handler); the
/// server touches only `shutdownRead()` from outside, which is a syscall on a
/// file descriptor and safe to call from any thread.
public final class Connection: Sendable {
  public let fd: Int32
  public let peer: PeerCredentials?
  public let id: UInt64
  /// True while the handler is working on a request (not waiting for input).
  let busy = Atomic<Bool>(false)

  init(fd: Int32, peer: PeerCredentials?, id: UInt64) {
    self.fd = fd
    self.peer = peer
    self.id = id
  }

  /// Reads what is available (blocking). Returns 0 at end of input, -1 on error or timeout.
  public func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
    while true {
      let n = recv(fd, buffer.baseAddress, buffer.count, 0)
      if n < 0 && errno == EINTR { continue }
      return n
    }
  }

  /// Writes all bytes; false when the peer is gone or does not read (send timeout).
  @discardableResult
  public func write(_ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { SocketCalls.sendAll(fd, $0) }
  }

  /// Marks the connection as working on a request, so a graceful stop lets it finish.
  public func setBusy(_ value: Bool) { busy.store(value, ordering: .relaxed) }

  /// Wakes a handler blocked in `read` (it sees end of input).
  func shutdownRead() { _ = Glibc.shutdown(fd, Int32(SHUT_RD)) }

  public func setReceiveTimeout(seconds: Double) { SocketCalls.setTimeout(fd, option: SO_RCVTIMEO, seconds: seconds) }
}

/// Thread-per-connection server with a connection cap. Handlers may block
/// (libpq, recv): each runs on its own OS thread, never on Swift
/// concurrency's cooperative pool (see ENGINEERING.md).
public final class StreamServer: Sendable {
  public struct Options: Sendable {
    public var maxConnections: Int = 256
    /// A client that stops reading cannot hold a thread longer than this.
    public var sendTimeoutSeconds: Double = 10
    public var threadStackSize: Int = 512 * 1024
    public init() {}
  }

  public let listener: Listener
  let options: Options
  let handler: @Sendable (Connection) -> Void
  /// Sends a protocol-specific refusal to a connection over the cap before it is closed.
  let refuse: @Sendable (Int32) -> Void
  let connections = Mutex<[UInt64: Connection]>([:])
  let nextID = Atomic<UInt64>(0)
  let stopping = Atomic<Bool>(false)
  let acceptDone = DispatchSemaphore(value: 0)
  /// Self-pipe that wakes the accept loop's poll on stop.
  let wakeFDs: (Int32, Int32)

  public init(
    listener: Listener, options: Options = Options(), refuse: @escaping @Sendable (Int32) -> Void = { _ in },
    handler: @escaping @Sendable (Connection) -> Void
  ) {
    self.listener = listener
    self.options = options
    self.refuse = refuse
    self.handler = handler
    var fds: [Int32] = [0, 0]
    _ = pipe(&fds)
    SocketCalls.setCloseOnExec(fds[0])
    SocketCalls.setCloseOnExec(fds[1])
    wakeFDs = (fds[0], fds[1])
  }

  public var connectionCount: Int { connections.withLock { $0.count } }

  public func start() {
    let thread = Thread { [self] in self.acceptLoop() }
    thread.name = "accept \(listener.address)"
    thread.start()
  }

  private func acceptLoop() {
    defer { acceptDone.signal() }
    var pfds = [pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeFDs.0, events: Int16(POLLIN), revents: 0)]
    while !stopping.load(ordering: .acquiring) {
      let rc = poll(&pfds, 2, 1000)
      if rc < 0 && errno != EINTR { break }
      if pfds[1].revents != 0 || stopping.load(ordering: .acquiring) { break }
      guard rc > 0, pfds[0].revents & Int16(POLLIN) != 0 else { continue }
      let fd = accept(listener.fd, nil, nil)
      if fd < 0 {
        // EMFILE and friends: back off briefly rather than spin.
        if errno != EINTR && errno != EAGAIN && errno != ECONNABORTED { usleep(10_000) }
        continue
      }
      SocketCalls.setCloseOnExec(fd)
      SocketCalls.setTimeout(fd, option: SO_SNDTIMEO, seconds: options.sendTimeoutSeconds)
      if case .tcp = listener.address {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
      }
      let peer: PeerCredentials? = { if case .unix = listener.address { return SocketCalls.peerCredentials(fd) } else { return nil } }()
      let id = nextID.add(1, ordering: .relaxed).newValue
      let conn = Connection(fd: fd, peer: peer, id: id)
      let admitted = connections.withLock { map -> Bool in
        guard map.count < options.maxConnections else { return false }
        map[id] = conn
        return true
      }
      guard admitted else {
        refuse(fd)
        close(fd)
        continue
      }
      let thread = Thread { [self] in
        self.handler(conn)
        self.connections.withLock { _ = $0.removeValue(forKey: id) }
        close(fd)
      }
      thread.stackSize = options.threadStackSize
      thread.name = "conn \(id)"
      thread.start()
    }
  }

  /// Stops accepting, lets requests in flight finish (up to `grace`), then
  /// closes what is left and removes the socket file.
  public func stop(grace: Duration = .seconds(10)) {
    guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
    var one: UInt8 = 1
    _ = Glibc.write(wakeFDs.1, &one, 1)
    acceptDone.wait()
    listener.close()
    let deadline = ContinuousClock.now + grace
    // Idle connections are woken right away; busy ones after their reply is written.
    while ContinuousClock.now < deadline {
      let open = connections.withLock { Array($0.values) }
      if open.isEmpty { break }
      for c in open where !c.busy.load(ordering: .relaxed) { c.shutdownRead() }
      usleep(5_000)
    }
    for c in connections.withLock({ Array($0.values) }) { _ = Glibc.shutdown(c.fd, Int32(SHUT_RDWR)) }
    close(wakeFDs.0)
    close(wakeFDs.1)
  }
}
