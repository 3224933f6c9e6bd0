import CLibpq
import Foundation
import Synchronization

/// LISTENs on fixed channels on a dedicated connection and calls `onNotify`
/// for each notification. Reconnects with back-off when the server goes away
/// and then calls `onNotify(nil)` so consumers re-scan what they may have missed.
public final class PGListener: Sendable {
  public typealias Handler = @Sendable (_ channel: String?, _ payload: String?) -> Void

  let connection: PGConnection
  let channels: [String]
  let onNotify: Handler
  let stopping = Atomic<Bool>(false)
  let listening = Atomic<Bool>(false)
  let done = DispatchSemaphore(value: 0)

  /// True while LISTEN is in effect: notifications are being received.
  /// Caches invalidated by notifications must not be trusted otherwise.
  public var isListening: Bool { listening.load(ordering: .acquiring) }

  /// Channel names are identifiers from our code (LISTEN takes no parameters),
  /// so they are checked to be plain lowercase identifiers.
  public init(config: PGConfig, channels: [String], onNotify: @escaping Handler) {
    precondition(channels.allSatisfy { $0.allSatisfy { $0.isLowercase || $0 == "_" || $0.isNumber } })
    var c = config
    c.applicationName += "-listen"
    c.statementTimeoutMilliseconds = 0
    self.connection = PGConnection(config: c)
    self.channels = channels
    self.onNotify = onNotify
  }

  public func start() {
    let t = Thread { [self] in self.loop() }
    t.name = "pg-listen"
    t.start()
  }

  public func stop() {
    guard !stopping.exchange(true, ordering: .relaxed) else { return }
    done.wait()
    listening.store(false, ordering: .releasing)
    connection.close()
  }

  private func loop() {
    defer { done.signal() }
    var backoff = 0.1
    var firstConnect = true
    while !stopping.load(ordering: .relaxed) {
      do {
        try connection.execute(script: channels.map { "LISTEN \($0)" }.joined(separator: "; "))
        backoff = 0.1
        if !firstConnect { onNotify(nil, nil) }
        firstConnect = false
        listening.store(true, ordering: .releasing)
        try waitForNotifications()
      } catch {
        listening.store(false, ordering: .releasing)
        onNotify(nil, nil)
        if stopping.load(ordering: .relaxed) { return }
        Thread.sleep(forTimeInterval: backoff)
        backoff = min(backoff * 2, 2)
      }
    }
  }

  private func waitForNotifications() throws(PGError) {
    while !stopping.load(ordering: .relaxed) {
      let sock = try connection.withRaw { conn throws(PGError) in PQsocket(conn) }
      var pfd = pollfd(fd: sock, events: Int16(POLLIN), revents: 0)
      let rc = poll(&pfd, 1, 250)
      if rc < 0 && errno != EINTR { throw PGError(kind: .connection, message: "poll failed") }
      let received: [(String, String)] = try connection.withRaw { conn throws(PGError) -> [(String, String)] in
        if PQconsumeInput(conn) == 0 || PQstatus(conn) != CONNECTION_OK {
          throw PGError(kind: .connection, message: "listen connection lost")
        }
        var out: [(String, String)] = []
        while let n = PQnotifies(conn) {
          out.append((String(cString: n.pointee.relname), String(cString: n.pointee.extra)))
          PQfreemem(n)
        }
        return out
      }
      for (channel, payload) in received { onNotify(channel, payload) }
      if rc == 0 {
        // Idle: check the connection is still alive (a silent server restart
        // is noticed on the next consumeInput after the socket closes).
        continue
      }
    }
  }
}

/// Keeps a cheap, current answer to "is the database reachable?" by pinging
/// on its own connection, so health checks answer at once even when the
/// server is down or hanging.
public final class PGHealthMonitor: Sendable {
  let connection: PGConnection
  let up = Atomic<Bool>(false)
  let stopping = Atomic<Bool>(false)
  let interval: Double
  let done = DispatchSemaphore(value: 0)

  public init(config: PGConfig, interval: Double = 0.25) {
    var c = config
    c.applicationName += "-health"
    c.connectTimeoutSeconds = 2
    c.statementTimeoutMilliseconds = 2000
    connection = PGConnection(config: c)
    self.interval = interval
  }

  public var isUp: Bool { up.load(ordering: .relaxed) }
  public var reconnects: Int { connection.reconnects.load(ordering: .relaxed) }

  /// Checks once now (so a process knows the state before serving).
  @discardableResult
  public func check() -> Bool {
    let ok = (try? connection.query("SELECT 1")) != nil
    up.store(ok, ordering: .relaxed)
    return ok
  }

  public func start() {
    let t = Thread { [self] in
      defer { self.done.signal() }
      while !self.stopping.load(ordering: .relaxed) {
        self.check()
        Thread.sleep(forTimeInterval: self.interval)
      }
    }
    t.name = "pg-health"
    t.start()
  }

  public func stop() {
    guard !stopping.exchange(true, ordering: .relaxed) else { return }
    done.wait()
    connection.close()
  }
}
