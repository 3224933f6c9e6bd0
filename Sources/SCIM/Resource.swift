import JSON

/// Turns IdP JSON into the stored form: canonical attribute names (input
/// names are case-insensitive), values coerced to their declared types
/// (Entra's "False"), read-only attributes and `password` dropped, the
/// enterprise extension under its URN.
public struct ResourceNormalizer: Sendable {
  public let kind: ResourceKind

  public init(kind: ResourceKind) { self.kind = kind }

  /// Attributes the service manages itself; ignored in input (RFC 7644 §3.3: readOnly input is ignored).
  static let ignored: Set<String> = ["id", "meta", "schemas", "groups", "password"]

  public func normalize(_ body: [String: JSONValue]) throws(SCIMError) -> [String: JSONValue] {
    var out: [String: JSONValue] = [:]
    if let schemas = body.first(where: { $0.key.lowercased() == "schemas" })?.value {
      guard let list = schemas.arrayValue?.compactMap(\.stringValue) else { throw .invalidSyntax("'schemas' must be an array of URNs.") }
      let known = [kind.core.id] + kind.extensions.map(\.id) + URN.tolerated
      for urn in list where !known.contains(where: { $0.lowercased() == urn.lowercased() }) {
        throw .invalidSyntax("Unknown schema '\(urn.prefix(200))' for a \(kind.name).")
      }
    }
    for (key, value) in body {
      let lower = key.lowercased()
      if Self.ignored.contains(lower) && !(kind.name == "Group" && lower == "groups") { continue }
      if let ext = kind.extensionSchema(key) {
        guard case .object(let inner) = value else {
          if value.isNull { continue }
          throw .invalidSyntax("'\(ext.id)' must be an object.")
        }
        var e = (out[ext.id]?.objectValue) ?? [:]
        for (k, v) in inner {
          guard let def = ext.attribute(k) else { continue }
          if let nv = try coerce(v, def, name: k) { e[def.name] = nv } else { e[def.name] = nil }
        }
        if !e.isEmpty { out[ext.id] = .object(e) }
        continue
      }
      if lower.hasPrefix("urn:") {
        // A flat extension key such as urn:…:enterprise:2.0:User:department.
        guard let path = try? AttrPath.parse(key), let urn = path.urn, let ext = kind.extensionSchema(urn), let def = ext.attribute(path.name)
        else { continue }
        var e = (out[ext.id]?.objectValue) ?? [:]
        e[def.name] = try coerce(value, def, name: path.name)
        out[ext.id] = .object(e)
        continue
      }
      guard let def = kind.attribute(key) else { continue }  // unknown attributes are ignored
      if def.mutability == .readOnly { continue }
      if let nv = try coerce(value, def, name: def.name) { out[def.name] = nv }
    }
    return out
  }

  /// Indexed attributes hold less than other text (an index row has a size limit).
  public static let maxBytes: [String: Int] = ["userName": 1024, "externalId": 1024, "displayName": 1024, "emails.value": 1024]
  public static let defaultMaxBytes = 8192

  /// Text a database can store and index: no U+0000, within its limit.
  static func checkText(_ s: String, name: String) throws(SCIMError) {
    if s.utf8.contains(0) { throw .invalidValue("'\(name)' contains a NUL character (U+0000), which text cannot hold.") }
    let limit = maxBytes[name] ?? defaultMaxBytes
    if s.utf8.count > limit { throw .invalidValue("'\(name)' is longer than \(limit) bytes (the limit for this attribute).") }
  }

  /// Coerces one value to its definition; nil means "absent" (JSON null, empty array).
  public func coerce(_ v: JSONValue, _ def: AttributeDef, name: String) throws(SCIMError) -> JSONValue? {
    if v.isNull { return nil }
    if def.multiValued {
      var items: [JSONValue]
      switch v {
      case .array(let a): items = a
      default: items = [v]  // a single value where a list belongs
      }
      var out: [JSONValue] = []
      for item in items where !item.isNull {
        if let c = try coerceSingle(item, def, name: name) { out.append(c) }
      }
      return out.isEmpty ? nil : .array(out)
    }
    if case .array(let a) = v {
      // Entra sends manager as [{"$ref": …, "value": …}].
      guard a.count <= 1 else { throw .invalidValue("'\(name)' takes a single value, got a list of \(a.count).") }
      guard let first = a.first else { return nil }
      return try coerceSingle(first, def, name: name)
    }
    return try coerceSingle(v, def, name: name)
  }

  func coerceSingle(_ v: JSONValue, _ def: AttributeDef, name: String) throws(SCIMError) -> JSONValue? {
    // RFC 7643 §2.5: null means "unassigned", at every level (Entra sends "$ref": null).
    if v.isNull { return nil }
    switch def.kind {
    case .complex:
      switch v {
      case .object(let o):
        var out: [String: JSONValue] = [:]
        for (k, x) in o {
          guard let sub = def.sub(k) else { continue }
          if let c = try coerceSingle(x, sub, name: "\(name).\(sub.name)") { out[sub.name] = c }
        }
        return out.isEmpty ? nil : .object(out)
      case .string(let s) where def.sub("value") != nil:
        return ["value": .string(s)]  // manager as a plain id
      default:
        throw .invalidValue("'\(name)' must be an object.")
      }
    case .boolean:
      switch v {
      case .bool: return v
      case .string(let s) where s.lowercased() == "true": return .bool(true)
      case .string(let s) where s.lowercased() == "false": return .bool(false)
      default: throw .invalidValue("'\(name)' must be a boolean.")
      }
    case .integer:
      guard let i = v.intValue else { throw .invalidValue("'\(name)' must be an integer.") }
      return .int(i)
    case .decimal:
      guard let d = v.doubleValue else { throw .invalidValue("'\(name)' must be a number.") }
      return .double(d)
    case .string, .reference, .dateTime, .binary:
      switch v {
      case .string(let s):
        try Self.checkText(s, name: name)
        if def.name == roleAttributeName {
          let r = s.lowercased()
          guard roleAttributeValues.contains(r) else {
            throw .invalidValue("\(roleAttributeName) must be one of \(roleAttributeValues.joined(separator: ", ")); got '\(s.prefix(50))'.")
          }
          return .string(r)
        }
        return v
      case .int, .double: return .string(JSONWriter.string(v))
      case .bool(let b) where def.name != roleAttributeName: return .string(b ? "true" : "false")
      default: throw .invalidValue("'\(name)' must be a string.")
      }
    }
  }
}

/// `attributes=` / `excludedAttributes=` (RFC 7644 §3.4.2.5, §3.9).
public struct Projection: Sendable {
  var include: [AttrPath]
  var exclude: [AttrPath]

  public init(attributes: String?, excludedAttributes: String?) throws(SCIMError) {
    func parse(_ s: String?) throws(SCIMError) -> [AttrPath] {
      guard let s, !s.trimmingCharacters(in: .whitespaces).isEmpty else { return [] }
      var out: [AttrPath] = []
      for part in s.split(separator: ",") {
        out.append(try AttrPath.parse(part.trimmingCharacters(in: .whitespaces)))
      }
      return out
    }
    include = try parse(attributes)
    exclude = try parse(excludedAttributes)
  }

  public var isIdentity: Bool { include.isEmpty && exclude.isEmpty }

  /// True when `name` (top level) is excluded outright — e.g. members, so the
  /// service need not load them at all.
  public func excludes(_ name: String) -> Bool {
    let n = name.lowercased()
    if exclude.contains(where: { $0.urn == nil && $0.sub == nil && $0.name.lowercased() == n }) { return true }
    return !include.isEmpty && !include.contains { $0.name.lowercased() == n }
  }

  static let always: Set<String> = ["id", "schemas"]

  public func apply(_ resource: JSONValue, kind: ResourceKind) -> JSONValue {
    guard case .object(let o) = resource, !isIdentity else { return resource }
    var out: [String: JSONValue] = [:]
    if !include.isEmpty {
      for (k, v) in o where Self.always.contains(k) { out[k] = v }
      for p in include {
        if let urn = p.urn, urn != kind.core.id {
          guard case .object(let ext)? = o[urn], let (name, v) = ext.first(where: { $0.key.lowercased() == p.name.lowercased() }) else { continue }
          var e = out[urn]?.objectValue ?? [:]
          e[name] = pick(v, sub: p.sub)
          out[urn] = .object(e)
          continue
        }
        if let ext = kind.extensionSchema(p.name), let v = o[ext.id] {
          out[ext.id] = v
          continue
        }
        guard let (name, v) = o.first(where: { $0.key.lowercased() == p.name.lowercased() }) else { continue }
        if let sub = p.sub, case .object(let existing)? = out[name], case .object(let picked) = pick(v, sub: sub) {
          out[name] = .object(existing.merging(picked) { a, _ in a })
        } else {
          out[name] = pick(v, sub: p.sub)
        }
      }
      return .object(out)
    }
    out = o
    for p in exclude {
      if Self.always.contains(p.name) && p.sub == nil { continue }
      if let urn = p.urn, urn != kind.core.id {
        guard case .object(var ext)? = out[urn] else { continue }
        if let key = ext.keys.first(where: { $0.lowercased() == p.name.lowercased() }) { ext[key] = nil }
        out[urn] = ext.isEmpty ? nil : .object(ext)
        continue
      }
      guard let key = out.keys.first(where: { $0.lowercased() == p.name.lowercased() }) else { continue }
      if let sub = p.sub {
        out[key] = drop(out[key]!, sub: sub)
      } else {
        out[key] = nil
      }
    }
    return .object(out)
  }

  func pick(_ v: JSONValue, sub: String?) -> JSONValue {
    guard let sub else { return v }
    func one(_ x: JSONValue) -> JSONValue? {
      guard case .object(let o) = x, let (k, y) = o.first(where: { $0.key.lowercased() == sub.lowercased() }) else { return nil }
      return [k: y]
    }
    if case .array(let a) = v { return .array(a.compactMap(one)) }
    return one(v) ?? .object([:])
  }

  func drop(_ v: JSONValue, sub: String) -> JSONValue {
    func one(_ x: JSONValue) -> JSONValue {
      guard case .object(var o) = x else { return x }
      if let k = o.keys.first(where: { $0.lowercased() == sub.lowercased() }) { o[k] = nil }
      return .object(o)
    }
    if case .array(let a) = v { return .array(a.map(one)) }
    return one(v)
  }
}
