/// A database failure. `description` is deliberately generic (kind, SQLSTATE,
/// constraint and table only) so that logging an error can never leak row
/// data or parameters: the server's message and its DETAIL line (which
/// carries key values, e.g. `Key (lower(email))=(…)`) are only in
/// `debugDescription`, for debug-level logs.
public struct PGError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
  public enum Kind: String, Sendable {
    /// Could not connect, or the connection broke.
    case connection
    /// The server rejected a statement (see `sqlState`).
    case query
    /// No pooled connection became free in time.
    case poolTimeout
    /// A result did not have the shape our code expected.
    case decoding
    /// A row the statement needed was not there (it disappeared between two
    /// statements, e.g. deleted by a concurrent request).
    case noRow
  }

  public let kind: Kind
  public let sqlState: String?
  public let constraint: String?
  public let table: String?
  /// The server's primary message (may quote input values).
  let serverMessage: String
  /// The server's DETAIL line (quotes row values).
  let detail: String?

  public init(
    kind: Kind, sqlState: String? = nil, constraint: String? = nil, table: String? = nil, message: String, detail: String? = nil
  ) {
    self.kind = kind
    self.sqlState = sqlState
    self.constraint = constraint
    self.table = table
    self.serverMessage = message
    self.detail = detail
  }

  static func decoding(_ what: String) -> PGError { PGError(kind: .decoding, message: what) }

  /// A required row was missing; `what` names it in words (no values).
  public static func noRow(_ what: String) -> PGError { PGError(kind: .noRow, message: "\(what) is gone (changed concurrently)") }

  public var description: String {
    var s = "PGError(\(kind.rawValue)"
    if let sqlState { s += ", SQLSTATE \(sqlState)" }
    if let constraint { s += ", constraint \(constraint)" }
    if let table { s += ", table \(table)" }
    // Our own messages (decoding, missing rows) never carry data.
    if kind == .decoding || kind == .noRow || kind == .poolTimeout { s += ": \(serverMessage)" }
    return s + ")"
  }

  public var debugDescription: String { "\(description): \(serverMessage)\(detail.map { " DETAIL: \($0)" } ?? "")" }

  /// What an operator needs when the database cannot be reached: libpq's
  /// connection message (host, socket, reason) carries no row data.
  public var connectionMessage: String { kind == .connection ? serverMessage : description }

  public var isConnectionFailure: Bool {
    kind == .connection || kind == .poolTimeout || (sqlState?.hasPrefix("08") ?? false) || sqlState == "57P01"
      || sqlState == "57P02" || sqlState == "57P03"
  }
  public var isSerializationFailure: Bool { sqlState == "40001" }
  public var isDeadlock: Bool { sqlState == "40P01" }
  public var isUniqueViolation: Bool { sqlState == "23505" }
  public var isForeignKeyViolation: Bool { sqlState == "23503" }
  public var isQueryCanceled: Bool { sqlState == "57014" }
  /// A value the database could not take as its type (SQLSTATE class 22:
  /// a date out of range, a number too large…): bad input, not a bug.
  public var isDataException: Bool { sqlState?.hasPrefix("22") ?? false }
  /// Text the database cannot hold (a NUL, invalid encoding).
  public var isBadText: Bool { sqlState == "22021" }
}
