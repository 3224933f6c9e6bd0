import Foundation
import Postgres
import Synchronization

/// Remembers which directory a bearer token opens, so a SCIM request does not
/// pay a database round trip to authenticate. Entries are trusted only while
/// this process is LISTENing on `roster_directories`: enabling, rotating or
/// disabling a directory and changing a plan NOTIFY it, and every
/// notification (or a lost listener connection) empties the cache. Entries
/// also expire after a minute as a safety net.
final class TokenCache: Sendable {
  static let channel = "roster_directories"
  struct Entry {
    let scope: DirectoryScope
    let plan: String
    let expires: ContinuousClock.Instant
  }
  final class Entries: Sendable {
    let lock = Mutex<[String: Entry]>([:])
  }
  private let entries = Entries()
  let listener: PGListener

  init(config: PGConfig) {
    let entries = self.entries
    listener = PGListener(config: config, channels: [Self.channel]) { _, _ in
      entries.lock.withLock { $0.removeAll() }
    }
  }

  func start() { listener.start() }
  func stop() { listener.stop() }

  func lookup(_ hash: String) -> (DirectoryScope, String)? {
    guard listener.isListening else { return nil }
    return entries.lock.withLock { e in
      guard let entry = e[hash] else { return nil }
      if entry.expires < .now {
        e[hash] = nil
        return nil
      }
      return (entry.scope, entry.plan)
    }
  }

  /// Forgets everything now (this process changed a directory; other
  /// processes hear of it through the notification).
  func clear() { entries.lock.withLock { $0.removeAll() } }

  func store(_ hash: String, scope: DirectoryScope, plan: String) {
    guard listener.isListening else { return }
    entries.lock.withLock { e in
      if e.count > 10_000 { e.removeAll() }
      e[hash] = Entry(scope: scope, plan: plan, expires: .now + .seconds(60))
    }
  }
}
