import Addresses
import JSONRPC
import Foundation
import JSON
import Postgres
import SCIM

/// Translates a filter AST into parameterised SQL over the `scim_users u` or
/// `scim_groups g` rows. Every column name below is a literal in this file;
/// every value from the filter is a bind parameter — including jsonb paths.
/// `eq` on userName, externalId, id, displayName and emails uses indexes.
struct SCIMQuery {
  enum Target { case users, groups }
  let target: Target

  var kind: ResourceKind { target == .users ? .user : .group }

  func sql(_ f: Filter) throws(SCIMError) -> SQL {
    switch f {
    case .and(let a, let b): return "(" + (try sql(a)) + " AND " + (try sql(b)) + ")"
    case .or(let a, let b): return "(" + (try sql(a)) + " OR " + (try sql(b)) + ")"
    case .not(let a): return "(NOT coalesce(" + (try sql(a)) + ", false))"
    case .present(let p): return try present(p)
    case .compare(let p, let op, let v): return try compare(p, op, v)
    case .valuePath(let p, let inner): return try valuePath(p, inner)
    }
  }

  // MARK: Attributes

  /// A resolved attribute: how to read it as SQL.
  enum Column {
    /// A text expression; `caseExact` decides lower() on both sides.
    case text(SQL, caseExact: Bool)
    case bool(SQL)
    case time(SQL)
    case uuid(SQL)
    /// A multi-valued complex attribute stored in jsonb, read through `e` (an element) with an optional sub-attribute.
    case elements(array: SQL, sub: String?, def: AttributeDef)
    /// Group membership (members.value / groups.value).
    case membership
  }

  func column(_ p: AttrPath) throws(SCIMError) -> Column {
    let name = p.name.lowercased()
    let sub = p.sub?.lowercased()
    if p.urn == nil || p.urn == kind.core.id {
      switch (target, name, sub) {
      case (_, "id", nil): return .uuid(target == .users ? "u.member_id" : "g.id")
      case (_, "externalid", nil): return .text(target == .users ? "u.external_id" : "g.external_id", caseExact: true)
      case (_, "meta", "created"): return .time(target == .users ? "u.created_at" : "g.created_at")
      case (_, "meta", "lastmodified"): return .time(target == .users ? "u.updated_at" : "g.updated_at")
      case (_, "meta", _): throw .invalidFilter("Only meta.created and meta.lastModified can be filtered.")
      case (.users, "username", nil): return .text("u.user_name", caseExact: false)
      case (.users, "active", nil): return .bool("u.active")
      case (.users, "displayname", nil): return .text("u.display_name", caseExact: false)
      case (.groups, "displayname", nil): return .text("g.display_name", caseExact: false)
      case (.groups, "members", _), (.users, "groups", _):
        guard sub == nil || sub == "value" else { throw .invalidFilter("Only '\(p.name).value' can be filtered.") }
        return .membership
      default: break
      }
    }
    // Everything else lives in the jsonb resource.
    var base: [String] = []
    let def: AttributeDef
    if let urn = p.urn, urn != kind.core.id {
      guard let ext = kind.extensionSchema(urn), let d = ext.attribute(p.name) else {
        throw .invalidFilter("Unknown attribute '\(p)'.")
      }
      base = [ext.id, d.name]
      def = d
    } else {
      guard let d = kind.core.attribute(p.name) else { throw .invalidFilter("Unknown attribute '\(p.name)'.") }
      base = [d.name]
      def = d
    }
    if def.returned == .never { throw .invalidFilter("'\(def.name)' cannot be filtered.") }
    let resource: SQL = target == .users ? "u.resource" : "g.resource"
    if def.multiValued {
      var subName: String?
      if let s = p.sub {
        guard let sd = def.sub(s) else { throw .invalidFilter("'\(def.name)' has no sub-attribute '\(s)'.") }
        subName = sd.name
      } else if def.kind == .complex {
        subName = def.sub("value") != nil ? "value" : nil
      }
      return .elements(array: "coalesce(" + resource + " #> \(PGTextArray(base)), '[]'::jsonb)", sub: subName, def: def)
    }
    var path = base
    var leaf = def
    if let s = p.sub {
      guard def.kind == .complex, let sd = def.sub(s) else { throw .invalidFilter("'\(def.name)' has no sub-attribute '\(s)'.") }
      path.append(sd.name)
      leaf = sd
    } else if def.kind == .complex {
      throw .invalidFilter("'\(def.name)' is complex; filter on one of its sub-attributes.")
    }
    let text: SQL = "(" + resource + " #>> \(PGTextArray(path)))"
    switch leaf.kind {
    case .boolean: return .bool("(" + text + ")::boolean")
    case .dateTime: return .time("(" + text + ")::timestamptz")
    default: return .text(text, caseExact: leaf.caseExact)
    }
  }

  // MARK: Operators

  func present(_ p: AttrPath) throws(SCIMError) -> SQL {
    switch try column(p) {
    case .text(let x, _): return "(" + x + " IS NOT NULL AND " + x + " <> '')"
    case .bool(let x), .time(let x), .uuid(let x): return "(" + x + " IS NOT NULL)"
    case .elements(let array, let sub, _):
      if let sub {
        return "EXISTS (SELECT 1 FROM jsonb_array_elements(" + array + ") e WHERE coalesce(e->>\(sub), '') <> '')"
      }
      return "(jsonb_array_length(" + array + ") > 0)"
    case .membership:
      return target == .users
        ? "EXISTS (SELECT 1 FROM scim_group_members gm WHERE gm.member_id = u.member_id)"
        : "EXISTS (SELECT 1 FROM scim_group_members gm WHERE gm.group_id = g.id)"
    }
  }

  func compare(_ p: AttrPath, _ op: CompareOp, _ v: JSONValue) throws(SCIMError) -> SQL {
    let col = try column(p)
    switch col {
    case .text(let x, let caseExact): return try textCompare(x, op, v, caseExact: caseExact)
    case .bool(let x):
      var b: Bool?
      if case .bool(let bv) = v { b = bv } else if let s = v.stringValue { b = Bool(s.lowercased()) }
      guard let b, op == .eq || op == .ne else { throw .invalidFilter("'\(p)' is a boolean: use eq or ne with true or false.") }
      return op == .eq ? "(" + x + " = \(b))" : "(" + x + " IS DISTINCT FROM \(b))"
    case .time(let x):
      guard let s = v.stringValue, let date = parseTime(s) else { throw .invalidFilter("'\(p)' is a dateTime: compare with an RFC 3339 string.") }
      // The parsed instant, written out again: Foundation's parser accepts
      // text PostgreSQL does not (found by the filter fuzzer: a 500).
      let normalized = ISO8601DateFormatter.string(from: date, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withInternetDateTime, .withFractionalSeconds])
      return try ordered(x, op, "\(normalized)::timestamptz", name: p.description)
    case .uuid(let x):
      guard let s = v.stringValue, op == .eq || op == .ne else { throw .invalidFilter("'id' supports eq and ne with a string.") }
      guard isUUID(s) else { return op == .eq ? "false" : "true" }
      return op == .eq ? "(" + x + " = \(s.lowercased())::uuid)" : "(" + x + " <> \(s.lowercased())::uuid)"
    case .elements(let array, let sub, let def):
      let element: SQL = sub.map { "(e->>\($0))" } ?? "(e #>> '{}')"
      let caseExact = sub.flatMap { def.sub($0) }?.caseExact ?? def.caseExact
      let inner = try textCompare(element, op, v, caseExact: caseExact)
      var q: SQL = "EXISTS (SELECT 1 FROM jsonb_array_elements(" + array + ") e WHERE " + inner + ")"
      // The GIN index on lower-cased email values narrows `emails eq` to a few rows.
      if target == .users, def.name == "emails", sub == "value", op == .eq, let s = v.stringValue {
        q = "(u.email_values @> ARRAY[lower(\(s))] AND " + q + ")"
      }
      return q
    case .membership:
      guard op == .eq, let s = v.stringValue else { throw .invalidFilter("Membership filters support eq with an id.") }
      guard isUUID(s) else { return "false" }
      return target == .users
        ? "EXISTS (SELECT 1 FROM scim_group_members gm WHERE gm.member_id = u.member_id AND gm.group_id = \(s.lowercased())::uuid)"
        : "EXISTS (SELECT 1 FROM scim_group_members gm WHERE gm.group_id = g.id AND gm.member_id = \(s.lowercased())::uuid)"
    }
  }

  func textCompare(_ x: SQL, _ op: CompareOp, _ v: JSONValue, caseExact: Bool) throws(SCIMError) -> SQL {
    if v.isNull {
      switch op {
      case .eq: return "(" + x + " IS NULL)"
      case .ne: return "(" + x + " IS NOT NULL)"
      default: throw .invalidFilter("null can only be compared with eq or ne.")
      }
    }
    let s: String
    switch v {
    case .string(let t): s = t
    case .int, .double: s = JSONWriter.string(v)
    case .bool(let b): s = b ? "true" : "false"
    default: throw .invalidFilter("Unsupported comparison value.")
    }
    let lhs: SQL = caseExact ? x : "lower(" + x + ")"
    let rhs: SQL = caseExact ? "\(s)::text" : "lower(\(s)::text)"
    switch op {
    case .eq: return "(" + lhs + " = " + rhs + ")"
    case .ne: return "(" + lhs + " IS DISTINCT FROM " + rhs + ")"
    case .co: return "(strpos(" + lhs + ", " + rhs + ") > 0)"
    case .sw: return "starts_with(" + lhs + ", " + rhs + ")"
    case .ew: return "(right(" + lhs + ", length(" + rhs + ")) = " + rhs + ")"
    case .gt, .ge, .lt, .le: return try ordered(lhs, op, rhs, name: "value")
    }
  }

  func ordered(_ x: SQL, _ op: CompareOp, _ rhs: SQL, name: String) throws(SCIMError) -> SQL {
    switch op {
    case .eq: return "(" + x + " = " + rhs + ")"
    case .ne: return "(" + x + " IS DISTINCT FROM " + rhs + ")"
    case .gt: return "(" + x + " > " + rhs + ")"
    case .ge: return "(" + x + " >= " + rhs + ")"
    case .lt: return "(" + x + " < " + rhs + ")"
    case .le: return "(" + x + " <= " + rhs + ")"
    default: throw .invalidFilter("'\(op.rawValue)' does not apply to '\(name)'.")
    }
  }

  /// `emails[type eq "work" and value co "@x"]`: the inner filter reads the element `e`.
  func valuePath(_ p: AttrPath, _ inner: Filter) throws(SCIMError) -> SQL {
    guard case .elements(let array, _, let def) = try column(AttrPath(urn: p.urn, name: p.name)) else {
      if case .membership = try column(AttrPath(urn: p.urn, name: p.name)), case .compare(let ip, let op, let v) = inner,
        ip.name.lowercased() == "value"
      {
        return try compare(AttrPath(urn: p.urn, name: p.name, sub: "value"), op, v)
      }
      throw .invalidFilter("'\(p.name)[…]' needs a multi-valued attribute.")
    }
    return "EXISTS (SELECT 1 FROM jsonb_array_elements(" + array + ") e WHERE " + (try element(inner, def)) + ")"
  }

  func element(_ f: Filter, _ def: AttributeDef) throws(SCIMError) -> SQL {
    switch f {
    case .and(let a, let b): return "(" + (try element(a, def)) + " AND " + (try element(b, def)) + ")"
    case .or(let a, let b): return "(" + (try element(a, def)) + " OR " + (try element(b, def)) + ")"
    case .not(let a): return "(NOT coalesce(" + (try element(a, def)) + ", false))"
    case .valuePath: throw .invalidFilter("Value filters cannot be nested.")
    case .present(let p):
      guard let sd = def.sub(p.name), p.sub == nil else { throw .invalidFilter("'\(def.name)' has no sub-attribute '\(p.name)'.") }
      return "(coalesce(e->>\(sd.name), '') <> '')"
    case .compare(let p, let op, let v):
      guard let sd = def.sub(p.name), p.sub == nil else { throw .invalidFilter("'\(def.name)' has no sub-attribute '\(p.name)'.") }
      let x: SQL = "(e->>\(sd.name))"
      if sd.kind == .boolean {
        var b: Bool?
        if case .bool(let bv) = v { b = bv } else if let s = v.stringValue { b = Bool(s.lowercased()) }
        guard let b, op == .eq || op == .ne else { throw .invalidFilter("'\(sd.name)' is a boolean: use eq or ne.") }
        return op == .eq ? "(" + x + "::boolean = \(b))" : "(" + x + "::boolean IS DISTINCT FROM \(b))"
      }
      return try textCompare(x, op, v, caseExact: sd.caseExact)
    }
  }

  func parseTime(_ s: String) -> Date? {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let d = f.date(from: s) { return d }
    f.formatOptions = [.withInternetDateTime]
    return f.date(from: s)
  }
}
