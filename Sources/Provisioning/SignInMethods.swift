import Foundation
import JSON
import JSONRPC
import Policy
import Postgres
import RosterStore
import ServiceKit

extension ProvisioningService {
  func signInMethods() -> [MethodSpec] {
    [
      MethodSpec(
        "auth.signIn",
        summary:
          "What a sign-in means (S1–S9): the workspaces the user may enter with their roles, the ones refused and why. Creates JIT/captured memberships.",
        params: [
          ParamSpec("email", .email), ParamSpec("method", .enumeration(["password", "sso"])),
          .optional("workspaceId", .uuid, "for sso: the workspace whose connection authenticated the user"),
          .optional(
            "profile",
            .object([
              .optional("name", .string(maxLength: 200)), .optional("givenName", .string(maxLength: 200)),
              .optional("familyName", .string(maxLength: 200)), .optional("idpUserId", .string(maxLength: 500)),
              .optional("groups", .array(.string(maxLength: 500), maxItems: 1000)),
            ])),
        ], result: "SignInDecision {allowed, reason?, user, workspaces, blocked}"
      ) { p, _ in try self.signIn(p) }
    ]
  }

  struct RetrySignIn: Error {}

  func signIn(_ p: Params) throws -> JSONValue {
    let rawEmail = try p.string("email")
    guard let domain = DomainName.ofEmail(rawEmail) else {
      throw RPCError.invalidParam("email", "'email' has an invalid domain.", reason: "invalid_email")
    }
    let email = EmailAddress.storageForm(rawEmail)
    let method = SignInMethod(rawValue: try p.string("method"))!
    let ssoWorkspace = p.optionalID("workspaceId")
    if method == .sso && ssoWorkspace == nil {
      throw RPCError.invalidParam("workspaceId", "An SSO sign-in needs 'workspaceId': the workspace whose connection authenticated the user.", reason: "missing_param")
    }
    let profile = p.optionalObject("profile") ?? [:]
    var profileName = profile["name"]?.stringValue
    if profileName == nil, let g = profile["givenName"]?.stringValue {
      profileName = [g, profile["familyName"]?.stringValue].compactMap { $0 }.joined(separator: " ")
    }
    for attempt in 1...3 {
      do {
        return try ctx.pool.transaction { tx in
          try signInTransaction(tx, email: email, domain: domain, method: method, ssoWorkspace: ssoWorkspace, name: profileName)
        }
      } catch is RetrySignIn where attempt < 3 {
        continue  // a concurrent sign-in created the same membership: decide again
      }
    }
    throw RPCError.unavailable("The sign-in could not be decided because of concurrent changes; try again.")
  }

  private func signInTransaction(
    _ tx: PGTransaction, email: String, domain: String, method: SignInMethod, ssoWorkspace: String?, name: String?
  ) throws -> JSONValue {
    if let sid = ssoWorkspace {
      guard let s = try WorkspaceRow.load(tx, sid) else { throw RPCError.workspaceNotFound() }
      guard s.ssoConfigured else {
        throw RPCError.conflict("sso_not_configured", "Workspace \(s.name) has no active SSO connection.")
      }
    }
    let user = try Users.findOrCreate(tx, email: email, name: name)
    let memberships = try tx.query(
      """
      SELECT id, workspace_id, role, status, joined, sso_linked, sso_link_required FROM members WHERE user_id = \(user.id)::uuid
      """
    ).rows.map { r in
      MembershipState(
        workspaceId: try r.string("workspace_id"), memberId: try r.string("id"), role: Role(rawValue: try r.string("role")) ?? .viewer,
        status: MembershipStatus(rawValue: try r.string("status")) ?? .deleted, joined: JoinedVia(rawValue: try r.string("joined")) ?? .invite,
        ssoLinked: try r.bool("sso_linked"), ssoLinkRequired: try r.bool("sso_link_required"))
    }
    let claiming = try tx.one("SELECT workspace_id FROM domains WHERE domain = \(domain) AND status = 'verified'")?["workspace_id"]
    var ids = Set(memberships.map(\.workspaceId))
    if let claiming { ids.insert(claiming) }
    if let ssoWorkspace { ids.insert(ssoWorkspace) }
    let rows = try tx.query(
      WorkspaceRow.select + " WHERE id = ANY(\(PGTextArray(Array(ids)))::uuid[])").rows.map(WorkspaceRow.init)
    let verified = try tx.query(
      "SELECT workspace_id, domain FROM domains WHERE status = 'verified' AND workspace_id = ANY(\(PGTextArray(Array(ids)))::uuid[])"
    ).rows
    var domainsByWorkspace: [String: Set<String>] = [:]
    for r in verified { domainsByWorkspace[try r.string("workspace_id"), default: []].insert(try r.string("domain")) }
    var policies: [String: WorkspacePolicy] = [:]
    var names: [String: String] = [:]
    for w in rows {
      names[w.id] = w.name
      policies[w.id] = WorkspacePolicy(
        workspaceId: w.id, name: w.name, ssoConfigured: w.ssoConfigured, enforceSso: w.enforceSso, domainCapture: w.domainCapture,
        defaultRole: Role(rawValue: w.defaultRole) ?? .creator, verifiedDomains: w.isEnterprise ? domainsByWorkspace[w.id] ?? [] : [],
        bypassMemberIds: Set(w.bypassMemberIds))
    }
    var decision = SignInPolicy.decide(
      SignInRequest(
        emailDomain: domain, method: method, ssoWorkspaceId: ssoWorkspace, memberships: memberships, workspaces: policies,
        claimingWorkspaceId: claiming))

    for action in decision.actions {
      switch action {
      case .createMembership(let wid, let role, let joined):
        let linked = method == .sso && wid == ssoWorkspace
        guard
          let r = try tx.one(
            """
            INSERT INTO members (workspace_id, user_id, role, role_source, status, joined, sso_linked)
            VALUES (\(wid)::uuid, \(user.id)::uuid, \(role.rawValue), 'default', 'active', \(joined.rawValue), \(linked))
            ON CONFLICT (workspace_id, user_id) DO NOTHING RETURNING id
            """)
        else { throw RetrySignIn() }
        let mid = try r.string("id")
        if let i = decision.workspaces.firstIndex(where: { $0.workspaceId == wid && $0.memberId == nil }) {
          decision.workspaces[i].memberId = mid
        }
        try AuditLog.record(
          tx, workspaceId: wid, actor: .system("sign-in"), action: "member.\(joined.rawValue)", targetType: "member", targetId: mid,
          after: ["email": .string(email), "role": .string(role.rawValue), "joined": .string(joined.rawValue)])
        try EventLog.emit(
          tx, type: "member.created", workspaceId: wid, memberId: mid, data: ["role": .string(role.rawValue), "joined": .string(joined.rawValue)])
      case .linkSso(let mid):
        try tx.query("UPDATE members SET sso_linked = true, updated_at = now() WHERE id = \(mid)::uuid")
        try EventLog.emit(tx, type: "member.sso_linked", workspaceId: memberships.first { $0.memberId == mid }?.workspaceId, memberId: mid)
      case .markSsoTested(let wid):
        if try tx.query("UPDATE workspaces SET sso_tested = true WHERE id = \(wid)::uuid AND NOT sso_tested").affected > 0 {
          try AuditLog.record(
            tx, workspaceId: wid, actor: .system("sign-in"), action: "sso.tested", targetType: "workspace", targetId: wid,
            after: ["email": .string(email)])
        }
        if let m = memberships.first(where: { $0.workspaceId == wid && $0.status == .active && !$0.ssoLinked }) {
          try tx.query("UPDATE members SET sso_linked = true WHERE id = \(m.memberId)::uuid")
        }
      case .breakGlass(let wid, let mid):
        try AuditLog.record(
          tx, workspaceId: wid, actor: .member(mid), action: "sso.break_glass_sign_in", targetType: "member", targetId: mid,
          after: ["email": .string(email)])
        let workspaceName = names[wid] ?? ""
        for admin in try TargetProtection.admins(tx, workspaceId: wid) {
          try ctx.enqueueMail(
            tx, template: "break_glass_sign_in", to: admin.email,
            data: [
              "workspaceName": .string(workspaceName), "adminName": .string(admin.name), "memberEmail": .string(email),
              "at": .string(PGTime.format(Date())),
            ], workspaceId: wid)
        }
      }
    }

    var result: [String: JSONValue] = [
      "allowed": .bool(decision.allowed),
      "user": ["userId": .string(user.id), "email": .string(email), "name": .string(user.name)],
      "workspaces": .array(
        decision.workspaces.map {
          [
            "workspaceId": .string($0.workspaceId), "workspaceName": .string(names[$0.workspaceId] ?? ""),
            "memberId": .orNull($0.memberId), "role": .string($0.role.rawValue), "joined": .string($0.joined.rawValue),
          ]
        }),
      "blocked": .array(
        decision.blocked.map {
          ["workspaceId": .string($0.workspaceId), "workspaceName": .string(names[$0.workspaceId] ?? ""), "reason": .string($0.reason)]
        }),
    ]
    if let reason = decision.reason {
      result["reason"] = .string(reason)
      let wname = decision.blocked.first { $0.reason == reason }.flatMap { names[$0.workspaceId] } ?? ""
      result["message"] = .string(Self.refusalMessage(reason, workspace: wname, domain: domain))
    }
    return .object(result)
  }

  static func refusalMessage(_ reason: String, workspace: String, domain: String) -> String {
    switch reason {
    case "sso_required": return "\(domain) belongs to workspace \(workspace), which requires signing in with SSO."
    case "deactivated": return "This account has been deactivated by workspace \(workspace)."
    case "outside_domain": return "This email is outside the domains of workspace \(workspace), which uses SSO."
    case "not_a_member": return "This account is not a member of workspace \(workspace); ask an admin for an invite."
    case "sso_link_required": return "Sign in once with SSO to keep using workspace \(workspace)."
    default: return "The sign-in was refused (\(reason))."
    }
  }
}
