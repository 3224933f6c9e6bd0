import Foundation
import JSON

/// `[URN:]name[.sub]`, names as written (matching is case-insensitive).
public struct AttrPath: Sendable, Equatable, CustomStringConvertible {
  public var urn: String?
  public var name: String
  public var sub: String?

  public init(urn: String? = nil, name: String, sub: String? = nil) {
    self.urn = urn
    self.name = name
    self.sub = sub
  }

  static let knownURNs = [URN.user, URN.enterprise, URN.group]

  /// Parses `name`, `name.sub`, `urn:…:name[.sub]` (the URN may contain dots, e.g. "2.0").
  public static func parse(_ text: String) throws(SCIMError) -> AttrPath {
    var rest = Substring(text)
    var urn: String?
    let lower = text.lowercased()
    for u in knownURNs where lower.hasPrefix(u.lowercased() + ":") {
      urn = u
      rest = rest.dropFirst(u.count + 1)
      break
    }
    if urn == nil && lower.hasPrefix("urn:") {
      throw .invalidPath("Unknown schema in attribute path '\(text.prefix(200))'.")
    }
    let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 1 || parts.count == 2, parts.allSatisfy({ isName($0) }) else {
      throw .invalidPath("'\(text.prefix(200))' is not a valid attribute path.")
    }
    return AttrPath(urn: urn, name: String(parts[0]), sub: parts.count == 2 ? String(parts[1]) : nil)
  }

  static func isName<S: StringProtocol>(_ s: S) -> Bool {
    guard let f = s.first, f.isLetter || f == "$" else { return false }
    return s.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "$" }
  }

  public var description: String { (urn.map { $0 + ":" } ?? "") + name + (sub.map { "." + $0 } ?? "") }
}
