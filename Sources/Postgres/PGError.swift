/// A database failure. `description` is deliberately generic (kind and
/// SQLSTATE only) so that logging an error can never leak row data or
/// parameters; `debugDescription` has the server's message for debugging.
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
  }

  public let kind: Kind
  public let sqlState: String?
  public let constraint: String?
  let serverMessage: String

  public init(kind: Kind, sqlState: String? = nil, constraint: String? = nil, message: String) {
    self.kind = kind
    self.sqlState = sqlState
    self.constraint = constraint
    self.serverMessage = message
  }

  static func decoding(_ what: String) -> PGError { PGError(kind: .decoding, message: what) }

  public var description: String {
    "PGError(\(kind.rawValue)\(sqlState.map { ", SQLSTATE \($0)" } ?? "")\(constraint.map { ", constraint \($0)" } ?? ""))"
  }

  public var debugDescription: String { "\(description): \(serverMessage)" }

  public var isConnectionFailure: Bool {
    kind == .connection || kind == .poolTimeout || (sqlState?.hasPrefix("08") ?? false) || sqlState == "57P01"
      || sqlState == "57P02" || sqlState == "57P03"
  }
  public var isSerializationFailure: Bool { sqlState == "40001" }
  public var isDeadlock: Bool { sqlState == "40P01" }
  public var isUniqueViolation: Bool { sqlState == "23505" }
  public var isForeignKeyViolation: Bool { sqlState == "23503" }
  public var isQueryCanceled: Bool { sqlState == "57014" }
}
