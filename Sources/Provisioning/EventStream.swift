import Foundation
import JSON
import JSONRPC
import Postgres
import RosterStore
import Sockets
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Wakes every subscriber of this process when any process commits events
/// (NOTIFY roster_events, sent after the writing transaction commits; see
/// PGNotifySender).
/// The feed query decides what each subscriber sees; a notification only
/// says "look now".
final class EventHub: Sendable {
  /// Subscriber id → its wake-up pipe. Written to under the lock, so a
  /// subscriber that unregisters (then closes its pipe) is never written to.
  final class Pipes: Sendable {
    let map = Mutex<[UInt64: (read: Int32, write: Int32)]>([:])
  }

  let pipes = Pipes()
  let nextId = Atomic<UInt64>(0)
  /// Set when the process begins to stop: subscribers say so and end.
  let stopping = Atomic<Bool>(false)

  func beginShutdown() {
    stopping.store(true, ordering: .releasing)
    pipes.map.withLock { all in
      var one: UInt8 = 1
      for p in all.values { _ = Glibc.write(p.write, &one, 1) }
    }
  }
  let listener: PGListener

  init(config: PGConfig) {
    let pipes = self.pipes
    listener = PGListener(config: config, channels: ["roster_events"]) { _, _ in
      pipes.map.withLock { all in
        var one: UInt8 = 1
        for p in all.values { _ = Glibc.write(p.write, &one, 1) }  // non-blocking: a full pipe is awake already
      }
    }
  }

  func start() { listener.start() }
  func stop() { listener.stop() }

  var subscriberCount: Int { pipes.map.withLock { $0.count } }

  /// A wake-up pipe for a new subscriber; it polls the returned read end.
  func register() -> (id: UInt64, fd: Int32)? {
    var p: [Int32] = [-1, -1]
    guard pipe(&p) == 0 else { return nil }
    for fd in p {
      _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
      _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }
    let id = nextId.add(1, ordering: .relaxed).newValue
    pipes.map.withLock { $0[id] = (p[0], p[1]) }
    return (id, p[0])
  }

  func unregister(_ id: UInt64) {
    if let p = pipes.map.withLock({ $0.removeValue(forKey: id) }) {
      close(p.write)
      close(p.read)
    }
  }
}

/// One events.subscribe connection (E1): the reply has been written; from
/// here on the connection carries `events.event` notifications in feed
/// order, each as soon as its transaction commits and is visible.
///
/// Bounds: at most `window` bytes are in the socket unread by the client
/// (so a final notification always fits); at most 500 more events are held
/// here; when the client has read nothing for 2 seconds and more than
/// `backlog` events wait beyond the socket, it gets `events.closed {reason:
/// "backlog_exceeded"}` and is disconnected. One that reads (even far
/// behind, catching up) is never cut off: what waits stays in the database. Input after the subscription is ignored; end of input ends it.
struct EventSubscription {
  let pool: PGPool
  let hub: EventHub
  let connection: Connection
  var cursor: EventLog.Cursor
  let workspaceId: String?
  let types: [String]?
  let backlog: Int
  let onEnd: @Sendable (_ reason: String) -> Void

  static let fetchBatch = 500

  mutating func run() {
    guard let (id, wake) = hub.register() else { return finish("no_pipe", nil) }
    defer { hub.unregister(id) }
    let fd = connection.fd
    var sndbuf: Int32 = 0
    var len = socklen_t(MemoryLayout<Int32>.size)
    getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len)
    // Leave room in the socket for the final notification.
    let window = Int(max(16 * 1024, min(128 * 1024, sndbuf / 2)))
    var queue: [(line: [UInt8], cursor: EventLog.Cursor)] = []
    var pending: [UInt8] = []  // the part of queue[0] not sent yet
    var retry: Int32 = 1000  // ms until the next look without a wake-up
    var lastLagCheck = ContinuousClock.now - .seconds(10)
    // When the client last took something (a send accepted, or the unread
    // bytes in the socket went down): a subscriber catching up is never cut off.
    var lastProgress = ContinuousClock.now
    var lastUnread = 0
    var delivered = cursor
    var inbox = [UInt8](repeating: 0, count: 4096)
    // A client may half-close after its request (socat does when its input
    // ends): keep streaming; a full close shows as a hang-up or a failed send.
    var inputOpen = true

    while true {
      if hub.stopping.load(ordering: .acquiring) { return finish("shutting_down", delivered) }
      // Fetch when little is held here; the cursor moves past what is queued.
      if queue.count < Self.fetchBatch / 2 {
        do {
          let page = try EventLog.list(pool, after: cursor, limit: Self.fetchBatch, workspaceId: workspaceId, types: types)
          for e in page.events {
            guard let c = e["cursor"]?.stringValue.flatMap(EventLog.Cursor.init) else { continue }
            queue.append((JSONWriter.bytes(["jsonrpc": "2.0", "method": "events.event", "params": e]) + [0x0A], c))
          }
          if let next = EventLog.Cursor(page.next), next > cursor { cursor = next }
          if !page.events.isEmpty { retry = 0 } else if retry < 1000 { retry = retry == 0 ? 5 : min(retry * 2, 1000) }
        } catch {
          retry = 1000  // the database is away: look again in a second
        }
      }
      // Send while the client keeps up (unread bytes in the socket under the window).
      let nowUnread = unread(fd)
      if nowUnread < lastUnread { lastProgress = ContinuousClock.now }
      lastUnread = nowUnread
      while !queue.isEmpty && unread(fd) < window {
        if pending.isEmpty { pending = queue[0].line }
        let n = pending.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
        if n < 0 {
          if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { break }
          return finish("client_gone", nil)
        }
        pending.removeFirst(n)
        if n > 0 {
          lastProgress = ContinuousClock.now
          connection.touch()  // a subscriber taking events is not idle (eviction at the cap)
        }
        if pending.isEmpty { delivered = queue.removeFirst().cursor }
      }
      lastUnread = unread(fd)
      // Not reading, and too far behind: what is held here plus what waits in the feed.
      if !queue.isEmpty, ContinuousClock.now - lastProgress > .seconds(2), ContinuousClock.now - lastLagCheck > .seconds(1) {
        lastLagCheck = ContinuousClock.now
        let waiting = queue.count + ((try? EventLog.count(pool, after: cursor, workspaceId: workspaceId, types: types, limit: backlog + 1)) ?? 0)
        if waiting > backlog { return finish("backlog_exceeded", delivered) }
      }
      var fds = [
        pollfd(fd: fd, events: (inputOpen ? Int16(POLLIN) : 0) | (queue.isEmpty ? 0 : Int16(POLLOUT)), revents: 0),
        pollfd(fd: wake, events: Int16(POLLIN), revents: 0),
      ]
      // While events are held and the socket is full, wake up now and then to measure the lag.
      let timeout: Int32 = queue.isEmpty ? (retry == 0 ? 0 : retry) : 250
      let rc = poll(&fds, 2, timeout)
      if rc < 0 && errno != EINTR { return finish("poll_failed", nil) }
      if inputOpen && fds[0].revents & Int16(POLLIN) != 0 {
        let n = recv(fd, &inbox, inbox.count, Int32(MSG_DONTWAIT))
        if n == 0 { inputOpen = false }
        if n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR { return finish("client_gone", nil) }
      }
      if fds[0].revents & Int16(POLLHUP | POLLERR) != 0 { return finish("client_gone", nil) }
      if fds[1].revents & Int16(POLLIN) != 0 {
        var drain = [UInt8](repeating: 0, count: 64)
        while Glibc.read(wake, &drain, drain.count) > 0 {}
        retry = 0
      }
    }
  }

  /// Bytes sent but not yet read by the client (Linux SIOCOUTQ).
  func unread(_ fd: Int32) -> Int {
    var n: Int32 = 0
    return ioctl(fd, UInt(0x5411), &n) == 0 ? Int(n) : 0
  }

  func finish(_ reason: String, _ delivered: EventLog.Cursor?) {
    let messages = [
      "backlog_exceeded": "More than \(backlog) events waited for this subscriber; subscribe again with after = cursor to resume where it stopped.",
      "shutting_down": "The process is stopping; subscribe again (to this or another copy) with after = cursor.",
    ]
    if let message = messages[reason], let delivered {
      let note: JSONValue = [
        "jsonrpc": "2.0", "method": "events.closed",
        "params": ["reason": .string(reason), "message": .string(message), "cursor": .string(delivered == .start ? "0" : delivered.text)],
      ]
      _ = connection.write(JSONWriter.bytes(note) + [0x0A])
    }
    onEnd(reason)
  }
}
