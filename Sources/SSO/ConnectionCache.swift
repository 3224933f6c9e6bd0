import Foundation
import Postgres
import RosterStore
import Synchronization

/// The connections behind ACS URLs, parsed (certificates and all) once
/// rather than on every sign-in. Trusted only while this process LISTENs on
/// `roster_sso`: configuring or updating SSO and changing a plan NOTIFY it,
/// and every notification (or a lost listener connection) empties the cache;
/// entries also expire after a minute.
final class ConnectionCache: Sendable {
  static let channel = "roster_sso"
  struct Entry {
    let workspace: WorkspaceRow
    let connection: StoredConnection
    let expires: ContinuousClock.Instant
  }
  final class Entries: Sendable {
    let map = Mutex<[String: Entry]>([:])
  }
  private let entries = Entries()
  let listener: PGListener

  init(config: PGConfig) {
    let entries = self.entries
    listener = PGListener(config: config, channels: [Self.channel]) { _, _ in entries.map.withLock { $0.removeAll() } }
  }

  func start() { listener.start() }
  func stop() { listener.stop() }
  func clear() { entries.map.withLock { $0.removeAll() } }

  func lookup(_ id: String) -> (WorkspaceRow, StoredConnection)? {
    guard listener.isListening else { return nil }
    return entries.map.withLock { m in
      guard let e = m[id] else { return nil }
      if e.expires < .now {
        m[id] = nil
        return nil
      }
      return (e.workspace, e.connection)
    }
  }

  func store(_ id: String, workspace: WorkspaceRow, connection: StoredConnection) {
    guard listener.isListening else { return }
    entries.map.withLock { m in
      if m.count > 10_000 { m.removeAll() }
      m[id] = Entry(workspace: workspace, connection: connection, expires: .now + .seconds(60))
    }
  }
}
