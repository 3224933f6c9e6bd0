import JSON

/// A JSON-RPC 2.0 error object. Application errors carry a stable snake_case
/// `data.reason` next to a sentence for people (`message`).
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
  public var code: Int
  public var message: String
  public var data: JSONValue?

  public init(code: Int, message: String, data: JSONValue? = nil) {
    self.code = code
    self.message = message
    self.data = data
  }

  public init(code: Int, reason: String, message: String, extra: [String: JSONValue] = [:]) {
    var d = extra
    d["reason"] = .string(reason)
    self.init(code: code, message: message, data: .object(d))
  }

  public var reason: String? { data?["reason"]?.stringValue }
  public var description: String { "RPCError(\(code), \(reason ?? "-")): \(message)" }

  public var json: JSONValue {
    var o: [String: JSONValue] = ["code": .int(Int64(code)), "message": .string(message)]
    if let data { o["data"] = data }
    return .object(o)
  }
}

/// The codes the SPEC names.
extension RPCError {
  public enum Code {
    public static let parseError = -32700
    public static let invalidRequest = -32600
    public static let methodNotFound = -32601
    public static let invalidParams = -32602
    public static let internalError = -32603
    public static let notFound = -32001
    public static let conflict = -32002
    public static let forbidden = -32003
    public static let unavailable = -32004
  }

  public static func parseError(_ detail: String) -> RPCError {
    RPCError(code: Code.parseError, reason: "parse_error", message: "Parse error: \(detail).")
  }
  public static func invalidRequest(_ detail: String, reason: String = "invalid_request") -> RPCError {
    RPCError(code: Code.invalidRequest, reason: reason, message: "Invalid Request: \(detail).")
  }
  public static func methodNotFound(_ method: String) -> RPCError {
    RPCError(
      code: Code.methodNotFound, reason: "method_not_found",
      message: "Method not found: '\(method.prefix(100))'. Call rpc.discover for the list of methods.")
  }
  /// Validation failure of one parameter.
  public static func invalidParam(_ param: String, _ message: String, reason: String = "invalid_param") -> RPCError {
    RPCError(code: Code.invalidParams, reason: reason, message: message, extra: ["param": .string(param)])
  }
  public static func invalidParams(_ message: String, reason: String = "invalid_params") -> RPCError {
    RPCError(code: Code.invalidParams, reason: reason, message: message)
  }
  public static func internalError() -> RPCError {
    RPCError(code: Code.internalError, reason: "internal_error", message: "Internal error; the server log has details.")
  }
  public static func notFound(_ what: String, reason: String? = nil) -> RPCError {
    RPCError(
      code: Code.notFound, reason: reason ?? "\(what.lowercased().split(separator: " ").joined(separator: "_"))_not_found",
      message: "\(what) not found.")
  }
  public static func conflict(_ reason: String, _ message: String, extra: [String: JSONValue] = [:]) -> RPCError {
    RPCError(code: Code.conflict, reason: reason, message: message, extra: extra)
  }
  public static func forbidden(_ reason: String, _ message: String) -> RPCError {
    RPCError(code: Code.forbidden, reason: reason, message: message)
  }
  public static func unavailable(_ message: String, reason: String = "unavailable") -> RPCError {
    RPCError(code: Code.unavailable, reason: reason, message: message)
  }
}

/// Errors from lower layers that know how to present themselves over RPC.
public protocol RPCErrorConvertible: Error {
  var rpcError: RPCError { get }
}
