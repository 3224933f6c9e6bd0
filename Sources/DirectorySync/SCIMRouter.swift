import Crypto
import Foundation
import HTTP1
import JSON
import JSONRPC
import Postgres
import RosterStore
import SCIM
import ServiceKit

/// One SCIM request, however it arrived (HTTP on scim.sock or `scim.request`).
public struct SCIMRequest: Sendable {
  public var method: String
  public var path: String
  public var query: [(String, String)]
  public var authorization: String?
  public var headers: [(name: String, value: String)]
  public var body: [UInt8]
  public var contentType: String?

  public func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
  public func queryValue(_ name: String) -> String? { query.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

public struct SCIMResponse: Sendable {
  public var status: Int
  public var headers: [(name: String, value: String)]
  public var body: JSONValue?

  public init(status: Int, headers: [(name: String, value: String)] = [], body: JSONValue? = nil) {
    self.status = status
    self.headers = headers
    self.body = body
  }

  static func error(_ e: SCIMError, headers: [(name: String, value: String)] = []) -> SCIMResponse {
    SCIMResponse(status: e.status, headers: headers, body: e.json)
  }
}

/// The directory a bearer token opened: all reads and writes are confined to its workspace (C7).
struct DirectoryScope: Sendable {
  let directoryId: String
  let workspaceId: String
}

/// Routes SCIM requests: authentication, discovery, Users, Groups, errors.
final class SCIMRouter: Sendable {
  let ctx: ServiceContext
  let users: SCIMUsers
  let groups: SCIMGroups
  static let basePath = "/scim/v2"
  static let httpMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

  let tokens: TokenCache

  init(ctx: ServiceContext) {
    self.ctx = ctx
    users = SCIMUsers(ctx: ctx)
    groups = SCIMGroups(ctx: ctx)
    tokens = TokenCache(config: ctx.host.pgConfig)
  }

  var location: String { ctx.config.publicURL + Self.basePath }

  func handle(_ r: SCIMRequest) -> SCIMResponse {
    let started = ContinuousClock.now
    let requestId = Self.requestId(r.header("X-Request-Id"))
    let scope = ScopeNote()
    var response = route(r, scope: scope)
    response.headers.append(("X-Request-Id", requestId))
    let seconds = (ContinuousClock.now - started).inSeconds
    // The method label is bounded: any other request-line verb counts as "other".
    let method = Self.httpMethods.contains(r.method) ? r.method : "other"
    ctx.host.metrics.increment("roster_scim_requests_total", ["method": method, "status": String(response.status)])
    ctx.host.metrics.observe("roster_scim_request_duration_seconds", [:], seconds)
    if ctx.logger.isEnabled(.info) { log(r, response, requestId: requestId, scope: scope.value, seconds: seconds) }
    return response
  }

  /// What an admin fixing an IdP's setup needs from one line: the request
  /// (path, the filter without its values), whose directory, the outcome
  /// (status, scimType, detail) and the request id the IdP can quote.
  func log(_ r: SCIMRequest, _ response: SCIMResponse, requestId: String, scope: DirectoryScope?, seconds: Double) {
    var fields: [String: JSONValue] = [
      "request": .string(requestId), "method": .string(String(r.method.prefix(20))), "path": .string(Self.printable(String(r.path.prefix(300)))),
      "status": .int(Int64(response.status)), "ms": .double((seconds * 1e5).rounded() / 100),
      "directory": .orNull(scope?.directoryId), "workspace": .orNull(scope?.workspaceId),
    ]
    if let filter = r.queryValue("filter") { fields["filter"] = .string(Self.withoutValues(filter)) }
    for name in ["startIndex", "count", "excludedAttributes", "attributes"] {
      if let v = r.queryValue(name) { fields[name] = .string(Self.printable(String(v.prefix(200)))) }
    }
    if response.status >= 400, let body = response.body {
      fields["scimType"] = .orNull(body["scimType"]?.stringValue)
      fields["detail"] = .orNull(body["detail"]?.stringValue.map { String($0.prefix(300)) })
    }
    if ctx.logger.isEnabled(.debug), !r.body.isEmpty {
      fields["body"] = (try? JSONParser.parse(r.body, maxDepth: 32)).map(Self.redacted) ?? .string("(\(r.body.count) bytes, not JSON)")
    }
    ctx.logger.log(response.status >= 500 ? .error : response.status >= 400 ? .warning : .info, "scim", fields)
  }

  /// The IdP's request id when it is a sane token, else one of ours.
  static func requestId(_ given: String?) -> String {
    if let given, !given.isEmpty, given.utf8.count <= 100,
      given.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || "-_.:".utf8.contains($0) })
    {
      return given
    }
    return "scim-" + Secrets.token(bits: 60)
  }

  /// A filter with its comparison values replaced (they carry addresses and
  /// names): `userName eq "…"`.
  static func withoutValues(_ filter: String) -> String {
    var out = ""
    var inString = false
    var escaped = false
    for ch in filter.prefix(500) {
      if inString {
        if escaped { escaped = false } else if ch == "\\" { escaped = true } else if ch == "\"" { inString = false; out += "…\"" }
        continue
      }
      if ch == "\"" { inString = true; out.append(ch); continue }
      out.append(ch)
    }
    if inString { out += "…" }
    return printable(out)
  }

  static func printable(_ s: String) -> String {
    String(String.UnicodeScalarView(s.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }))
  }

  /// A SCIM body for the debug log: passwords and anything named like a secret removed.
  static func redacted(_ v: JSONValue) -> JSONValue {
    switch v {
    case .object(let o):
      var out: [String: JSONValue] = [:]
      for (k, x) in o {
        let key = k.lowercased()
        out[k] = key.contains("password") || key.contains("secret") || key.contains("token") ? .string("(removed)") : redacted(x)
      }
      return .object(out)
    case .array(let a): return .array(a.map(redacted))
    default: return v
    }
  }

  /// Which directory a request's token opened, for its log line.
  final class ScopeNote: @unchecked Sendable {
    var value: DirectoryScope?
  }

  private func route(_ r: SCIMRequest, scope note: ScopeNote) -> SCIMResponse {
    var path = r.path
    if path.lowercased().hasPrefix(Self.basePath) { path = String(path.dropFirst(Self.basePath.count)) }
    while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
    let parts = path.split(separator: "/").map(String.init)
    do {
      let scope = try authenticate(r)
      note.value = scope
      guard let head = parts.first else { throw SCIMError.notFound("No resource at '\(r.path.prefix(200))'.") }
      switch head.lowercased() {
      case "serviceproviderconfig":
        try only(r, ["GET"], parts.count == 1)
        return json(200, Discovery.serviceProviderConfig(location: location))
      case "resourcetypes":
        try only(r, ["GET"], parts.count <= 2)
        if parts.count == 2 {
          guard let k = Discovery.kinds.first(where: { $0.name.lowercased() == parts[1].lowercased() }) else {
            throw SCIMError.notFound("Unknown resource type '\(parts[1].prefix(100))'.")
          }
          return json(200, k.json(location: location))
        }
        let all = Discovery.kinds.map { $0.json(location: location) }
        return json(200, Discovery.listResponse(all, total: all.count, startIndex: 1))
      case "schemas":
        try only(r, ["GET"], parts.count <= 2)
        if parts.count == 2 {
          guard let s = Discovery.schemas.first(where: { $0.id.lowercased() == parts[1].lowercased() }) else {
            throw SCIMError.notFound("Unknown schema '\(parts[1].prefix(200))'.")
          }
          return json(200, s.json(location: location))
        }
        let all = Discovery.schemas.map { $0.json(location: location) }
        return json(200, Discovery.listResponse(all, total: all.count, startIndex: 1))
      case "users": return try users.route(r, parts: Array(parts.dropFirst()), scope: scope, router: self)
      case "groups": return try groups.route(r, parts: Array(parts.dropFirst()), scope: scope, router: self)
      case ".search":
        throw SCIMError(501, nil, "Search across resource types is not supported; POST /Users/.search or /Groups/.search.")
      case "bulk": throw SCIMError(501, nil, "Bulk operations are not supported (see /ServiceProviderConfig).")
      case "me": throw SCIMError(501, nil, "/Me is not supported.")
      default: throw SCIMError.notFound("No resource at '\(r.path.prefix(200))'.")
      }
    } catch let e as SCIMError {
      var headers: [(name: String, value: String)] = []
      if e.status == 401 { headers.append(("WWW-Authenticate", "Bearer realm=\"roster-scim\"")) }
      if let allow = e.allow { headers.append(("Allow", allow.joined(separator: ", "))) }
      return .error(e, headers: headers)
    } catch let e as TargetProtectedError {
      try? ctx.notifyTargetConflict(e)
      return .error(e.scimError)
    } catch let e as any SCIMErrorConvertible where e.scimError.status != 500 {
      return .error(e.scimError)
    } catch {
      var fields: [String: JSONValue] = ["error": .string(String(describing: error)), "path": .string(Self.printable(String(r.path.prefix(300))))]
      if ctx.logger.isEnabled(.debug) { fields["debug"] = .string(String(reflecting: error)) }
      ctx.logger.error("scim request failed", fields)
      return .error(SCIMError(500, nil, "Internal error; the server log has details."))
    }
  }

  func only(_ r: SCIMRequest, _ methods: [String], _ shapeOK: Bool) throws(SCIMError) {
    guard shapeOK else { throw SCIMError.notFound("No resource at '\(r.path.prefix(200))'.") }
    guard methods.contains(r.method) || (r.method == "HEAD" && methods.contains("GET")) else {
      var e = SCIMError(405, nil, "\(r.method.prefix(20)) is not allowed here. Allowed: \(methods.joined(separator: ", "))")
      e.allow = methods
      throw e
    }
  }

  func json(_ status: Int, _ body: JSONValue, headers: [(name: String, value: String)] = []) -> SCIMResponse {
    SCIMResponse(status: status, headers: headers, body: body)
  }

  /// C7: the bearer token names one directory; it is stored only as a SHA-256 hash.
  func authenticate(_ r: SCIMRequest) throws -> DirectoryScope {
    guard let auth = r.authorization?.trimmedSpaces, auth.lowercased().hasPrefix("bearer ") else {
      throw SCIMError(401, nil, "Authentication required: send Authorization: Bearer TOKEN (the token from directory.enable).")
    }
    let token = auth.dropFirst(7).trimmedSpaces
    guard !token.isEmpty, token.utf8.count <= 200 else { throw SCIMError(401, nil, "The bearer token is not valid.") }
    let hash = SHA256.hex(token)
    if let (scope, plan) = tokens.lookup(hash) {
      guard plan == "enterprise" else {
        throw SCIMError(403, nil, "Directory Sync needs the Enterprise plan; this workspace is on \(plan).")
      }
      return scope
    }
    guard
      let row = try ctx.pool.query(
        """
        SELECT d.id, d.workspace_id, w.plan FROM directories d JOIN workspaces w ON w.id = d.workspace_id
        WHERE d.token_hash = \(hash) AND d.enabled
        """
      ).first
    else { throw SCIMError(401, nil, "The bearer token is not valid (it may have been rotated or revoked).") }
    let scope = DirectoryScope(directoryId: try row.string("id"), workspaceId: try row.string("workspace_id"))
    tokens.store(hash, scope: scope, plan: row["plan"] ?? "")
    guard row["plan"] == "enterprise" else {
      throw SCIMError(403, nil, "Directory Sync needs the Enterprise plan; this workspace is on \(row["plan"] ?? "another plan").")
    }
    return scope
  }

  /// The JSON body of a write, checking its media type.
  func body(_ r: SCIMRequest) throws(SCIMError) -> JSONValue {
    if let ct = r.contentType?.lowercased(), !ct.isEmpty,
      !(ct.hasPrefix("application/scim+json") || ct.hasPrefix("application/json"))
    {
      throw SCIMError(415, nil, "Send application/scim+json (or application/json); got '\(ct.prefix(100))'.")
    }
    guard !r.body.isEmpty else { throw .invalidSyntax("The request needs a JSON body.") }
    do {
      return try JSONParser.parse(r.body, maxDepth: 32)
    } catch {
      switch error.kind {
      case .tooDeep: throw .invalidSyntax("The JSON body is nested deeper than 32 levels.")
      default: throw .invalidSyntax("The body is not valid JSON: \(error.message) at byte \(error.offset).")
      }
    }
  }

  /// Paging (RFC 7644 §3.4.2.4): 1-based startIndex; count 0…1000.
  func paging(_ r: SCIMRequest, searchBody: JSONValue?) throws(SCIMError) -> (start: Int, count: Int) {
    func int(_ name: String) throws(SCIMError) -> Int? {
      if let v = searchBody?[name] {
        guard let i = v.intValue else { throw .invalidValue("'\(name)' must be an integer.") }
        return Int(clamping: i)
      }
      guard let s = r.queryValue(name) else { return nil }
      guard let i = Int(s.trimmedSpaces) else { throw .invalidValue("'\(name)' must be an integer.") }
      return i
    }
    let start = max(1, try int("startIndex") ?? 1)
    let count = min(Discovery.maxResults, max(0, try int("count") ?? 100))
    return (start, count)
  }

  func projection(_ r: SCIMRequest, searchBody: JSONValue?) throws(SCIMError) -> Projection {
    func list(_ name: String) -> String? {
      if let v = searchBody?[name] {
        if let a = v.arrayValue { return a.compactMap(\.stringValue).joined(separator: ",") }
        return v.stringValue
      }
      return r.queryValue(name)
    }
    do {
      return try Projection(attributes: list("attributes"), excludedAttributes: list("excludedAttributes"))
    } catch {
      throw .invalidValue("Invalid attributes list: \(error.detail)")
    }
  }

  func filter(_ r: SCIMRequest, searchBody: JSONValue?) throws(SCIMError) -> Filter? {
    let text = searchBody?["filter"]?.stringValue ?? r.queryValue("filter")
    guard let text, !text.trimmedSpaces.isEmpty else { return nil }
    return try FilterParser.parse(text)
  }

  /// GET /Users or /Groups and their POST .search (RFC 7644 §3.4.2): the
  /// rows `scoped` selects that match the filter, counted, then one page in
  /// creation order; `render` turns the page into resources.
  func list<Row>(
    _ r: SCIMRequest, searchBody: JSONValue?, target: SCIMQuery.Target, from: SQL, scoped: SQL, select: SQL, order: SQL,
    row: (PGRow) throws -> Row, render: (PGTransaction, [Row], Projection) throws -> [JSONValue]
  ) throws -> SCIMResponse {
    let (start, count) = try paging(r, searchBody: searchBody)
    let projection = try projection(r, searchBody: searchBody)
    var condition = scoped
    if let f = try filter(r, searchBody: searchBody) { condition.append(" AND " + (try SCIMQuery(target: target).sql(f))) }
    return try ctx.pool.withConnection { conn in
      let tx = PGTransaction(connection: conn)
      let total = Int(try tx.single("SELECT count(*) AS n FROM " + from + condition).int("n"))
      var rows: [Row] = []
      if count > 0 && start <= total {
        rows = try tx.query(select + condition + order + " LIMIT \(count) OFFSET \(start - 1)").rows.map(row)
      }
      return json(200, Discovery.listResponse(try render(tx, rows, projection), total: total, startIndex: start))
    }
  }

  static func etag(_ version: Int64) -> String { "W/\"\(version)\"" }

  /// RFC 7644 §3.14: If-Match with a stale version → 412.
  func checkIfMatch(_ r: SCIMRequest, version: Int64) throws(SCIMError) {
    guard let im = r.header("If-Match")?.trimmedSpaces, im != "*" else { return }
    let tags = im.split(separator: ",").map { $0.trimmedSpaces }
    if !tags.contains(Self.etag(version)) && !tags.contains("\"\(version)\"") {
      throw SCIMError(412, nil, "The resource changed (version \(Self.etag(version))); read it again and retry.")
    }
  }
}

extension SCIMResponse {
  /// As an HTTP response: SCIM JSON with the right content type.
  var http: HTTPResponse {
    var h = headers
    var bytes: [UInt8] = []
    if let body, status != 204 {
      h.append(("Content-Type", "application/scim+json; charset=utf-8"))
      bytes = JSONWriter.bytes(body)
    }
    return HTTPResponse(status: status, headers: h, body: bytes)
  }

  /// As the `scim.request` result.
  var rpc: JSONValue {
    var h: [String: JSONValue] = [:]
    for (n, v) in headers { h[n] = .string(v) }
    if body != nil && status != 204 { h["Content-Type"] = "application/scim+json; charset=utf-8" }
    return ["status": .int(Int64(status)), "headers": .object(h), "body": status == 204 ? .null : (body ?? .null)]
  }
}

/// The endpoints of one resource type (/Users, /Groups).
protocol SCIMResourceEndpoints {
  func create(_ r: SCIMRequest, scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse
  func list(_ r: SCIMRequest, scope: DirectoryScope, router: SCIMRouter, searchBody: JSONValue?) throws -> SCIMResponse
  func get(_ r: SCIMRequest, id: String, scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse
  func replace(_ r: SCIMRequest, id: String, scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse
  func patch(_ r: SCIMRequest, id: String, scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse
  func delete(_ r: SCIMRequest, id: String, scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse
}

extension SCIMResourceEndpoints {
  /// `/`, `/.search` and `/{id}` with the methods each allows (405 otherwise).
  func route(_ r: SCIMRequest, parts: [String], scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse {
    switch parts.count {
    case 0:
      try router.only(r, ["GET", "POST"], true)
      if r.method == "POST" { return try create(r, scope: scope, router: router) }
      return try list(r, scope: scope, router: router, searchBody: nil)
    case 1 where parts[0].lowercased() == ".search":
      try router.only(r, ["POST"], true)
      return try list(r, scope: scope, router: router, searchBody: try router.body(r))
    case 1:
      try router.only(r, ["GET", "PUT", "PATCH", "DELETE"], true)
      let id = parts[0].lowercased()
      switch r.method {
      case "PUT": return try replace(r, id: id, scope: scope, router: router)
      case "PATCH": return try patch(r, id: id, scope: scope, router: router)
      case "DELETE": return try delete(r, id: id, scope: scope, router: router)
      default: return try get(r, id: id, scope: scope, router: router)
      }
    default:
      throw SCIMError.notFound("No resource at '\(r.path.prefix(200))'.")
    }
  }
}
