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
  /// When the client last sent or took something (ms, monotonic).
  let lastActivity = Atomic<UInt64>(Connection.nowMs())
  /// When the request now arriving began (ms), 0 when none is half-sent.
  let partialSince = Atomic<UInt64>(0)
  /// Set when the server ended it to admit another client.
  let evicted = Atomic<Bool>(false)

  static func nowMs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
  }

  /// Marks the client as active (a read, or a write it took).
  public func touch() { lastActivity.store(Connection.nowMs(), ordering: .relaxed) }

  /// The protocol says whether a request is half-received; returns how long
  /// (seconds) it has been arriving, 0 when none is.
  @discardableResult
  public func setPartial(_ partial: Bool) -> Double {
    guard partial else {
      partialSince.store(0, ordering: .relaxed)
      return 0
    }
    let now = Connection.nowMs()
    let since = partialSince.load(ordering: .relaxed)
    if since == 0 {
      partialSince.store(now, ordering: .relaxed)
      return 0
    }
    return Double(now - since) / 1000
  }

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
      if n > 0 { touch() }
      return n
    }
  }

  /// Writes all bytes; false when the peer is gone or does not read (send timeout).
  @discardableResult
  public func write(_ bytes: [UInt8]) -> Bool {
    let ok = bytes.withUnsafeBytes { SocketCalls.sendAll(fd, $0) }
    if ok { touch() }
    return ok
  }

  /// Marks the connection as working on a request, so a graceful stop lets it finish.
  public func setBusy(_ value: Bool) { busy.store(value, ordering: .relaxed) }

  /// Wakes a handler blocked in `read` (it sees end of input).
  func shutdownRead() { _ = Glibc.shutdown(fd, Int32(SHUT_RD)) }

  /// Ends the connection from outside (eviction): its handler sees end of input or a failed write.
  func evict() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

  public func setReceiveTimeout(seconds: Double) { SocketCalls.setTimeout(fd, option: SO_RCVTIMEO, seconds: seconds) }
}

/// Thread-per-connection server with a connection cap. Handlers may block
/// (libpq, recv): each runs on its own OS thread, never on Swift
/// concurrency's cooperative pool, whose few threads a blocking call would starve.
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
  /// Connections told to go that have not finished yet (the map may hold
  /// that many over the cap meanwhile).
  let evictionsInFlight = Atomic<Int>(0)
  /// Connections evicted at the cap since start (a metric).
  public var evictions: Int { evictedTotal.load(ordering: .relaxed) }
  let evictedTotal = Atomic<Int>(0)
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
      // At the cap, a newcomer takes the place of the connection that
      // deserves it least: the one whose request has been arriving longest
      // (a byte-at-a-time client), else the one idle longest. One that is
      // working on a request is never chosen.
      let admitted = connections.withLock { map -> Bool in
        if map.count >= options.maxConnections + evictionsInFlight.load(ordering: .relaxed) {
          let idle = map.values.filter { !$0.busy.load(ordering: .relaxed) && !$0.evicted.load(ordering: .relaxed) }
          let victim =
            idle.filter { $0.partialSince.load(ordering: .relaxed) != 0 }.min { $0.partialSince.load(ordering: .relaxed) < $1.partialSince.load(ordering: .relaxed) }
            ?? idle.min { $0.lastActivity.load(ordering: .relaxed) < $1.lastActivity.load(ordering: .relaxed) }
          guard let victim else { return false }
          victim.evicted.store(true, ordering: .relaxed)
          evictionsInFlight.add(1, ordering: .relaxed)
          evictedTotal.add(1, ordering: .relaxed)
          victim.evict()
        }
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
        if conn.evicted.load(ordering: .relaxed) { self.evictionsInFlight.subtract(1, ordering: .relaxed) }
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
