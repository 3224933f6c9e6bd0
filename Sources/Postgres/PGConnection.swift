import CLibpq
import Foundation
import Synchronization

/// How to reach the database.
public struct PGConfig: Sendable {
  /// A libpq connection string: URL (`postgresql://…`) or `key=value` form.
  public var conninfo: String
  public var applicationName: String
  public var connectTimeoutSeconds: Int
  public var statementTimeoutMilliseconds: Int

  public init(conninfo: String, applicationName: String = "roster", connectTimeoutSeconds: Int = 5, statementTimeoutMilliseconds: Int = 60_000) {
    self.conninfo = conninfo
    self.applicationName = applicationName
    self.connectTimeoutSeconds = connectTimeoutSeconds
    self.statementTimeoutMilliseconds = statementTimeoutMilliseconds
  }
}

/// One libpq connection. The `PGconn*` lives in a Mutex so it is never used by
/// two threads at once (libpq's rule) and cannot be freed while in use.
/// A broken connection is re-established on the next call, and its prepared
/// statements are prepared again.
public final class PGConnection: Sendable {
  struct State {
    var conn: OpaquePointer?
    /// SQL text → prepared statement name, for this session.
    var prepared: [String: String] = [:]
    var nextStatement = 0
    var inTransaction = false
  }

  public let config: PGConfig
  private let state = Mutex(State())
  /// Channels the open transaction asked to notify after it commits.
  private let marked = Mutex<Set<String>>([])

  func markNotify(_ channel: String) { _ = marked.withLock { $0.insert(channel) } }

  func sendMarkedNotifications() {
    let channels = marked.withLock { m -> Set<String> in
      defer { m.removeAll() }
      return m
    }
    for c in channels { PGNotifySender.shared.send(c, config: config) }
  }

  func dropMarkedNotifications() { marked.withLock { $0.removeAll() } }
  /// Counts successful reconnects after a lost connection (for metrics).
  public let reconnects = Atomic<Int>(0)
  private let everConnected = Atomic<Bool>(false)
  static let maxPrepared = 512

  public init(config: PGConfig) {
    self.config = config
  }

  deinit {
    state.withLock { s in
      if let c = s.conn { PQfinish(c) }
      s.conn = nil
    }
  }

  /// Connects now (otherwise the first query connects).
  public func connect() throws(PGError) {
    try state.withLock { (s: inout State) throws(PGError) in _ = try ensureConnected(&s) }
  }

  public func close() {
    state.withLock { s in
      if let c = s.conn { PQfinish(c) }
      s.conn = nil
      s.prepared = [:]
    }
  }

  public var isConnected: Bool {
    state.withLock { s in s.conn.map { PQstatus($0) == CONNECTION_OK } ?? false }
  }

  /// Runs one statement with bind parameters, as a prepared statement.
  @discardableResult
  public func query(_ sql: SQL) throws(PGError) -> PGRows {
    try state.withLock { (s: inout State) throws(PGError) -> PGRows in try run(&s, sql.text, sql.binds) }
  }

  /// The first row of a statement that must return one; a missing row is
  /// an error naming `what`.
  public func single(_ sql: SQL, _ what: String = "the row") throws(PGError) -> PGRow {
    guard let row = try query(sql).first else { throw PGError.noRow(what) }
    return row
  }

  /// Runs SQL text without parameters through the simple protocol; several
  /// statements are allowed (migrations). Only for SQL from our own files.
  public func execute(script: String) throws(PGError) {
    try state.withLock { (s: inout State) throws(PGError) in
      let conn = try ensureConnected(&s)
      let res = PQexec(conn, script)
      defer { PQclear(res) }
      try check(res, conn: conn, s: &s)
    }
  }

  /// The socket to `poll` on for notifications (LISTEN), after connecting.
  func withRaw<R: Sendable>(_ body: (OpaquePointer) throws(PGError) -> R) throws(PGError) -> R {
    try state.withLock { (s: inout State) throws(PGError) -> R in
      let conn = try ensureConnected(&s)
      return try body(conn)
    }
  }

  // MARK: Internals (called with the lock held)

  private func ensureConnected(_ s: inout State) throws(PGError) -> OpaquePointer {
    if let c = s.conn, PQstatus(c) == CONNECTION_OK { return c }
    if let c = s.conn {
      PQfinish(c)
      s.conn = nil
    }
    s.prepared = [:]
    s.inTransaction = false
    // Defaults first; a value in the user's connection string (expanded from
    // `dbname`) overrides them.
    let keys = ["connect_timeout", "application_name", "dbname"]
    let vals = [String(config.connectTimeoutSeconds), config.applicationName, config.conninfo]
    let conn = withCStrings(keys) { k in
      withCStrings(vals) { v in PQconnectdbParams(k, v, 1) }
    }
    guard let conn else { throw PGError(kind: .connection, message: "out of memory creating a connection") }
    guard PQstatus(conn) == CONNECTION_OK else {
      let msg = String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
      PQfinish(conn)
      throw PGError(kind: .connection, sqlState: "08001", message: msg)
    }
    PQsetNoticeProcessor(conn, { _, _ in }, nil)
    let setup = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET statement_timeout = \(config.statementTimeoutMilliseconds)"
    let res = PQexec(conn, setup)
    let ok = PQresultStatus(res) == PGRES_COMMAND_OK
    PQclear(res)
    guard ok else {
      let msg = String(cString: PQerrorMessage(conn))
      PQfinish(conn)
      throw PGError(kind: .connection, message: "session setup failed: \(msg)")
    }
    s.conn = conn
    if everConnected.exchange(true, ordering: .relaxed) { reconnects.add(1, ordering: .relaxed) }
    return conn
  }

  private func run(_ s: inout State, _ text: String, _ binds: [PGBindValue]) throws(PGError) -> PGRows {
    // Parameters travel as C strings: a NUL would silently cut the value.
    // Callers refuse it with a clear message; this is the safety net.
    for case .text(let v) in binds where v.utf8.contains(0) {
      throw PGError(kind: .query, sqlState: "22021", message: "a parameter contains a NUL character")
    }
    let conn = try ensureConnected(&s)
    var name = s.prepared[text]
    if name == nil, s.prepared.count < Self.maxPrepared {
      let newName = "roster_s\(s.nextStatement)"
      s.nextStatement += 1
      let res = PQprepare(conn, newName, text, Int32(binds.count), nil)
      defer { PQclear(res) }
      try check(res, conn: conn, s: &s)
      s.prepared[text] = newName
      name = newName
    }
    let res: OpaquePointer? = withBinds(binds) { values, count in
      if let name {
        return PQexecPrepared(conn, name, count, values, nil, nil, 0)
      }
      return PQexecParams(conn, text, count, nil, values, nil, nil, 0)
    }
    defer { PQclear(res) }
    try check(res, conn: conn, s: &s)
    guard let res else { throw PGError(kind: .connection, message: "no result from the server") }
    return copyRows(res)
  }

  private func check(_ res: OpaquePointer?, conn: OpaquePointer, s: inout State) throws(PGError) {
    let status = res.map { PQresultStatus($0) } ?? PGRES_FATAL_ERROR
    if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY { return }
    func field(_ code: Character) -> String? {
      res.flatMap { PQresultErrorField($0, Int32(code.asciiValue!)) }.map { String(cString: $0) }
    }
    // The primary message and the DETAIL line are kept apart: DETAIL quotes
    // row values and must stay out of logs (PGError.description).
    let primary = field("M") ?? String(cString: PQerrorMessage(conn)).trimmingCharacters(in: .whitespacesAndNewlines)
    let sqlState = field("C")
    // Every error the server reports carries a SQLSTATE; one without it (or
    // no result at all) is libpq's own: the server went away. After a failed
    // write libpq still says CONNECTION_OK until it reads, so the connection
    // is dropped here and the next use connects afresh. Found under load
    // while PostgreSQL crashed: these surfaced as internal errors.
    if PQstatus(conn) != CONNECTION_OK || res == nil || sqlState == nil {
      s.prepared = [:]
      if PQstatus(conn) == CONNECTION_OK, s.conn == conn {
        PQfinish(conn)
        s.conn = nil
        s.inTransaction = false
      }
      throw PGError(kind: .connection, sqlState: sqlState ?? "08006", message: primary.isEmpty ? "connection lost" : primary)
    }
    // A statement that failed to prepare is not cached; nothing to undo.
    throw PGError(kind: .query, sqlState: sqlState, constraint: field("n"), table: field("t"), message: primary, detail: field("D"))
  }

  private func copyRows(_ res: OpaquePointer) -> PGRows {
    let nRows = Int(PQntuples(res))
    let nCols = Int(PQnfields(res))
    var columns: [String] = []
    columns.reserveCapacity(nCols)
    for c in 0..<nCols { columns.append(String(cString: PQfname(res, Int32(c)))) }
    var values: [[String?]] = []
    values.reserveCapacity(nRows)
    for r in 0..<nRows {
      var row: [String?] = []
      row.reserveCapacity(nCols)
      for c in 0..<nCols {
        if PQgetisnull(res, Int32(r), Int32(c)) == 1 {
          row.append(nil)
        } else {
          row.append(String(cString: PQgetvalue(res, Int32(r), Int32(c))))
        }
      }
      values.append(row)
    }
    let affected = Int(String(cString: PQcmdTuples(res))) ?? 0
    return PGRows(columns: columns, values: values, affected: affected)
  }
}

/// Calls `body` with a NULL-terminated-free array of C strings that live for the call.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
  let dup = strings.map { strdup($0) }
  defer { dup.forEach { free($0) } }
  var ptrs: [UnsafePointer<CChar>?] = dup.map { UnsafePointer($0) }
  ptrs.append(nil)
  return ptrs.withUnsafeBufferPointer { body($0.baseAddress!) }
}

func withBinds<R>(_ binds: [PGBindValue], _ body: (UnsafePointer<UnsafePointer<CChar>?>?, Int32) -> R) -> R {
  if binds.isEmpty { return body(nil, 0) }
  let dup: [UnsafeMutablePointer<CChar>?] = binds.map {
    switch $0 {
    case .null: return nil
    case .text(let s): return strdup(s)
    }
  }
  defer { dup.forEach { free($0) } }
  let ptrs: [UnsafePointer<CChar>?] = dup.map { $0.map { UnsafePointer($0) } }
  return ptrs.withUnsafeBufferPointer { body($0.baseAddress, Int32(binds.count)) }
}
