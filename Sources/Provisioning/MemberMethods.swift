import Addresses
import Foundation
import JSON
import JSONRPC
import Policy
import Postgres
import RosterStore
import Vocabulary
import ServiceKit

extension ProvisioningService {
  func memberMethods() -> [MethodSpec] {
    [
      MethodSpec(
        "member.add", summary: "Invites someone into the workspace (creates the user if new).",
        params: [
          .workspaceId, ParamSpec("email", .email), .optional("name", .string(maxLength: 200)), .optional("role", .enumeration(roles)),
          .actor,
        ], result: "Member"
      ) { p, c in try self.addMember(p, c) },
      MethodSpec("member.get", summary: "One member.", params: [.workspaceId, ParamSpec("memberId", .uuid)], result: "Member") { p, _ in
        try self.ctx.pool.transaction { tx in
          guard let m = try MemberRow.load(tx, workspaceId: try p.id("workspaceId"), memberId: try p.id("memberId")) else {
            throw RPCError.memberNotFound()
          }
          return m.json
        }
      },
      MethodSpec(
        "member.list", summary: "Members of a workspace, filtered and paged.",
        params: [
          .workspaceId, .optional("email", .string(maxLength: 320)), .optional("status", .enumeration(["active", "deactivated"])),
          .optional("role", .enumeration(roles)),
          .optional(
            "signInBlocked", .enumeration(["outside_domain", "deactivated", "any", "none"]),
            "members who cannot sign in for this reason (any: for any reason; none: members who can)"),
          .limit, .optional("cursor", .uuid, "nextCursor of the previous page"),
        ], result: "{members, nextCursor}"
      ) { p, _ in try self.listMembers(p) },
      MethodSpec(
        "member.setRole", summary: "Sets a member's role by hand (roleSource becomes manual).",
        params: [.workspaceId, ParamSpec("memberId", .uuid), ParamSpec("role", .enumeration(roles)), .actor], result: "Member"
      ) { p, c in try self.setRole(p, c) },
    ]
  }

  func addMember(_ p: Params, _ c: CallContext) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    let email = EmailAddress.storageForm(try p.string("email"))
    guard EmailAddress.key(email) != nil else {
      throw RPCError.invalidParam("email", "'email' has an invalid domain.", reason: "invalid_email")
    }
    return try ctx.pool.transaction { tx in
      guard let w = try WorkspaceRow.load(tx, wid) else { throw RPCError.workspaceNotFound() }
      let actor = try ctx.resolveActor(p, workspaceId: wid, context: c, tx: tx)
      let user = try Users.findOrCreate(tx, email: email, name: p.optionalString("name"))
      let asked: Role? = try p.optionalWord("role")
      let role = asked ?? w.defaultRole
      let source: RoleSource = asked == nil ? .default : .manual
      let existing = try tx.one("SELECT id, status FROM members WHERE workspace_id = \(wid)::uuid AND user_id = \(user.id)::uuid FOR UPDATE")
      let mid: String
      if let existing {
        guard existing["status"] == "deleted" else {
          throw RPCError.conflict(
            "member_exists", "\(email) is already a member of this workspace (\(existing["status"] ?? "")).",
            extra: ["memberId": .orNull(existing["id"])])
        }
        mid = try existing.string("id")
        try tx.query(
          """
          UPDATE members SET status = 'active', role = \(role), role_source = \(source), role_attribute = NULL, joined = 'invite',
            sso_linked = false, sso_link_required = false, deleted_at = NULL, deactivated_at = NULL, created_at = now(), updated_at = now()
          WHERE id = \(mid)::uuid
          """)
      } else {
        mid = try tx.single(
          """
          INSERT INTO members (workspace_id, user_id, role, role_source, status, joined)
          VALUES (\(wid)::uuid, \(user.id)::uuid, \(role), \(source), 'active', 'invite') RETURNING id
          """).string("id")
      }
      let m = try required(MemberRow.load(tx, workspaceId: wid, memberId: mid), "the member")
      try AuditLog.record(
        tx, workspaceId: wid, actor: actor, action: "member.add", targetType: "member", targetId: mid, after: m.json,
        event: .init("member.created", memberId: mid, data: ["role": .string(role.rawValue), "joined": "invite"]))
      return m.json
    }
  }

  func listMembers(_ p: Params) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    let limit = p.limit()
    var q = MemberRow.select + " WHERE m.workspace_id = \(wid)::uuid AND m.status <> 'deleted'"
    if let email = p.optionalString("email") { q.append(" AND u.email_key = \(Users.key(email))") }
    if let status = p.optionalString("status") { q.append(" AND m.status = \(status)") }
    if let role = p.optionalString("role") { q.append(" AND m.role = \(role)") }
    switch p.optionalString("signInBlocked") {
    case "any"?: q.append(" AND (" + MemberRow.signInBlockedSQL + ") IS NOT NULL")
    case "none"?: q.append(" AND (" + MemberRow.signInBlockedSQL + ") IS NULL")
    case let reason?: q.append(" AND (" + MemberRow.signInBlockedSQL + ") = \(reason)")
    case nil: break
    }
    if let cursor = p.optionalID("cursor") { q.append(" AND m.id > \(cursor)::uuid") }
    q.append(" ORDER BY m.id LIMIT \(limit + 1)")
    return try ctx.pool.transaction { tx in
      guard try tx.one("SELECT 1 FROM workspaces WHERE id = \(wid)::uuid") != nil else { throw RPCError.workspaceNotFound() }
      let rows = try tx.query(q).rows.map(MemberRow.init)
      let page = rows.prefix(limit)
      return ["members": .array(page.map(\.json)), "nextCursor": rows.count > limit ? .orNull(page.last?.id) : .null]
    }
  }

  func setRole(_ p: Params, _ c: CallContext) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    let mid = try p.id("memberId")
    let role: Role = try p.word("role")
    return try ctx.withTargetProtection {
      try ctx.pool.transaction { tx in
        guard let w = try WorkspaceRow.load(tx, wid, forUpdate: true) else { throw RPCError.workspaceNotFound() }
        let actor = try ctx.resolveActor(p, workspaceId: wid, context: c, tx: tx)
        guard let before = try MemberRow.load(tx, workspaceId: wid, memberId: mid, forUpdate: true) else { throw RPCError.memberNotFound() }
        if role == .viewer { try TargetProtection.check(w, memberId: mid, attempt: .demote) }
        if role != .admin { try AdminGuard.ensureNotLastAdmin(tx, member: before) }
        try tx.query(
          "UPDATE members SET role = \(role), role_source = 'manual', updated_at = now() WHERE id = \(mid)::uuid")
        let after = try required(MemberRow.load(tx, workspaceId: wid, memberId: mid), "the member")
        try AuditLog.record(
          tx, workspaceId: wid, actor: actor, action: "member.set_role", targetType: "member", targetId: mid, before: before.json,
          after: after.json,
          event: before.role == role
            ? nil
            : .init(
              "member.role_changed", memberId: mid,
              data: ["from": .string(before.role.rawValue), "to": .string(role.rawValue), "roleSource": "manual"]))
        return after.json
      }
    }
  }
}
