import Addresses
import Foundation
import JSON
import JSONRPC
import Policy
import Postgres
import RosterStore
import ServiceKit

let plans = ["starter", "business", "enterprise"]
let roles = ["admin", "creator", "viewer"]

extension ProvisioningService {
  func workspaceMethods() -> [MethodSpec] {
    [
      MethodSpec(
        "workspace.create", summary: "Creates a workspace with its owner as first admin member (creates the user if new).",
        params: [
          ParamSpec("name", .string(maxLength: 200)), ParamSpec("plan", .enumeration(plans)),
          ParamSpec("owner", .object([ParamSpec("email", .email), .optional("name", .string(maxLength: 200))])),
        ], result: "Workspace"
      ) { p, _ in try self.createWorkspace(p) },
      MethodSpec(
        "workspace.find",
        summary:
          "Finds workspaces (operators): by name (case-insensitive, part of it), by domain (verified or pending), or by a member's email. Give exactly one.",
        params: [
          .optional("name", .string(maxLength: 200)), .optional("domain", .string(maxLength: 300)), .optional("memberEmail", .email), .limit,
        ], result: "{workspaces}"
      ) { p, c in try self.findWorkspaces(p, c) },
      MethodSpec("workspace.get", summary: "A workspace with its SSO and deprovisioning settings.", params: [.workspaceId], result: "Workspace") {
        p, _ in
        try self.ctx.pool.transaction { tx in
          guard let w = try WorkspaceRow.load(tx, try p.id("workspaceId")) else { throw RPCError.workspaceNotFound() }
          return w.json(publicURL: self.ctx.config.publicURL)
        }
      },
      MethodSpec(
        "workspace.setPlan", summary: "Changes the plan (ops only: plans come from billing). Enterprise features stay stored but inactive below Enterprise.",
        params: [.workspaceId, ParamSpec("plan", .enumeration(plans)), .actor], result: "Workspace"
      ) { p, c in
        try self.ctx.pool.transaction { tx in
          let wid = try p.id("workspaceId")
          guard let before = try WorkspaceRow.load(tx, wid, forUpdate: true) else { throw RPCError.workspaceNotFound() }
          let actor = try self.ctx.resolveActor(p, workspaceId: wid, context: c, tx: tx)
          // Plans come from billing: a workspace admin cannot upgrade their own.
          guard case .ops = actor else {
            throw RPCError.forbidden("ops_required", "Plans are set by billing: only an operator ({\"ops\": NAME}) may change a workspace's plan.")
          }
          let plan = try p.string("plan")
          try tx.query("UPDATE workspaces SET plan = \(plan) WHERE id = \(wid)::uuid")
          // SCIM processes cache which plan a directory's workspace is on.
          try tx.query("SELECT pg_notify('roster_directories', \(wid))")
          try tx.query("SELECT pg_notify('roster_sso', \(wid))")  // SSO counts only on Enterprise (D1)
          try AuditLog.record(
            tx, workspaceId: wid, actor: actor, action: "workspace.set_plan", targetType: "workspace", targetId: wid,
            before: ["plan": .string(before.plan)], after: ["plan": .string(plan)])
          return try required(WorkspaceRow.load(tx, wid), "the workspace").json(publicURL: self.ctx.config.publicURL)
        }
      },
    ]
  }

  func createWorkspace(_ p: Params) throws -> JSONValue {
    let name = try p.string("name").trimmingCharacters(in: .whitespacesAndNewlines)
    guard !name.isEmpty else { throw RPCError.invalidParam("name", "'name' must not be empty.") }
    let owner = try p.object("owner")
    let email = EmailAddress.storageForm(owner["email"]?.stringValue ?? "")
    guard EmailAddress.key(email) != nil else {
      throw RPCError.invalidParam("owner.email", "'owner.email' has an invalid domain.", reason: "invalid_email")
    }
    return try ctx.pool.transaction { tx in
      let user = try Users.findOrCreate(tx, email: email, name: owner["name"]?.stringValue)
      let w = try tx.single("INSERT INTO workspaces (name, plan) VALUES (\(name), \(try p.string("plan"))) RETURNING id")
      let wid = try w.string("id")
      let m = try tx.single(
        """
        INSERT INTO members (workspace_id, user_id, role, role_source, status, joined)
        VALUES (\(wid)::uuid, \(user.id)::uuid, 'admin', 'manual', 'active', 'owner') RETURNING id
        """)
      let mid = try m.string("id")
      try tx.query("UPDATE workspaces SET owner_member_id = \(mid)::uuid WHERE id = \(wid)::uuid")
      let ws = try required(WorkspaceRow.load(tx, wid), "the workspace")
      try AuditLog.record(
        tx, workspaceId: wid, actor: .system("app"), action: "workspace.create", targetType: "workspace", targetId: wid,
        after: ws.json(publicURL: ctx.config.publicURL))
      try EventLog.emit(tx, type: "member.created", workspaceId: wid, memberId: mid, data: ["role": "admin", "joined": "owner"])
      return ws.json(publicURL: ctx.config.publicURL)
    }
  }
}

extension ProvisioningService {
  /// workspace.find: what an operator has (a name someone said, a domain, an
  /// address) to the workspace ids every other method takes.
  func findWorkspaces(_ p: Params, _ c: CallContext) throws -> JSONValue {
    guard let uid = c.peerUID, ctx.config.opsUIDs.contains(uid) else {
      throw RPCError.forbidden(
        "ops_not_permitted", "workspace.find is for operators: call it from a uid listed in ROSTER_OPS_UIDS.")
    }
    let given = ["name", "domain", "memberEmail"].filter { p[$0] != nil }
    guard given.count == 1 else {
      throw RPCError.invalidParams("Give exactly one of 'name', 'domain' and 'memberEmail'.", reason: "one_criterion")
    }
    let limit = p.limit(default: 50)
    let base: SQL = """
      SELECT w.id, w.name, w.plan, w.owner_member_id, w.created_at, w.sso_configured_at IS NOT NULL AS sso,
             (SELECT count(*) FROM members m WHERE m.workspace_id = w.id AND m.status = 'active') AS active_members
      """
    var q: SQL
    if let name = p.optionalString("name") {
      let trimmed = name.trimmingCharacters(in: .whitespaces)
      guard !trimmed.isEmpty else { throw RPCError.invalidParam("name", "'name' must not be empty.") }
      // LIKE's wildcards in the input are matched literally.
      let pattern = "%" + trimmed.lowercased().replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
        .replacingOccurrences(of: "_", with: "\\_") + "%"
      q = base + " FROM workspaces w WHERE lower(w.name) LIKE \(pattern) ORDER BY w.name, w.id LIMIT \(limit)"
    } else if let raw = p.optionalString("domain") {
      let domain: String
      do { domain = try DomainName.normalize(raw) } catch { throw RPCError.invalidParam("domain", error.message, reason: error.reason) }
      q = base + """
        , d.status AS domain_status FROM workspaces w JOIN domains d ON d.workspace_id = w.id
        WHERE d.domain = \(domain) AND d.status IN ('verified', 'pending') ORDER BY d.status DESC, w.name LIMIT \(limit)
        """
    } else {
      let email = try p.string("memberEmail")
      guard let key = EmailAddress.key(email) else { throw RPCError.invalidParam("memberEmail", "'memberEmail' is not a valid address.") }
      q = base + """
        , m.id AS member_id, m.role AS member_role, m.status AS member_status
        FROM users u JOIN members m ON m.user_id = u.id AND m.status <> 'deleted' JOIN workspaces w ON w.id = m.workspace_id
        WHERE u.email_key = \(key) ORDER BY w.name, w.id LIMIT \(limit)
        """
    }
    let rows = try ctx.pool.query(q).rows
    return [
      "workspaces": .array(
        try rows.map { r in
          var o: [String: JSONValue] = [
            "workspaceId": .string(try r.string("id")), "name": .string(try r.string("name")), "plan": .string(try r.string("plan")),
            "ownerMemberId": .orNull(r["owner_member_id"]), "createdAt": .orNull(r.time("created_at")), "ssoConfigured": .bool(try r.bool("sso")),
            "activeMembers": .int(try r.int("active_members")),
          ]
          if let status = r["domain_status"] { o["domainStatus"] = .string(status) }
          if let mid = r["member_id"] {
            o["member"] = ["memberId": .string(mid), "role": .orNull(r["member_role"]), "status": .orNull(r["member_status"])]
          }
                    return .object(o)
        })
    ]
  }
}

