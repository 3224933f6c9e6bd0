import Foundation
import JSON
import JSONRPC
import Policy
import Postgres
import RosterStore
import ServiceKit

extension ProvisioningService {
  func ssoMethods() -> [MethodSpec] {
    [
      MethodSpec(
        "sso.configure",
        summary:
          "Configures the SSO connection (S1). The first time, pre-existing members must sign in once via SSO (S4): their sessions are revoked and they are emailed.",
        params: [.workspaceId, ParamSpec("connection", .anyObject), .optional("defaultRole", .enumeration(roles)), .actor],
        result: "SSO settings with outsideDomainMembers"
      ) { p, c in try self.configureSSO(p, c) },
      MethodSpec(
        "sso.update", summary: "Changes the default role, Enforce SSO (S2), Domain Capture (S6) and break-glass admins (S9).",
        params: [
          .workspaceId, .optional("defaultRole", .enumeration(roles)), .optional("enforceSso", .boolean),
          .optional("domainCapture", .boolean), .optional("bypassMemberIds", .array(.uuid, maxItems: 10)), .actor,
        ], result: "SSO settings"
      ) { p, c in try self.updateSSO(p, c) },
      MethodSpec("sso.get", summary: "The SSO settings.", params: [.workspaceId], result: "SSO settings") { p, _ in
        try self.ctx.pool.transaction { tx in
          guard let w = try WorkspaceRow.load(tx, try p.id("workspaceId")) else { throw RPCError.workspaceNotFound() }
          return w.ssoJSON
        }
      },
    ]
  }

  func configureSSO(_ p: Params, _ c: CallContext) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    let connection: JSONValue
    do {
      connection = try SSOConnection.validate(p["connection"] ?? .null)
    } catch {
      throw RPCError.invalidParam(error.field, error.message, reason: "invalid_connection")
    }
    return try ctx.pool.transaction { tx in
      guard let w = try WorkspaceRow.load(tx, wid, forUpdate: true) else { throw RPCError.workspaceNotFound() }
      let actor = try ctx.resolveActor(p, workspaceId: wid, context: c, tx: tx)
      guard w.isEnterprise else { throw RPCError.planRequired("SSO") }
      guard try tx.one("SELECT 1 FROM domains WHERE workspace_id = \(wid)::uuid AND status = 'verified' LIMIT 1") != nil else {
        throw RPCError.conflict("no_verified_domain", "Verify at least one domain before configuring SSO.")
      }
      let defaultRole = p.optionalString("defaultRole") ?? w.defaultRole
      let firstTime = w.ssoConfiguredAt == nil
      if firstTime {
        try tx.query(
          """
          UPDATE workspaces SET sso_connection = \(connection)::jsonb, sso_configured_at = now(), sso_default_role = \(defaultRole),
            sso_tested = false, enforce_sso = false
          WHERE id = \(wid)::uuid
          """)
        try requireSSOLink(tx, workspace: w)
        try EventLog.emit(tx, type: "sso.enabled", workspaceId: wid, data: ["protocol": connection["protocol"] ?? .null])
      } else if connection != w.ssoConnection {
        // A new connection must prove itself before it can lock anyone out (S2).
        try tx.query(
          """
          UPDATE workspaces SET sso_connection = \(connection)::jsonb, sso_default_role = \(defaultRole), sso_tested = false,
            enforce_sso = false
          WHERE id = \(wid)::uuid
          """)
      } else {
        try tx.query("UPDATE workspaces SET sso_default_role = \(defaultRole) WHERE id = \(wid)::uuid")
      }
      let after = try required(WorkspaceRow.load(tx, wid), "the workspace")
      try AuditLog.record(
        tx, workspaceId: wid, actor: actor, action: "sso.configure", targetType: "workspace", targetId: wid, before: w.ssoJSON,
        after: after.ssoJSON)
      var out = after.ssoJSON.objectValue!
      let outside = try outsideDomainMembers(tx, workspaceId: wid, plus: nil)
      out["outsideDomainMembers"] = .array(outside.members.map(\.brief))
      out["outsideDomainMemberCount"] = .int(outside.count)
      return .object(out)
    }
  }

  /// S4, set-based: every active member must sign in once via SSO; their
  /// sessions are revoked (one event each) and each gets the "sign in again
  /// via SSO" email — all in the configuring transaction.
  func requireSSOLink(_ tx: PGTransaction, workspace w: WorkspaceRow) throws {
    try tx.query(
      "UPDATE members SET sso_link_required = true, sso_linked = false, updated_at = now() WHERE workspace_id = \(w.id)::uuid AND status = 'active'"
    )
    try tx.query(
      """
      INSERT INTO events (type, workspace_id, member_id, data)
      SELECT 'member.sessions_revoked', m.workspace_id, m.id, '{"reason":"sso_configured"}'::jsonb
      FROM members m WHERE m.workspace_id = \(w.id)::uuid AND m.status = 'active' ORDER BY m.id
      """)
    try tx.query("SELECT pg_notify('roster_events', 'batch')")
    let signInUrl = ctx.config.publicURL + "/login/sso?workspace=" + w.id
    try tx.query(
      """
      INSERT INTO notifications (id, template, to_address, data, workspace_id, message_id)
      SELECT n.id, 'sso_live', n.email,
             jsonb_build_object('workspaceName', \(w.name)::text, 'name', n.name, 'signInUrl', \(signInUrl)::text),
             \(w.id)::uuid, '<' || n.id::text || '@' || \(ctx.mailDomain)::text || '>'
      FROM (SELECT roster_uuid7() AS id, u.email, u.name FROM members m JOIN users u ON u.id = m.user_id
            WHERE m.workspace_id = \(w.id)::uuid AND m.status = 'active') n
      """)
    try tx.query("SELECT pg_notify('roster_outbox', 'batch')")
  }

  func updateSSO(_ p: Params, _ c: CallContext) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    return try ctx.pool.transaction { tx in
      guard let w = try WorkspaceRow.load(tx, wid, forUpdate: true) else { throw RPCError.workspaceNotFound() }
      let actor = try ctx.resolveActor(p, workspaceId: wid, context: c, tx: tx)
      guard w.isEnterprise else { throw RPCError.planRequired("SSO") }
      guard w.ssoConfiguredAt != nil else {
        throw RPCError.conflict("sso_not_configured", "Configure SSO (sso.configure) before changing its settings.")
      }
      let enforce = p.optionalBool("enforceSso") ?? w.enforceSso
      if enforce && !w.enforceSso && !w.ssoTested {
        throw RPCError.conflict(
          "sso_untested", "Enforce SSO can be switched on only after one successful sign-in through the configured connection.")
      }
      var bypass = w.bypassMemberIds
      if let list = p.optionalArray("bypassMemberIds") {
        let ids = Array(Set(list.compactMap { $0.stringValue?.lowercased() }))
        guard ids.count <= 2 else {
          throw RPCError.invalidParam("bypassMemberIds", "At most two admins may bypass SSO.", reason: "too_many_bypass_members")
        }
        for id in ids {
          let m = try tx.one("SELECT role, status FROM members WHERE id = \(id)::uuid AND workspace_id = \(wid)::uuid")
          guard m?["role"] == "admin", m?["status"] == "active" else {
            throw RPCError.invalidParam(
              "bypassMemberIds", "Member \(id) is not an active admin of this workspace; only admins may bypass SSO.",
              reason: "bypass_member_not_admin")
          }
        }
        bypass = ids.sorted()
      }
      let capture = p.optionalBool("domainCapture") ?? w.domainCapture
      let role = p.optionalString("defaultRole") ?? w.defaultRole
      try tx.query(
        """
        UPDATE workspaces SET enforce_sso = \(enforce), domain_capture = \(capture), sso_default_role = \(role),
          sso_bypass_member_ids = \(PGTextArray(bypass))::uuid[]
        WHERE id = \(wid)::uuid
        """)
      let after = try required(WorkspaceRow.load(tx, wid), "the workspace")
      try AuditLog.record(
        tx, workspaceId: wid, actor: actor, action: "sso.update", targetType: "workspace", targetId: wid, before: w.ssoJSON,
        after: after.ssoJSON)
      return after.ssoJSON
    }
  }
}
