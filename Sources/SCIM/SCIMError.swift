import Foundation
import JSON

/// An error in the SCIM error schema (RFC 7644 §3.12).
public struct SCIMError: Error, Sendable, Equatable, CustomStringConvertible {
  public var status: Int
  public var scimType: String?
  public var detail: String
  /// For 405: the methods the resource allows (the `Allow` header).
  public var allow: [String]?

  public init(_ status: Int, _ scimType: String?, _ detail: String) {
    self.status = status
    self.scimType = scimType
    self.detail = detail
  }

  public var json: JSONValue {
    var o: [String: JSONValue] = ["schemas": [.string(URN.error)], "status": .string(String(status)), "detail": .string(detail)]
    if let scimType { o["scimType"] = .string(scimType) }
    return .object(o)
  }

  public var description: String { "SCIM \(status) \(scimType ?? "-"): \(detail)" }

  public static func invalidFilter(_ d: String) -> SCIMError { SCIMError(400, "invalidFilter", d) }
  public static func invalidPath(_ d: String) -> SCIMError { SCIMError(400, "invalidPath", d) }
  public static func invalidValue(_ d: String) -> SCIMError { SCIMError(400, "invalidValue", d) }
  public static func invalidSyntax(_ d: String) -> SCIMError { SCIMError(400, "invalidSyntax", d) }
  public static func noTarget(_ d: String) -> SCIMError { SCIMError(400, "noTarget", d) }
  public static func mutability(_ d: String) -> SCIMError { SCIMError(400, "mutability", d) }
  public static func uniqueness(_ d: String) -> SCIMError { SCIMError(409, "uniqueness", d) }
  public static func notFound(_ d: String) -> SCIMError { SCIMError(404, nil, d) }
}

/// Errors from lower layers that know how to present themselves as SCIM
/// error JSON (the SCIM side of `RPCErrorConvertible`).
public protocol SCIMErrorConvertible: Error {
  var scimError: SCIMError { get }
}
