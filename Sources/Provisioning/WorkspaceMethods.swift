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
