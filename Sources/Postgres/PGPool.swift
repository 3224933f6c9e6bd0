import Foundation
import Synchronization

/// A transaction in progress. Statements run on the connection the pool lent.
public struct PGTransaction: Sendable {
  public let connection: PGConnection

  /// Also used to run statements in autocommit mode on a lent connection.
  public init(connection: PGConnection) { self.connection = connection }

  @discardableResult
  public func query(_ sql: SQL) throws(PGError) -> PGRows { try connection.query(sql) }

  /// Wakes LISTENers on `channel` once this transaction has committed
  /// (coalesced with other commits; see PGNotifySender). Only inside
  /// `PGPool.transaction`: in autocommit mode call PGNotifySender directly.
  public func notifyAfterCommit(_ channel: String) { connection.markNotify(channel) }

  /// The first row, or nil.
  public func one(_ sql: SQL) throws(PGError) -> PGRow? { try connection.query(sql).first }

  /// The first row of a statement that must return one (an INSERT … RETURNING,
  /// a count, a row this transaction just wrote or locked). A missing row
  /// is an error naming `what`, never a crash.
  public func single(_ sql: SQL, _ what: String = "the row") throws(PGError) -> PGRow {
    guard let row = try connection.query(sql).first else { throw PGError.noRow(what) }
    return row
  }
}

/// Unwraps a row-backed value that must exist (loaded again after this
/// transaction locked or wrote it); nil is reported as a missing row.
public func required<T>(_ value: T?, _ what: String) throws(PGError) -> T {
  guard let value else { throw PGError.noRow(what) }
  return value
}

/// A fixed set of connections handed out one per caller (each caller is an OS
/// thread that may block on it). `transaction` retries the whole closure on
/// serialization failures, deadlocks and connections lost before COMMIT.
public final class PGPool: Sendable {
  public let config: PGConfig
  public let size: Int
  private let free: Mutex<[PGConnection]>
  private let all: [PGConnection]
  private let available: DispatchSemaphore
  public let checkoutTimeoutSeconds: Double
  public let maxAttempts = 5

  public init(config: PGConfig, size: Int = 8, checkoutTimeoutSeconds: Double = 10) {
    self.config = config
    self.size = size
    self.checkoutTimeoutSeconds = checkoutTimeoutSeconds
    let conns = (0..<size).map { _ in PGConnection(config: config) }
    all = conns
    free = Mutex(conns)
    available = DispatchSemaphore(value: size)
  }

  public var reconnects: Int { all.reduce(0) { $0 + $1.reconnects.load(ordering: .relaxed) } }

  /// Connections lent out now.
  public var inUse: Int { size - free.withLock { $0.count } }
  /// Checkouts that found every connection lent and had to wait, since start
  /// (growing under load means the pool is too small for the traffic).
  public var waits: Int { waitCount.load(ordering: .relaxed) }
  private let waitCount = Atomic<Int>(0)

  public func closeAll() { all.forEach { $0.close() } }

  /// Lends a connection for the duration of `body`.
  public func withConnection<R>(_ body: (PGConnection) throws -> R) throws -> R {
    if available.wait(timeout: .now()) != .success {
      waitCount.add(1, ordering: .relaxed)
      guard available.wait(timeout: .now() + checkoutTimeoutSeconds) == .success else {
        throw PGError(kind: .poolTimeout, message: "no database connection became free within \(checkoutTimeoutSeconds) s")
      }
    }
    let conn = free.withLock { $0.removeLast() }
    defer {
      free.withLock { $0.append(conn) }
      available.signal()
    }
    return try body(conn)
  }

  /// Runs `body` in a transaction and commits. Any error rolls back; retryable
  /// database errors run the whole closure again, so it must not have effects
  /// outside the database.
  @discardableResult
  public func transaction<R>(
    isolation: Isolation = .readCommitted, maxAttempts attempts: Int? = nil, _ body: (PGTransaction) throws -> R
  ) throws -> R {
    try withConnection { conn in try Self.runTransaction(conn, isolation: isolation, maxAttempts: attempts ?? maxAttempts, body) }
  }

  /// A read-only statement outside an explicit transaction.
  @discardableResult
  public func query(_ sql: SQL) throws -> PGRows {
    try withConnection { conn in
      do {
        return try conn.query(sql)
      } catch let e as PGError where e.isConnectionFailure {
        // The connection was stale (server restarted): one fresh try.
        return try conn.query(sql)
      }
    }
  }

  public enum Isolation: String, Sendable {
    case readCommitted = "BEGIN"
    case repeatableRead = "BEGIN ISOLATION LEVEL REPEATABLE READ"
    case serializable = "BEGIN ISOLATION LEVEL SERIALIZABLE"
  }

  public static func runTransaction<R>(
    _ conn: PGConnection, isolation: Isolation = .readCommitted, maxAttempts: Int = 5, _ body: (PGTransaction) throws -> R
  ) throws -> R {
    var attempt = 0
    while true {
      attempt += 1
      var committing = false
      do {
        try conn.execute(script: isolation.rawValue)
        let result = try body(PGTransaction(connection: conn))
        committing = true
        try conn.execute(script: "COMMIT")
        conn.sendMarkedNotifications()
        return result
      } catch let e as PGError {
        // A COMMIT whose outcome is unknown may have committed: a spurious
        // wake-up is harmless, a missing one is not.
        if committing && e.isConnectionFailure { conn.sendMarkedNotifications() } else { conn.dropMarkedNotifications() }
        if !(e.isConnectionFailure && committing) { try? conn.execute(script: "ROLLBACK") }
        let retryable = e.isSerializationFailure || e.isDeadlock || (e.isConnectionFailure && !committing && e.kind != .poolTimeout)
        if !retryable || attempt >= maxAttempts { throw e }
        // Jittered back-off: 5–10 ms, 10–20 ms, … so contenders drift apart.
        let base = 5_000 * (1 << min(attempt - 1, 5))  // at most 160–320 ms
        usleep(UInt32(base + Int.random(in: 0...base)))
      } catch {
        conn.dropMarkedNotifications()
        try? conn.execute(script: "ROLLBACK")
        throw error
      }
    }
  }
}
