import Addresses
import Crypto
import Foundation
import HTTP1
import JSON
import JSONRPC
import Postgres
import RosterRuntime
import RosterStore
import SCIM
import ServiceKit
import Sockets

/// Directory Sync: the SCIM 2.0 service provider (C1–C7) on ROSTER_SCIM_LISTEN
/// and through `scim.request`, and the `directory.*` / `group.*` methods.
public final class DirectoryService: Sendable {
  let ctx: ServiceContext
  let router: SCIMRouter

  public init(host: ProcessHost) {
    ctx = ServiceContext(host: host)
    router = SCIMRouter(ctx: ctx)
  }

  /// Runs one SCIM request (what scim.sock and `scim.request` both call).
  public func handle(_ r: SCIMRequest) -> SCIMResponse { router.handle(r) }

  public func install() throws {
    ctx.host.metrics.describe("roster_scim_requests_total", type: "counter", help: "SCIM requests by method and status")
    ctx.host.metrics.describe("roster_scim_request_duration_seconds", type: "histogram", help: "SCIM request latency")
    ctx.host.dispatcher.register(methods())
    ctx.host.dispatcher.document(errors: Self.errorDocs)
    router.tokens.start()
    ctx.host.onStop("scim token cache") { [router] in router.tokens.stop() }
  }

  /// Binds ROSTER_SCIM_LISTEN and serves SCIM over HTTP/1.1.
  public func serveHTTP() throws {
    let listener = try Listener.bind(ctx.config.scimListen)
    var options = StreamServer.Options()
    options.maxConnections = ctx.config.maxConnections
    let metricsEnabled = ctx.config.scimMetrics
    let server = HTTPServer(
      listener: listener, options: options, limits: .timed(ctx.config.requestTimeoutSeconds),
      onError: { status, message in SCIMResponse.error(SCIMError(status, status == 400 ? "invalidSyntax" : nil, message)).http },
      handler: { [router, ctx] req in
        if metricsEnabled && req.method == "GET" && req.path == "/metrics" {
          return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")], body: Array(ctx.host.metrics.render().utf8))
        }
        let r = SCIMRequest(
          method: req.method, path: req.path, query: req.query, authorization: req.header("Authorization"), headers: req.headers,
          body: req.body, contentType: req.header("Content-Type"))
        return router.handle(r).http
      })
    server.start()
    ctx.host.onStop("scim listener") { server.stop() }
    ctx.logger.info("serving SCIM", ["listen": .string(listener.address.description)])
  }

  static func newToken() -> String { "roster_scim_" + Secrets.token(bits: 256) }

  func directoryJSON(_ r: PGRow, token: String?) throws -> JSONValue {
    var o: [String: JSONValue] = [
      "directoryId": .string(try r.string("id")), "workspaceId": .string(try r.string("workspace_id")), "enabled": .bool(try r.bool("enabled")),
      "scimBasePath": .string(SCIMRouter.basePath), "scimUrl": .string(ctx.config.publicURL + SCIMRouter.basePath),
      "createdAt": .orNull(r.time("created_at")), "tokenRotatedAt": .orNull(r.time("token_rotated_at")),
    ]
    if let token { o["bearerToken"] = .string(token) }
    return .object(o)
  }

  func methods() -> [MethodSpec] {
    let wsActor: [ParamSpec] = [.workspaceId, .actor]
    return [
      MethodSpec(
        "directory.enable", summary: "Turns Directory Sync on; returns the SCIM base path and a bearer token (shown once; stored hashed).",
        params: wsActor, result: "{directoryId, scimBasePath, bearerToken}"
      ) { p, c in try self.enable(p, c) },
      MethodSpec(
        "directory.rotateToken", summary: "Issues a new bearer token; the old one stops working at once.", params: wsActor,
        result: "{directoryId, scimBasePath, bearerToken}"
      ) { p, c in try self.rotate(p, c) },
      MethodSpec("directory.disable", summary: "Revokes the token and turns Directory Sync off (data is kept).", params: wsActor, result: "Directory") {
        p, c in try self.disable(p, c)
      },
      MethodSpec("directory.get", summary: "The directory (never the token).", params: [.workspaceId], result: "Directory") {
        p, _ in
        try self.ctx.pool.transaction { tx in
          let wid = try p.id("workspaceId")
          guard try WorkspaceRow.load(tx, wid) != nil else { throw RPCError.workspaceNotFound() }
          guard let d = try tx.one("SELECT * FROM directories WHERE workspace_id = \(wid)::uuid") else {
            throw RPCError.notFound("Directory", reason: "directory_not_found")
          }
          var o = try self.directoryJSON(d, token: nil).objectValue!
          o["userCount"] = .int(try tx.single("SELECT count(*) AS n FROM scim_users WHERE workspace_id = \(wid)::uuid").int("n"))
          o["groupCount"] = .int(try tx.single("SELECT count(*) AS n FROM scim_groups WHERE workspace_id = \(wid)::uuid").int("n"))
          return .object(o)
        }
      },
      MethodSpec("group.list", summary: "The directory's groups with their role mappings.", params: [.workspaceId], result: "{groups}") { p, _ in
        try self.listGroups(p)
      },
      MethodSpec(
        "group.mapRole", summary: "Maps a group to a role with a priority (1 is highest) or removes the mapping (role null); roles are recomputed at once.",
        params: [
          .workspaceId, ParamSpec("groupId", .uuid), ParamSpec("role", .nullable(.enumeration(["admin", "creator", "viewer"]))),
          .optional("priority", .integer(min: 1, max: 1_000_000)), .actor,
        ], result: "Group"
      ) { p, c in try self.mapRole(p, c) },
      MethodSpec(
        "group.mapRoles", summary: "Several group.mapRole changes at once, in one transaction: all of them or none.",
        params: [
          .workspaceId,
          ParamSpec(
            "mappings",
            .array(
              .object([ParamSpec("groupId", .uuid), ParamSpec("role", .nullable(.enumeration(["admin", "creator", "viewer"]))), .optional("priority", .integer(min: 1, max: 1_000_000))]),
              maxItems: 500)), .actor,
        ], result: "{groups}"
      ) { p, c in ["groups": .array(try self.mapRoles(workspaceId: try p.id("workspaceId"), p.optionalArray("mappings") ?? [], p, c))] },
      MethodSpec(
        "scim.request", summary: "Runs one SCIM request through the same handler as scim.sock.",
        params: [
          ParamSpec("httpMethod", .enumeration(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])), ParamSpec("path", .string(maxLength: 2048)),
          .optional("query", .any, "an object of query parameters or a query string"), .optional("authorization", .string(maxLength: 300)),
          .optional("body", .any, "the JSON body (object) or its text"), .optional("headers", .anyObject, "other request headers, e.g. If-Match"),
        ], result: "{status, headers, body}"
      ) { p, _ in try self.scimRequest(p) },
    ]
  }

  /// What every directory.* write shares: the workspace must exist and the
  /// actor be allowed; the change is audited and announced on
  /// roster_directories, so every process's token cache empties itself.
  func changeDirectory(
    _ p: Params, _ c: CallContext, action: String, _ change: (PGTransaction, WorkspaceRow) throws -> (row: PGRow, token: String?)
  ) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    defer { router.tokens.clear() }
    return try ctx.pool.transaction { tx in
      guard let w = try WorkspaceRow.load(tx, wid, forUpdate: true) else { throw RPCError.workspaceNotFound() }
      let actor = try ctx.resolveActor(p, workspaceId: wid, context: c, tx: tx)
      let (row, token) = try change(tx, w)
      try AuditLog.record(tx, workspaceId: wid, actor: actor, action: action, targetType: "directory", targetId: row["id"])
      try tx.query("SELECT pg_notify('roster_directories', \(wid))")
      return try directoryJSON(row, token: token)
    }
  }

  func enable(_ p: Params, _ c: CallContext) throws -> JSONValue {
    try changeDirectory(p, c, action: "directory.enable") { tx, w in
      guard w.isEnterprise else { throw RPCError.planRequired("Directory Sync") }
      if let existing = try tx.one("SELECT enabled FROM directories WHERE workspace_id = \(w.id)::uuid"), existing["enabled"] == "t" {
        throw RPCError.conflict("directory_enabled", "Directory Sync is already on; use directory.rotateToken for a new token.")
      }
      let token = Self.newToken()
      let row = try tx.single(
        """
        INSERT INTO directories (workspace_id, token_hash, enabled, token_rotated_at) VALUES (\(w.id)::uuid, \(SHA256.hex(token)), true, now())
        ON CONFLICT (workspace_id) DO UPDATE SET token_hash = EXCLUDED.token_hash, enabled = true, token_rotated_at = now()
        RETURNING *
        """)
      try EventLog.emit(tx, type: "directory.enabled", workspaceId: w.id)
      return (row, token)
    }
  }

  func rotate(_ p: Params, _ c: CallContext) throws -> JSONValue {
    try changeDirectory(p, c, action: "directory.rotate_token") { tx, w in
      let token = Self.newToken()
      guard
        let row = try tx.one(
          "UPDATE directories SET token_hash = \(SHA256.hex(token)), token_rotated_at = now() WHERE workspace_id = \(w.id)::uuid AND enabled RETURNING *")
      else { throw RPCError.conflict("directory_not_enabled", "Directory Sync is not on for this workspace; use directory.enable.") }
      return (row, token)
    }
  }

  func disable(_ p: Params, _ c: CallContext) throws -> JSONValue {
    try changeDirectory(p, c, action: "directory.disable") { tx, w in
      guard let row = try tx.one("UPDATE directories SET token_hash = NULL, enabled = false WHERE workspace_id = \(w.id)::uuid RETURNING *") else {
        throw RPCError.notFound("Directory", reason: "directory_not_found")
      }
      return (row, nil)
    }
  }

  func groupJSON(_ r: PGRow) throws -> JSONValue {
    [
      "groupId": .string(try r.string("id")), "displayName": .string(try r.string("display_name")), "role": .orNull(r["role"]),
      "priority": .orNull(r.optionalInt("priority")), "memberCount": .int(try r.int("member_count")),
    ]
  }

  static let groupSelect: SQL = """
    SELECT g.id, g.display_name, g.role, g.priority, (SELECT count(*) FROM scim_group_members gm WHERE gm.group_id = g.id) AS member_count
    FROM scim_groups g
    """

  func listGroups(_ p: Params) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    return try ctx.pool.transaction { tx in
      guard try WorkspaceRow.load(tx, wid) != nil else { throw RPCError.workspaceNotFound() }
      let rows = try tx.query(Self.groupSelect + " WHERE g.workspace_id = \(wid)::uuid ORDER BY lower(g.display_name)").rows
      return ["groups": .array(try rows.map(groupJSON))]
    }
  }

  func mapRole(_ p: Params, _ c: CallContext) throws -> JSONValue {
    let mapping: JSONValue = ["groupId": p["groupId"] ?? .null, "role": p["role"] ?? .null, "priority": p["priority"] ?? .null]
    let groups = try mapRoles(workspaceId: try p.id("workspaceId"), [mapping], p, c)
    return groups.first ?? .null
  }

  /// Several mappings in one transaction: all of them or none (the guided
  /// setup's roles form, G3). Roles are recomputed once for every member
  /// concerned.
  func mapRoles(workspaceId wid: String, _ mappings: [JSONValue], _ p: Params, _ c: CallContext) throws -> [JSONValue] {
    var wanted: [(id: String, role: String?, priority: Int64?)] = []
    for (i, m) in mappings.enumerated() {
      let field = mappings.count == 1 ? "" : "mappings[\(i)]."
      guard let gid = m["groupId"]?.stringValue?.lowercased(), isUUID(gid) else {
        throw RPCError.invalidParam(field + "groupId", "'\(field)groupId' must be a group id.")
      }
      let role = m["role"]?.stringValue
      if let role, !["admin", "creator", "viewer"].contains(role) {
        throw RPCError.invalidParam(field + "role", "'\(field)role' must be admin, creator, viewer or null.")
      }
      let priority = m["priority"]?.intValue
      if role != nil && priority == nil {
        throw RPCError.invalidParam(
          field + "priority", "Mapping a group to a role needs a 'priority' (a positive integer; 1 is the highest).", reason: "missing_param")
      }
      if let priority, !(1...1_000_000).contains(priority) {
        throw RPCError.invalidParam(field + "priority", "'\(field)priority' must be from 1 to 1000000 (1 is the highest).")
      }
      wanted.append((gid, role, role == nil ? nil : priority))
    }
    return try ctx.withTargetProtection {
      try ctx.pool.transaction { tx in
        guard let w = try WorkspaceRow.load(tx, wid, lock: .share) else { throw RPCError.workspaceNotFound() }
        let actor = try ctx.resolveActor(p, workspaceId: wid, context: c, tx: tx)
        var members = Set<String>()
        var befores: [String: JSONValue] = [:]
        for g in wanted.sorted(by: { $0.id < $1.id }) {
          guard let before = try tx.one(Self.groupSelect + " WHERE g.id = \(g.id)::uuid AND g.workspace_id = \(wid)::uuid FOR UPDATE OF g") else {
            throw RPCError.notFound("Group", reason: "group_not_found")
          }
          befores[g.id] = try groupJSON(before)
          try tx.query("UPDATE scim_groups SET role = \(g.role), priority = \(g.priority) WHERE id = \(g.id)::uuid")
          members.formUnion(try tx.query("SELECT member_id FROM scim_group_members WHERE group_id = \(g.id)::uuid").rows.compactMap { $0["member_id"] })
        }
        try RoleSync(ctx: ctx).recompute(tx, workspace: w, memberIds: Array(members))
        var out: [JSONValue] = []
        for g in wanted {
          let after = try groupJSON(tx.single(Self.groupSelect + " WHERE g.id = \(g.id)::uuid", "the group"))
          try AuditLog.record(tx, workspaceId: wid, actor: actor, action: "group.map_role", targetType: "group", targetId: g.id, before: befores[g.id], after: after)
          out.append(after)
        }
        return out
      }
    }
  }

  func scimRequest(_ p: Params) throws -> JSONValue {
    var query: [(String, String)] = []
    switch p["query"] {
    case .string(let s)?: query = HTTPRequest.parseQuery(s.hasPrefix("?") ? String(s.dropFirst()) : s)
    case .object(let o)?:
      for (k, v) in o.sorted(by: { $0.key < $1.key }) {
        guard let s = v.stringValue ?? v.intValue.map(String.init) else {
          throw RPCError.invalidParam("query", "Query parameter values must be strings or integers.")
        }
        query.append((k, s))
      }
    case nil: break
    default: throw RPCError.invalidParam("query", "'query' must be an object or a query string.")
    }
    var path = try p.string("path")
    if let q = path.firstIndex(of: "?") {
      query += HTTPRequest.parseQuery(String(path[path.index(after: q)...]))
      path = String(path[..<q])
    }
    var body: [UInt8] = []
    switch p["body"] {
    case .string(let s)?: body = Array(s.utf8)
    case .some(let v): body = JSONWriter.bytes(v)
    case nil: break
    }
    var headers: [(name: String, value: String)] = []
    for (k, v) in p.optionalObject("headers") ?? [:] {
      if let s = v.stringValue { headers.append((k, s)) }
    }
    let r = SCIMRequest(
      method: try p.string("httpMethod"), path: path, query: query, authorization: p.optionalString("authorization"), headers: headers,
      body: body, contentType: headers.first { $0.name.lowercased() == "content-type" }?.value ?? "application/scim+json")
    return handle(r).rpc
  }
}

extension DirectoryService {
  /// The application errors of this module's methods (rpc.discover, docs/api.md).
  static let errorDocs: [String: [ErrorDoc]] = [
    "directory.enable": [.conflict("plan_required"), .conflict("directory_enabled")],
    "directory.rotateToken": [.notFound("directory_not_found"), .conflict("directory_not_enabled")],
    "directory.disable": [.notFound("directory_not_found")],
    "directory.get": [.notFound("directory_not_found")],
    "group.list": [],
    "group.mapRole": [.notFound("group_not_found"), .conflict("transfer_target_protected"), .conflict("last_admin")],
    "group.mapRoles": [.notFound("group_not_found"), .conflict("transfer_target_protected"), .conflict("last_admin")],
    "scim.request": [],
  ]
}
