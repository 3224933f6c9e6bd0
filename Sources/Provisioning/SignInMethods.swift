import Addresses
import Vocabulary
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
          "What a sign-in means: the workspaces the user may enter with their roles, the ones refused and why. Creates JIT/captured memberships.",
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

  /// Everything the decision reads, loaded in two statements.
  struct SignInState {
    var user: (id: String, name: String)?
    var memberships: [MembershipState]
    var claiming: String?
    var policies: [String: WorkspacePolicy]

    func name(_ workspaceId: String) -> String { policies[workspaceId]?.name ?? "" }
  }

  func signIn(_ p: Params) throws -> JSONValue {
    let rawEmail = try p.string("email")
    guard let domain = DomainName.ofEmail(rawEmail) else {
      throw RPCError.invalidParam("email", "'email' has an invalid domain.", reason: "invalid_email")
    }
    let email = EmailAddress.storageForm(rawEmail)
    guard let method = SignInMethod(rawValue: try p.string("method")) else {
      throw RPCError.invalidParam("method", "'method' must be \"password\" or \"sso\".")
    }
    let ssoWorkspace = p.optionalID("workspaceId")
    if method == .sso && ssoWorkspace == nil {
      throw RPCError.invalidParam(
        "workspaceId", "An SSO sign-in needs 'workspaceId': the workspace whose connection authenticated the user.", reason: "missing_param")
    }
    let profile = p.optionalObject("profile") ?? [:]
    var profileName = profile["name"]?.stringValue
    if profileName == nil, let g = profile["givenName"]?.stringValue {
      profileName = [g, profile["familyName"]?.stringValue].compactMap { $0 }.joined(separator: " ")
    }
    let groups = (profile["groups"]?.arrayValue ?? []).compactMap { $0.stringValue?.lowercased() }
    let request = SignInInput(email: email, domain: domain, method: method, ssoWorkspace: ssoWorkspace, name: profileName, groups: groups)
    return try decide(request)
  }

  /// P9: a sign-in Roster validated itself (SAML or OIDC) is decided exactly
  /// like `auth.signIn` with method `sso` through that workspace.
  package func ssoSignIn(workspaceId: String, email rawEmail: String, name: String?, groups: [String]) throws -> JSONValue {
    guard let domain = DomainName.ofEmail(rawEmail), EmailAddress.key(rawEmail) != nil else {
      throw RPCError.invalidParam("email", "The IdP sent an address that is not valid.", reason: "invalid_email")
    }
    return try decide(
      SignInInput(
        email: EmailAddress.storageForm(rawEmail), domain: domain, method: .sso, ssoWorkspace: workspaceId, name: name,
        groups: groups.map { $0.lowercased() }))
  }

  func decide(_ request: SignInInput) throws -> JSONValue {
    // Fast path: most sign-ins of known users change nothing, so decide on a
    // plain read (two statements, no transaction).
    let fast: JSONValue? = try ctx.pool.withConnection { conn in
      let state = try loadState(PGTransaction(connection: conn), request)
      guard let user = state.user else { return nil }
      let decision = decide(state, request)
      guard decision.actions.isEmpty else { return nil }
      return render(decision, state: state, user: user, request: request)
    }
    if let fast { return fast }

    for attempt in 1...3 {
      do {
        return try ctx.pool.transaction { tx in try signInTransaction(tx, request) }
      } catch is RetrySignIn where attempt < 3 {
        continue  // a concurrent sign-in created the same membership: decide again
      }
    }
    throw RPCError.unavailable("The sign-in could not be decided because of concurrent changes; try again.")
  }

  struct SignInInput {
    var email: String
    var domain: String
    var method: SignInMethod
    var ssoWorkspace: String?
    var name: String?
    /// Group names the IdP asserted (SSO): mapped groups give a JIT member their role.
    var groups: [String] = []
  }

  func loadState(_ tx: PGTransaction, _ r: SignInInput) throws -> SignInState {
    let row = try tx.single(
      """
      SELECT u.id, u.name,
        (SELECT workspace_id FROM domains WHERE domain = \(r.domain) AND status = 'verified') AS claiming,
        (SELECT coalesce(json_agg(json_build_object('id', m.id, 'workspace_id', m.workspace_id, 'role', m.role, 'status', m.status,
                 'joined', m.joined, 'sso_linked', m.sso_linked, 'sso_link_required', m.sso_link_required)), '[]')
         FROM members m WHERE m.user_id = u.id) AS memberships
      FROM (SELECT 1) one LEFT JOIN users u ON u.email_key = \(Users.key(r.email))
      """)
    let user: (id: String, name: String)? = row["id"].map { ($0, row["name"] ?? "") }
    let memberships: [MembershipState] = (try row.json("memberships").arrayValue ?? []).map { m in
      MembershipState(
        workspaceId: m["workspace_id"]?.stringValue ?? "", memberId: m["id"]?.stringValue ?? "",
        role: Role(rawValue: m["role"]?.stringValue ?? "") ?? .viewer,
        status: MembershipStatus(rawValue: m["status"]?.stringValue ?? "") ?? .deleted,
        joined: JoinedVia(rawValue: m["joined"]?.stringValue ?? "") ?? .invite, ssoLinked: m["sso_linked"]?.boolValue ?? false,
        ssoLinkRequired: m["sso_link_required"]?.boolValue ?? false)
    }
    let claiming = row["claiming"]
    var ids = Set(memberships.map(\.workspaceId))
    if let claiming { ids.insert(claiming) }
    if let s = r.ssoWorkspace { ids.insert(s) }
    let rows = try tx.query(
      """
      SELECT w.id, w.name, w.plan, w.sso_configured_at IS NOT NULL AS sso_configured, w.enforce_sso, w.domain_capture,
             w.sso_default_role, w.sso_tested,
             ARRAY(SELECT b.id FROM members b WHERE b.workspace_id = w.id AND b.sso_bypass) AS sso_bypass_member_ids,
             coalesce((SELECT array_agg(d.domain) FROM domains d WHERE d.workspace_id = w.id AND d.status = 'verified'), '{}') AS verified
      FROM workspaces w WHERE w.id = ANY(\(PGTextArray(Array(ids)))::uuid[])
      """
    ).rows
    var policies: [String: WorkspacePolicy] = [:]
    for w in rows {
      let id = try w.string("id")
      let enterprise = w["plan"] == "enterprise"
      let configured = try w.bool("sso_configured")
      policies[id] = WorkspacePolicy(
        workspaceId: id, name: w["name"] ?? "", ssoConfigured: enterprise && configured, enforceSso: try w.bool("enforce_sso"),
        domainCapture: try w.bool("domain_capture"), defaultRole: Role(rawValue: try w.string("sso_default_role")) ?? .creator,
        verifiedDomains: enterprise ? Set(w.stringArray("verified")) : [], bypassMemberIds: Set(w.stringArray("sso_bypass_member_ids")),
        ssoTested: try w.bool("sso_tested"))
    }
    if let s = r.ssoWorkspace {
      guard let policy = policies[s] else { throw RPCError.workspaceNotFound() }
      guard policy.ssoConfigured else {
        throw RPCError.conflict("sso_not_configured", "Workspace \(policy.name) has no active SSO connection.")
      }
    }
    return SignInState(user: user, memberships: memberships, claiming: claiming, policies: policies)
  }

  func decide(_ state: SignInState, _ r: SignInInput) -> SignInDecision {
    SignInPolicy.decide(
      SignInRequest(
        emailDomain: r.domain, method: r.method, ssoWorkspaceId: r.ssoWorkspace, memberships: state.memberships,
        workspaces: state.policies, claimingWorkspaceId: state.claiming))
  }

  private func signInTransaction(_ tx: PGTransaction, _ r: SignInInput) throws -> JSONValue {
    let user = try Users.findOrCreate(tx, email: r.email, name: r.name)
    let state = try loadState(tx, r)
    var decision = decide(state, r)
    let email = r.email
    for action in decision.actions {
      switch action {
      case .createMembership(let wid, var role, let joined):
        let linked = r.method == .sso && wid == r.ssoWorkspace
        var source = RoleSource.default
        if linked && !r.groups.isEmpty {
          // C5 at sign-in: groups the IdP asserted that are mapped to a role.
          let mapped = try tx.query(
            """
            SELECT role, priority FROM scim_groups
            WHERE workspace_id = \(wid)::uuid AND role IS NOT NULL AND lower(display_name) = ANY(\(PGTextArray(r.groups))::text[])
            """
          ).rows.compactMap { g -> GroupRole? in
            guard let role = g["role"].flatMap(Role.init(rawValue:)), let p = g.optionalInt("priority") else { return nil }
            return GroupRole(role: role, priority: Int(p))
          }
          (role, source) = resolveRole(attribute: nil, groups: mapped, current: nil, workspaceDefault: role)
          if let i = decision.workspaces.firstIndex(where: { $0.workspaceId == wid && $0.memberId == nil }) { decision.workspaces[i].role = role }
        }
        guard
          let row = try tx.one(
            """
            INSERT INTO members (workspace_id, user_id, role, role_source, status, joined, sso_linked)
            VALUES (\(wid)::uuid, \(user.id)::uuid, \(role.rawValue), \(source.rawValue), 'active', \(joined.rawValue), \(linked))
            ON CONFLICT (workspace_id, user_id) DO NOTHING RETURNING id
            """)
        else { throw RetrySignIn() }
        let mid = try row.string("id")
        if let i = decision.workspaces.firstIndex(where: { $0.workspaceId == wid && $0.memberId == nil }) {
          decision.workspaces[i].memberId = mid
        }
        try AuditLog.record(
          tx, workspaceId: wid, actor: .system("sign-in"), action: "member.\(joined.rawValue)", targetType: "member", targetId: mid,
          after: ["email": .string(email), "role": .string(role.rawValue), "joined": .string(joined.rawValue)],
          event: .init("member.created", memberId: mid, data: ["role": .string(role.rawValue), "joined": .string(joined.rawValue)]))
      case .linkSso(let mid):
        try tx.query("UPDATE members SET sso_linked = true, updated_at = now() WHERE id = \(mid)::uuid")
        try EventLog.emit(tx, type: "member.sso_linked", workspaceId: state.memberships.first { $0.memberId == mid }?.workspaceId, memberId: mid)
      case .markSsoTested(let wid):
        if try tx.query("UPDATE workspaces SET sso_tested = true WHERE id = \(wid)::uuid AND NOT sso_tested").affected > 0 {
          try AuditLog.record(
            tx, workspaceId: wid, actor: .system("sign-in"), action: "sso.tested", targetType: "workspace", targetId: wid,
            after: ["email": .string(email)])
        }
      case .breakGlass(let wid, let mid):
        try AuditLog.record(
          tx, workspaceId: wid, actor: .member(mid), action: "sso.break_glass_sign_in", targetType: "member", targetId: mid,
          after: ["email": .string(email)])
        for admin in try TargetProtection.admins(tx, workspaceId: wid) {
          try ctx.enqueueMail(
            tx, template: .breakGlassSignIn, to: admin.email,
            data: [
              "workspaceName": .string(state.name(wid)), "adminName": .string(admin.name), "memberEmail": .string(email),
              "at": .string(PGTime.format(Date())),
            ], workspaceId: wid)
        }
      }
    }
    return render(decision, state: state, user: user, request: r)
  }

  func render(_ decision: SignInDecision, state: SignInState, user: (id: String, name: String), request r: SignInInput) -> JSONValue {
    var result: [String: JSONValue] = [
      "allowed": .bool(decision.allowed),
      "user": ["userId": .string(user.id), "email": .string(r.email), "name": .string(user.name)],
      "workspaces": .array(
        decision.workspaces.map {
          [
            "workspaceId": .string($0.workspaceId), "workspaceName": .string(state.name($0.workspaceId)),
            "memberId": .orNull($0.memberId), "role": .string($0.role.rawValue), "joined": .string($0.joined.rawValue),
          ]
        }),
      "blocked": .array(
        decision.blocked.map {
          ["workspaceId": .string($0.workspaceId), "workspaceName": .string(state.name($0.workspaceId)), "reason": .string($0.reason)]
        }),
    ]
    if let reason = decision.reason {
      result["reason"] = .string(reason)
      let wname = decision.blocked.first { $0.reason == reason }.map { state.name($0.workspaceId) } ?? ""
      result["message"] = .string(Self.refusalMessage(reason, workspace: wname, domain: r.domain))
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
