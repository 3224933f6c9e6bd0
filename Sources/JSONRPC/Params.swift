import Addresses
import JSON

/// The named params of a request, already checked against the method's
/// `ParamSpec`s. Accessors still throw (never trap) if asked for something the
/// spec did not guarantee.
public struct Params: Sendable {
  public let values: [String: JSONValue]

  public init(_ values: [String: JSONValue]) { self.values = values }

  public subscript(name: String) -> JSONValue? {
    guard let v = values[name], !v.isNull else { return nil }
    return v
  }

  public func has(_ name: String) -> Bool { values[name] != nil }

  public func string(_ name: String) throws(RPCError) -> String {
    guard let s = self[name]?.stringValue else { throw .invalidParam(name, "'\(name)' is required and must be a string.", reason: "missing_param") }
    return s
  }
  public func optionalString(_ name: String) -> String? { self[name]?.stringValue }

  /// One of a fixed set of words (a role, a mode…); the schema has checked it,
  /// this names the parameter if it is anything else.
  public func word<W: RawRepresentable>(_ name: String, as: W.Type = W.self) throws(RPCError) -> W where W.RawValue == String {
    let text = try string(name)
    guard let w = W(rawValue: text) else { throw .invalidParam(name, "'\(name)' cannot be '\(text)'.") }
    return w
  }

  public func optionalWord<W: RawRepresentable>(_ name: String, as: W.Type = W.self) throws(RPCError) -> W? where W.RawValue == String {
    self[name] == nil || self[name]?.isNull == true ? nil : try word(name, as: W.self)
  }

  public func int(_ name: String) throws(RPCError) -> Int64 {
    guard let i = self[name]?.intValue else { throw .invalidParam(name, "'\(name)' is required and must be an integer.", reason: "missing_param") }
    return i
  }
  public func optionalInt(_ name: String) -> Int64? { self[name]?.intValue }

  public func bool(_ name: String) throws(RPCError) -> Bool {
    guard let b = self[name]?.boolValue else { throw .invalidParam(name, "'\(name)' is required and must be a boolean.", reason: "missing_param") }
    return b
  }
  public func optionalBool(_ name: String) -> Bool? { self[name]?.boolValue }

  public func object(_ name: String) throws(RPCError) -> [String: JSONValue] {
    guard let o = self[name]?.objectValue else { throw .invalidParam(name, "'\(name)' is required and must be an object.", reason: "missing_param") }
    return o
  }
  public func optionalObject(_ name: String) -> [String: JSONValue]? { self[name]?.objectValue }
  public func optionalArray(_ name: String) -> [JSONValue]? { self[name]?.arrayValue }
}

/// Validation of params against a method's declared specs.
enum ParamValidator {
  /// Free-form text (inside `any` and `anyObject` params) is capped too.
  static let maxFreeTextBytes = 65_536

  /// No text anywhere in the params may contain U+0000: database text
  /// cannot hold it, and C strings would silently cut the value there.
  static func refuseNUL(_ v: JSONValue, name: String) throws(RPCError) {
    switch v {
    case .string(let s):
      if s.utf8.contains(0) {
        throw .invalidParam(name, "Parameter '\(name)' contains a NUL character (U+0000), which text cannot hold.", reason: "nul_character")
      }
    case .object(let o):
      for (k, x) in o {
        let path = name.isEmpty ? k : name + "." + k
        if k.utf8.contains(0) { throw .invalidParam(name, "A key in '\(name)' contains a NUL character (U+0000).", reason: "nul_character") }
        try refuseNUL(x, name: path)
      }
    case .array(let a):
      for (i, x) in a.enumerated() { try refuseNUL(x, name: "\(name)[\(i)]") }
    default: return
    }
  }

  /// Every string inside a free-form value is at most `maxFreeTextBytes`.
  static func capFreeText(_ v: JSONValue, name: String) throws(RPCError) {
    switch v {
    case .string(let s):
      if s.utf8.count > maxFreeTextBytes {
        throw .invalidParam(name, "Parameter '\(name)' is longer than \(maxFreeTextBytes) bytes (the limit).", reason: "too_long")
      }
    case .object(let o): for (k, x) in o { try capFreeText(x, name: name + "." + k) }
    case .array(let a): for (i, x) in a.enumerated() { try capFreeText(x, name: "\(name)[\(i)]") }
    default: return
    }
  }

  static func validate(_ value: [String: JSONValue], against specs: [ParamSpec], path: String = "") throws(RPCError) {
    // Apps often send `actor` with every call; where a method has no use for
    // it, it is ignored rather than refused. Any other unknown name is a typo.
    for key in value.keys where !specs.contains(where: { $0.name == key }) && !(path.isEmpty && key == "actor") {
      let known = specs.map(\.name).joined(separator: ", ")
      throw .invalidParam(
        path + key, "Unknown parameter '\(path + key)'. Known parameters: \(known.isEmpty ? "none" : known).",
        reason: "unknown_param")
    }
    // Every missing parameter at once, not one per round trip.
    let missing = specs.filter { $0.required && value[$0.name] == nil }.map { path + $0.name }
    if missing.count == 1 {
      throw .invalidParam(missing[0], "Missing required parameter '\(missing[0])'.", reason: "missing_param")
    } else if missing.count > 1 {
      throw RPCError(
        code: RPCError.Code.invalidParams, reason: "missing_param",
        message: "Missing required parameters: \(missing.map { "'\($0)'" }.joined(separator: ", ")).",
        extra: ["param": .string(missing[0]), "params": .array(missing.map { .string($0) })])
    }
    for spec in specs {
      guard let v = value[spec.name] else { continue }
      if v.isNull, !spec.required { continue }
      try check(v, spec.schema, name: path + spec.name)
    }
  }

  static func check(_ v: JSONValue, _ schema: ParamSchema, name: String) throws(RPCError) {
    func fail(_ expected: String) -> RPCError {
      .invalidParam(name, "Parameter '\(name)' must be \(expected), got \(v.typeName).")
    }
    switch schema {
    case .any: try capFreeText(v, name: name)
    case .nullable(let inner):
      if v.isNull { return }
      try check(v, inner, name: name)
    case .string(let maxLength):
      guard let s = v.stringValue else { throw fail("a string") }
      if s.utf8.count > maxLength {
        throw .invalidParam(name, "Parameter '\(name)' is longer than \(maxLength) bytes (the limit).", reason: "too_long")
      }
    case .uuid:
      guard let s = v.stringValue else { throw fail("a UUID string") }
      if !isUUID(s) { throw .invalidParam(name, "Parameter '\(name)' must be a UUID such as 3f2504e0-4f89-41d3-9a0c-0305e82c3301.") }
    case .email:
      guard let s = v.stringValue else { throw fail("an email address string") }
      if !isPlausibleEmail(s) { throw .invalidParam(name, "Parameter '\(name)' is not a valid email address.", reason: "invalid_email") }
    case .integer(let min, let max):
      guard let i = v.intValue else { throw fail("an integer") }
      if let min, i < min { throw .invalidParam(name, "Parameter '\(name)' must be at least \(min).") }
      if let max, i > max { throw .invalidParam(name, "Parameter '\(name)' must be at most \(max).") }
    case .boolean:
      guard v.boolValue != nil else { throw fail("a boolean") }
    case .enumeration(let allowed):
      guard let s = v.stringValue else { throw fail("one of \(allowed.joined(separator: ", "))") }
      if !allowed.contains(s) {
        throw .invalidParam(name, "Parameter '\(name)' must be one of: \(allowed.joined(separator: ", ")); got '\(s.prefix(100))'.")
      }
    case .object(let fields):
      guard let o = v.objectValue else { throw fail("an object") }
      try validate(o, against: fields, path: name + ".")
    case .anyObject:
      guard v.objectValue != nil else { throw fail("an object") }
      try capFreeText(v, name: name)
    case .array(let item, let maxItems):
      guard let a = v.arrayValue else { throw fail("an array") }
      if a.count > maxItems { throw .invalidParam(name, "Parameter '\(name)' has more than \(maxItems) items.") }
      for (n, e) in a.enumerated() { try check(e, item, name: "\(name)[\(n)]") }
    }
  }
}

