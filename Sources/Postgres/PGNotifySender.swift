import Foundation
import Synchronization

/// NOTIFY after commit, coalesced, off the writers' path.
///
/// A NOTIFY inside the writing transaction holds PostgreSQL's notification
/// queue lock from pre-commit until the commit is durable, so every writer
/// that notifies commits one after another (measured with pgbench on the
/// SCIM create statement: 8 clients 35% slower with the NOTIFY than without).
/// Writers instead mark the channel on their connection
/// (`PGTransaction.notifyAfterCommit`); after COMMIT the pool hands it here,
/// and one thread sends one NOTIFY for however many commits marked it
/// meanwhile (and in the 2 ms after the first), on a connection of its own. A process that dies between a
/// commit and its NOTIFY costs listeners a wake-up, not an event: the feed's
/// subscribers look again on their own within a second.
public final class PGNotifySender: Sendable {
  public static let shared = PGNotifySender()

  private struct State {
    /// conninfo → where, and the channels to notify there.
    var pending: [String: (config: PGConfig, channels: Set<String>)] = [:]
    /// Open connections, most recently used last (a test process meets many databases).
    var connections: [(conninfo: String, connection: PGConnection)] = []
  }

  private let state = Mutex(State())
  private let wake = DispatchSemaphore(value: 0)
  private let started = Atomic<Bool>(false)
  /// Sent so far (for tests and metrics).
  public let sent = Atomic<Int>(0)
  static let maxConnections = 4

  public func send(_ channel: String, config: PGConfig) {
    _ = state.withLock { $0.pending[config.conninfo, default: (config, [])].channels.insert(channel) }
    if !started.exchange(true, ordering: .acquiringAndReleasing) {
      let t = Thread { [self] in self.loop() }
      t.name = "pg-notify"
      t.start()
    }
    wake.signal()
  }

  private func loop() {
    while true {
      wake.wait()
      // Gather the commits of the next two milliseconds into the same
      // NOTIFY (each is a transaction for the server).
      usleep(2_000)
      let work = state.withLock { s in
        defer { s.pending.removeAll() }
        return Array(s.pending.values)
      }
      for (config, channels) in work {
        let conn = connection(for: config)
        for channel in channels.sorted() {
          // A failure (the server is away) is not retried: listeners look
          // again on their own, and the next commit notifies again.
          if (try? conn.query("SELECT pg_notify(\(channel), '')")) != nil { sent.add(1, ordering: .relaxed) }
        }
      }
    }
  }

  private func connection(for config: PGConfig) -> PGConnection {
    state.withLock { s in
      if let i = s.connections.firstIndex(where: { $0.conninfo == config.conninfo }) {
        let c = s.connections.remove(at: i)
        s.connections.append(c)
        return c.connection
      }
      var c = config
      c.applicationName += "-notify"
      let conn = PGConnection(config: c)
      s.connections.append((config.conninfo, conn))
      if s.connections.count > Self.maxConnections { s.connections.removeFirst().connection.close() }
      return conn
    }
  }
}
