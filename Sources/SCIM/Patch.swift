import JSON

/// A change to a group's membership, taken out of a PATCH so the service can
/// apply it with set-based SQL instead of rewriting a 10,000-entry list.
public enum MemberChange: Sendable, Equatable {
  case add([String])
  case remove([String])
  case removeAll
  case replace([String])
}

/// RFC 7644 §3.5.2 PATCH with what Okta and Entra really send (C2):
/// capitalised ops, string booleans, path-less values with dotted and URN
/// keys, upserts on filtered paths that match nothing, Entra's legacy
/// `Remove members` with a value list, Okta's `{id, displayName}` replace.
/// Atomic: it works on a copy and either returns the whole result or throws.
public struct PatchEngine: Sendable {
  public let kind: ResourceKind
  /// When true, operations on `members` are returned as `MemberChange`s instead of applied.
  public let externalMembers: Bool
  let normalizer: ResourceNormalizer

  public init(kind: ResourceKind, externalMembers: Bool = false) {
    self.kind = kind
    self.externalMembers = externalMembers
    normalizer = ResourceNormalizer(kind: kind)
  }

  public struct Result: Sendable {
    public var resource: [String: JSONValue]
    public var memberChanges: [MemberChange]
  }

  public enum Op: String, Sendable { case add, remove, replace }

  public func apply(_ body: JSONValue, to resource: [String: JSONValue], id: String) throws(SCIMError) -> Result {
    guard case .object(let b) = body else { throw .invalidSyntax("A PATCH body must be a JSON object.") }
    if let schemas = b.first(where: { $0.key.lowercased() == "schemas" })?.value,
      !(schemas.arrayValue ?? []).contains(where: { $0.stringValue?.lowercased() == URN.patchOp.lowercased() })
    {
      throw .invalidSyntax("A PATCH body must declare the schema \(URN.patchOp).")
    }
    guard let ops = b.first(where: { $0.key.lowercased() == "operations" })?.value.arrayValue, !ops.isEmpty else {
      throw .invalidSyntax("A PATCH body needs a non-empty 'Operations' array.")
    }
    var state = State(resource: resource, changes: [])
    for (n, raw) in ops.enumerated() {
      guard case .object(let o) = raw else { throw .invalidSyntax("Operation \(n + 1) is not an object.") }
      func field(_ name: String) -> JSONValue? { o.first { $0.key.lowercased() == name }?.value }
      guard let opText = field("op")?.stringValue, let op = Op(rawValue: opText.lowercased()) else {
        throw .invalidSyntax("Operation \(n + 1): 'op' must be add, remove or replace.")
      }
      let value = field("value")
      if let pathValue = field("path"), !pathValue.isNull {
        guard let path = pathValue.stringValue, !path.trimmedSpaces.isEmpty else {
          throw .invalidPath("Operation \(n + 1): 'path' must be a non-empty string.")
        }
        try applyPath(op, path.trimmedSpaces, value, &state, id: id)
      } else {
        guard op != .remove else { throw .noTarget("Operation \(n + 1): 'remove' needs a 'path'.") }
        guard case .object(let values)? = value else {
          throw .invalidSyntax("Operation \(n + 1): without a 'path', 'value' must be an object of attributes.")
        }
        for (key, v) in values {
          if let ext = kind.extensionSchema(key) {
            // {"urn:…:enterprise:2.0:User": {"department": …}}
            guard case .object(let inner) = v else { throw .invalidValue("'\(ext.id)' must be an object.") }
            for (k, x) in inner { try applyPath(op, ext.id + ":" + k, x, &state, id: id) }
          } else {
            try applyPath(op, key, v, &state, id: id)
          }
        }
      }
    }
    // Re-normalise the whole result, and check what must remain.
    let result = try normalizer.normalize(state.resource)
    for def in kind.core.attributes where def.required && result[def.name] == nil {
      throw .mutability("'\(def.name)' is required and cannot be removed.")
    }
    return Result(resource: result, memberChanges: state.changes)
  }

  struct State {
    var resource: [String: JSONValue]
    var changes: [MemberChange]
  }

  /// Where a path points.
  struct Target {
    var urn: String?  // nil: core
    var def: AttributeDef
    var filter: Filter?
    var sub: AttributeDef?
  }

  func resolve(_ path: String) throws(SCIMError) -> Target {
    var attrText = path
    var filter: Filter?
    var subText: String?
    if let open = path.firstIndex(of: "[") {
      guard let close = path.lastIndex(of: "]"), close > open else { throw .invalidPath("Unbalanced '[' in path '\(path.prefix(200))'.") }
      attrText = String(path[..<open])
      do {
        filter = try FilterParser.parse(String(path[path.index(after: open)..<close]))
      } catch {
        throw .invalidFilter(error.detail)
      }
      let after = path[path.index(after: close)...]
      if !after.isEmpty {
        guard after.hasPrefix("."), AttrPath.isName(after.dropFirst()) else { throw .invalidPath("Invalid text after ']' in '\(path.prefix(200))'.") }
        subText = String(after.dropFirst())
      }
    }
    let p = try AttrPath.parse(attrText)
    if let s = p.sub {
      guard subText == nil else { throw .invalidPath("'\(path.prefix(200))' has two sub-attributes.") }
      subText = s
    }
    var urn: String?
    var def: AttributeDef?
    if let u = p.urn, u != kind.core.id {
      guard let ext = kind.extensionSchema(u) else { throw .invalidPath("Schema \(u) does not apply to \(kind.name).") }
      urn = ext.id
      def = ext.attribute(p.name)
    } else {
      def = kind.attribute(p.name)
      if def == nil, p.urn == nil {
        // Entra's legacy `manager` (and other enterprise attributes) without the URN.
        for ext in kind.extensions {
          if let d = ext.attribute(p.name) {
            urn = ext.id
            def = d
            break
          }
        }
      }
    }
    guard let def else { throw .invalidPath("Unknown attribute '\(attrText.prefix(200))' for a \(kind.name).") }
    var sub: AttributeDef?
    if let subText {
      guard def.kind == .complex, let s = def.sub(subText) else {
        throw .invalidPath("'\(def.name)' has no sub-attribute '\(subText.prefix(100))'.")
      }
      sub = s
    }
    if filter != nil && !def.multiValued {
      throw .invalidPath("A value filter applies only to multi-valued attributes; '\(def.name)' is single-valued.")
    }
    return Target(urn: urn, def: def, filter: filter, sub: sub)
  }

  func applyPath(_ op: Op, _ path: String, _ value: JSONValue?, _ s: inout State, id: String) throws(SCIMError) {
    if let ext = kind.extensionSchema(path) {
      // The whole extension object, e.g. path "urn:…:enterprise:2.0:User".
      if op == .remove {
        s.resource[ext.id] = nil
        return
      }
      guard case .object(let inner)? = value else { throw .invalidValue("'\(ext.id)' takes an object value.") }
      if op == .replace { s.resource[ext.id] = nil }
      for (k, v) in inner where k.lowercased() != "schemas" { try applyPath(.add, ext.id + ":" + k, v, &s, id: id) }
      return
    }
    let t = try resolve(path)
    let name = t.def.name
    if t.urn == nil {
      switch name {
      case "id":
        // Okta sends the id back in a group rename; equal is fine.
        if op != .remove, value?.stringValue == id { return }
        throw .mutability("'id' is read-only.")
      case "meta", "schemas": return
      case "groups" where kind.name == "User": throw .mutability("'groups' is read-only; change group membership through the Group.")
      case "password": return  // accepted and discarded
      default: break
      }
    }
    if t.def.mutability == .readOnly { throw .mutability("'\(name)' is read-only.") }
    if externalMembers && t.urn == nil && name == "members" {
      try memberOp(op, t, value, &s)
      return
    }
    // Work on the container (core or extension object).
    var container: [String: JSONValue] = t.urn.map { s.resource[$0]?.objectValue ?? [:] } ?? s.resource
    try apply(op, t, value, &container)
    if let urn = t.urn {
      s.resource[urn] = container.isEmpty ? nil : .object(container)
    } else {
      s.resource = container
    }
  }

  func apply(_ op: Op, _ t: Target, _ value: JSONValue?, _ c: inout [String: JSONValue]) throws(SCIMError) {
    let name = t.def.name
    let current = c[name]
    if op == .remove {
      try remove(t, value, &c)
      return
    }
    guard let value else { throw .invalidValue("'\(op.rawValue)' on '\(name)' needs a 'value'.") }
    if !t.def.multiValued {
      if let sub = t.sub {
        var o = current?.objectValue ?? [:]
        o[sub.name] = try normalizer.coerceSingleOrNil(value, sub, name: "\(name).\(sub.name)")
        c[name] = o.isEmpty ? nil : .object(o)
      } else if t.def.kind == .complex, case .object = value, op == .add || op == .replace {
        // Merge sub-attributes (RFC 7644: unspecified sub-attributes are left unchanged).
        var o = current?.objectValue ?? [:]
        if case .object(let incoming)? = try normalizer.coerce(value, t.def, name: name) {
          for (k, v) in incoming { o[k] = v }
        }
        // A sub-attribute sent as null is unassigned (RFC 7643 §2.5).
        for (k, v) in value.objectValue ?? [:] where v.isNull {
          if let sub = t.def.sub(k) { o[sub.name] = nil }
        }
        c[name] = o.isEmpty ? nil : .object(o)
      } else {
        // "" or null clears (Entra's SCIM_Null_Update).
        if value.stringValue == "" { c[name] = nil; return }
        c[name] = try normalizer.coerce(value, t.def, name: name)
      }
      return
    }
    // Multi-valued.
    var items = current?.arrayValue ?? []
    if let filter = t.filter {
      let matched = items.indices.filter { FilterEvaluator.matches(filter, items[$0]) }
      if matched.isEmpty {
        // Entra: Replace/Add on an entry that does not exist yet creates it.
        var element = Self.equalities(filter)
        if let sub = t.sub {
          element[sub.name] = value
        } else if case .object(let o) = value {
          for (k, v) in o { element[k] = v }
        } else {
          element["value"] = value
        }
        if let coerced = try normalizer.coerceSingle(.object(element), t.def, name: name) { items.append(coerced) }
      } else {
        for i in matched {
          var o = items[i].objectValue ?? [:]
          if let sub = t.sub {
            o[sub.name] = try normalizer.coerceSingleOrNil(value, sub, name: "\(name).\(sub.name)")
          } else if case .object(let incoming) = value {
            for (k, v) in incoming { if let d = t.def.sub(k) { o[d.name] = v.isNull ? nil : v } }
          } else {
            throw .invalidValue("'\(name)' with a filter takes an object value.")
          }
          guard let coerced = try normalizer.coerceSingle(.object(o), t.def, name: name) else { continue }
          items[i] = coerced
        }
      }
      c[name] = items.isEmpty ? nil : .array(items)
      return
    }
    if let sub = t.sub {
      // emails.value: every element's sub-attribute.
      guard !items.isEmpty || op == .add else { throw .noTarget("'\(name)' has no values to set '\(sub.name)' on.") }
      if items.isEmpty { items = [.object([:])] }
      for i in items.indices {
        var o = items[i].objectValue ?? [:]
        o[sub.name] = try normalizer.coerceSingleOrNil(value, sub, name: "\(name).\(sub.name)")
        items[i] = .object(o)
      }
      c[name] = .array(items)
      return
    }
    let incoming = (try normalizer.coerce(value, t.def, name: name))?.arrayValue ?? []
    if op == .replace {
      c[name] = incoming.isEmpty ? nil : .array(incoming)
    } else {
      for v in incoming where !items.contains(v) {
        // A new primary value demotes the old one (RFC 7643 §2.4).
        if v["primary"] == .bool(true) {
          for i in items.indices where items[i]["primary"] == .bool(true) {
            var o = items[i].objectValue ?? [:]
            o["primary"] = .bool(false)
            items[i] = .object(o)
          }
        }
        items.append(v)
      }
      c[name] = items.isEmpty ? nil : .array(items)
    }
  }

  func remove(_ t: Target, _ value: JSONValue?, _ c: inout [String: JSONValue]) throws(SCIMError) {
    let name = t.def.name
    if !t.def.multiValued {
      if let sub = t.sub {
        guard var o = c[name]?.objectValue else { return }
        o[sub.name] = nil
        c[name] = o.isEmpty ? nil : .object(o)
      } else {
        c[name] = nil
      }
      return
    }
    var items = c[name]?.arrayValue ?? []
    if let filter = t.filter {
      if let sub = t.sub {
        for i in items.indices where FilterEvaluator.matches(filter, items[i]) {
          var o = items[i].objectValue ?? [:]
          o[sub.name] = nil
          items[i] = .object(o)
        }
      } else {
        items.removeAll { FilterEvaluator.matches(filter, $0) }
      }
    } else if let value, !value.isNull {
      // Entra's legacy form: remove only the listed values.
      let victims = Set((value.arrayValue ?? [value]).compactMap { $0["value"]?.stringValue ?? $0.stringValue })
      items.removeAll { ($0["value"]?.stringValue).map(victims.contains) ?? false }
    } else if let sub = t.sub {
      for i in items.indices {
        var o = items[i].objectValue ?? [:]
        o[sub.name] = nil
        items[i] = .object(o)
      }
    } else {
      items = []
    }
    c[name] = items.isEmpty ? nil : .array(items)
  }

  /// Group members as set operations.
  func memberOp(_ op: Op, _ t: Target, _ value: JSONValue?, _ s: inout State) throws(SCIMError) {
    func ids(_ v: JSONValue?) throws(SCIMError) -> [String] {
      guard let v, !v.isNull else { return [] }
      let list = v.arrayValue ?? [v]
      var out: [String] = []
      for item in list {
        if let id = item["value"]?.stringValue ?? item.stringValue {
          out.append(id)
        } else {
          throw .invalidValue("Each member needs a 'value' (the member's id).")
        }
      }
      return out
    }
    if t.sub != nil { throw .invalidPath("Member sub-attributes cannot be changed; add or remove the member.") }
    switch op {
    case .add:
      if let filter = t.filter {
        // add members[value eq "x"] — treat as adding x.
        s.changes.append(.add(try Self.memberIDs(filter)))
      } else {
        s.changes.append(.add(try ids(value)))
      }
    case .replace:
      if t.filter != nil { throw .invalidPath("Replace the whole 'members' list or add/remove members.") }
      s.changes.append(.replace(try ids(value)))
    case .remove:
      if let filter = t.filter {
        s.changes.append(.remove(try Self.memberIDs(filter)))
      } else if let value, !value.isNull {
        s.changes.append(.remove(try ids(value)))  // Entra's legacy Remove with a value list
      } else {
        s.changes.append(.removeAll)
      }
    }
  }

  /// `value eq "x"` (or several joined by `or`) → ["x", …].
  static func memberIDs(_ f: Filter) throws(SCIMError) -> [String] {
    switch f {
    case .compare(let p, .eq, .string(let v)) where p.name.lowercased() == "value" && p.sub == nil: return [v]
    case .or(let a, let b): return try memberIDs(a) + memberIDs(b)
    default: throw .invalidFilter("Only members[value eq \"…\"] filters are supported on group members.")
    }
  }

  /// The `attr eq value` conditions of a filter, to build the element an upsert creates.
  static func equalities(_ f: Filter) -> [String: JSONValue] {
    switch f {
    case .compare(let p, .eq, let v) where p.sub == nil: return [p.name: v]
    case .and(let a, let b): return equalities(a).merging(equalities(b)) { x, _ in x }
    default: return [:]
    }
  }
}

extension ResourceNormalizer {
  /// A single value, or nil for null/"" (clearing).
  func coerceSingleOrNil(_ v: JSONValue, _ def: AttributeDef, name: String) throws(SCIMError) -> JSONValue? {
    if v.isNull { return nil }
    return try coerceSingle(v, def, name: name)
  }
}
