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

  /// S4, set-based: every member who exists now (active or deactivated)
  /// must sign in once via SSO before the workspace recognises them; the
  /// active ones have their sessions revoked (one event each) and get the
  /// "sign in again via SSO" email — all in the configuring transaction. A
  /// deactivated member gets the email when reactivated.
  func requireSSOLink(_ tx: PGTransaction, workspace w: WorkspaceRow) throws {
    let active = try tx.query(
      """
      UPDATE members SET sso_link_required = true, sso_linked = false, updated_at = now()
      WHERE workspace_id = \(w.id)::uuid AND status IN ('active', 'deactivated') RETURNING id, status
      """
    ).rows.filter { $0["status"] == "active" }.compactMap { $0["id"] }.sorted()
    try EventLog.emitMany(
      tx, type: "member.sessions_revoked", workspaceId: w.id, memberIds: active, data: active.map { _ in ["reason": "sso_configured"] })
    try ctx.enqueueSSOLinkMail(tx, workspace: w, memberIds: active)
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
      if let list = p.optionalArray("bypassMemberIds") {
        let ids = Array(Set(list.compactMap { $0.stringValue?.lowercased() })).sorted()
        guard ids.count <= 2 else {
          throw RPCError.invalidParam("bypassMemberIds", "At most two admins may bypass SSO.", reason: "too_many_bypass_members")
        }
        // S9: checked under the members' row locks (after the workspace's),
        // so a demotion cannot slip in between the check and the write.
        let rows = try tx.query(
          "SELECT id, role, status FROM members WHERE id = ANY(\(PGTextArray(ids))::uuid[]) AND workspace_id = \(wid)::uuid ORDER BY id FOR UPDATE"
        ).rows
        for id in ids {
          let m = rows.first { $0["id"] == id }
          guard m?["role"] == "admin", m?["status"] == "active" else {
            throw RPCError.invalidParam(
              "bypassMemberIds", "Member \(id) is not an active admin of this workspace; only admins may bypass SSO.",
              reason: "bypass_member_not_admin")
          }
        }
        try tx.query(
          """
          UPDATE members SET sso_bypass = (id = ANY(\(PGTextArray(ids))::uuid[]))
          WHERE workspace_id = \(wid)::uuid AND (sso_bypass OR id = ANY(\(PGTextArray(ids))::uuid[]))
          """)
      }
      let capture = p.optionalBool("domainCapture") ?? w.domainCapture
      let role = p.optionalString("defaultRole") ?? w.defaultRole
      try tx.query(
        """
        UPDATE workspaces SET enforce_sso = \(enforce), domain_capture = \(capture), sso_default_role = \(role)
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
