import Vocabulary

/// The sign-in decision (S1–S9) as a pure function over loaded state.

public enum SignInMethod: String, Sendable { case password, sso }

/// What the decision needs to know about one workspace.
public struct WorkspacePolicy: Sendable, Equatable {
  public var workspaceId: String
  public var name: String
  /// SSO is configured and the workspace is on the Enterprise plan.
  public var ssoConfigured: Bool
  public var enforceSso: Bool
  public var domainCapture: Bool
  public var defaultRole: Role
  public var verifiedDomains: Set<String>
  public var bypassMemberIds: Set<String>
  /// A successful SSO sign-in has happened through the connection (S2).
  public var ssoTested: Bool

  public init(
    workspaceId: String, name: String = "", ssoConfigured: Bool = false, enforceSso: Bool = false, domainCapture: Bool = true,
    defaultRole: Role = .creator, verifiedDomains: Set<String> = [], bypassMemberIds: Set<String> = [], ssoTested: Bool = false
  ) {
    self.workspaceId = workspaceId
    self.name = name
    self.ssoConfigured = ssoConfigured
    self.enforceSso = enforceSso
    self.domainCapture = domainCapture
    self.defaultRole = defaultRole
    self.verifiedDomains = verifiedDomains
    self.bypassMemberIds = bypassMemberIds
    self.ssoTested = ssoTested
  }
}

public enum MembershipStatus: String, Sendable { case active, deactivated, deleted }

/// How a membership came to be (stored on the member).
public enum JoinedVia: String, Sendable { case owner, invite, jit, captured, scim }

/// One of the user's memberships (any status).
public struct MembershipState: Sendable, Equatable {
  public var workspaceId: String
  public var memberId: String
  public var role: Role
  public var status: MembershipStatus
  public var joined: JoinedVia
  public var ssoLinked: Bool
  public var ssoLinkRequired: Bool

  public init(
    workspaceId: String, memberId: String, role: Role, status: MembershipStatus = .active, joined: JoinedVia = .invite,
    ssoLinked: Bool = false, ssoLinkRequired: Bool = false
  ) {
    self.workspaceId = workspaceId
    self.memberId = memberId
    self.role = role
    self.status = status
    self.joined = joined
    self.ssoLinked = ssoLinked
    self.ssoLinkRequired = ssoLinkRequired
  }
}

public struct SignInRequest: Sendable {
  /// The email's normalised domain.
  public var emailDomain: String
  public var method: SignInMethod
  /// For SSO: the workspace whose connection authenticated the user.
  public var ssoWorkspaceId: String?
  public var memberships: [MembershipState]
  /// Policies of every workspace involved: the user's, the SSO workspace and
  /// the workspace that verified the email's domain (if any).
  public var workspaces: [String: WorkspacePolicy]
  /// The workspace that verified the email's domain, if any.
  public var claimingWorkspaceId: String?

  public init(
    emailDomain: String, method: SignInMethod, ssoWorkspaceId: String? = nil, memberships: [MembershipState],
    workspaces: [String: WorkspacePolicy], claimingWorkspaceId: String?
  ) {
    self.emailDomain = emailDomain
    self.method = method
    self.ssoWorkspaceId = ssoWorkspaceId
    self.memberships = memberships
    self.workspaces = workspaces
    self.claimingWorkspaceId = claimingWorkspaceId
  }
}

/// How the user is in a workspace, from this sign-in's point of view (S8).
public enum JoinedHow: String, Sendable { case existing, jit, captured, scim }

public struct GrantedWorkspace: Sendable, Equatable {
  public var workspaceId: String
  /// nil for a membership this sign-in creates (the caller fills it in).
  public var memberId: String?
  public var role: Role
  public var joined: JoinedHow
}

public struct BlockedWorkspace: Sendable, Equatable {
  public var workspaceId: String
  public var reason: String
}

/// What the caller must write for the decision to hold.
public enum SignInAction: Sendable, Equatable {
  case createMembership(workspaceId: String, role: Role, joined: JoinedVia)
  /// S4: first SSO sign-in of a member who existed before SSO.
  case linkSso(memberId: String)
  /// S2: a successful SSO sign-in through this workspace's connection.
  case markSsoTested(workspaceId: String)
  /// S9: a bypass admin signed in with a password while SSO is enforced.
  case breakGlass(workspaceId: String, memberId: String)
}

public struct SignInDecision: Sendable, Equatable {
  public var allowed: Bool
  public var reason: String?
  public var workspaces: [GrantedWorkspace]
  public var blocked: [BlockedWorkspace]
  public var actions: [SignInAction]
}

public enum SignInPolicy {
  /// S9: only an active admin on the list may use it (re-checked here, not
  /// only when the list is set).
  static func isBypass(_ m: MembershipState, _ w: WorkspacePolicy) -> Bool {
    m.status == .active && m.role == .admin && w.bypassMemberIds.contains(m.memberId)
  }

  public static func decide(_ r: SignInRequest) -> SignInDecision {
    var granted: [GrantedWorkspace] = []
    var blocked: [BlockedWorkspace] = []
    var actions: [SignInAction] = []
    var refusal: String?
    let byWorkspace = Dictionary(r.memberships.map { ($0.workspaceId, $0) }, uniquingKeysWith: { a, _ in a })

    func inDomain(_ w: WorkspacePolicy) -> Bool { w.verifiedDomains.contains(r.emailDomain) }
    func block(_ w: String, _ reason: String) { blocked.append(BlockedWorkspace(workspaceId: w, reason: reason)) }

    // S2: enforced SSO refuses password sign-ins of the workspace's domains,
    // members or not — except break-glass admins (S9).
    if r.method == .password {
      for w in r.workspaces.values.sorted(by: { $0.workspaceId < $1.workspaceId })
      where w.ssoConfigured && w.enforceSso && inDomain(w) {
        let m = byWorkspace[w.workspaceId]
        if let m, isBypass(m, w) { continue }
        block(w.workspaceId, "sso_required")
        refusal = refusal ?? "sso_required"
      }
    }

    // The user's existing memberships.
    for m in r.memberships.sorted(by: { $0.workspaceId < $1.workspaceId }) {
      guard let w = r.workspaces[m.workspaceId] else { continue }
      switch m.status {
      case .deleted:
        continue  // handled below where it matters (no re-creation)
      case .deactivated:
        // S7; C3: SSO never reactivates a deactivated member.
        block(w.workspaceId, "deactivated")
        if r.claimingWorkspaceId == w.workspaceId || (r.method == .sso && r.ssoWorkspaceId == w.workspaceId) {
          refusal = refusal ?? "deactivated"
        }
        continue
      case .active: break
      }
      var linkNow = false
      if w.ssoConfigured {
        if !inDomain(w) {
          block(w.workspaceId, "outside_domain")  // S3
          continue
        }
        if r.method == .password && w.enforceSso {
          if isBypass(m, w) {
            actions.append(.breakGlass(workspaceId: w.workspaceId, memberId: m.memberId))
          } else {
            block(w.workspaceId, "sso_required")
            continue
          }
        }
        if r.method == .sso && r.ssoWorkspaceId == w.workspaceId && !m.ssoLinked {
          linkNow = true
        } else if m.ssoLinkRequired && !m.ssoLinked {
          if !(r.method == .password && w.enforceSso && isBypass(m, w)) {
            block(w.workspaceId, "sso_link_required")  // S4
            continue
          }
        }
      }
      if linkNow { actions.append(.linkSso(memberId: m.memberId)) }
      granted.append(
        GrantedWorkspace(workspaceId: w.workspaceId, memberId: m.memberId, role: m.role, joined: m.joined == .scim ? .scim : .existing))
    }

    // S5: JIT through the workspace whose connection authenticated the user.
    if r.method == .sso, let sid = r.ssoWorkspaceId, let s = r.workspaces[sid] {
      let existing = byWorkspace[sid]
      if existing == nil || existing?.status == .deleted {
        if existing?.status == .deleted {
          block(sid, "deactivated")  // C3: never re-create a removed member
        } else if !inDomain(s) {
          block(sid, "outside_domain")
        } else if !s.domainCapture {
          block(sid, "not_a_member")  // S6: capture off, not even through SSO
        } else {
          actions.append(.createMembership(workspaceId: sid, role: s.defaultRole, joined: .jit))
          granted.append(GrantedWorkspace(workspaceId: sid, memberId: nil, role: s.defaultRole, joined: .jit))
        }
      }
      if let b = blocked.first(where: { $0.workspaceId == sid }) {
        refusal = refusal ?? b.reason
      } else if granted.contains(where: { $0.workspaceId == sid }) && !s.ssoTested {
        actions.append(.markSsoTested(workspaceId: sid))
      }
    }

    // S6: Domain Capture by the workspace that verified the email's domain.
    if let cid = r.claimingWorkspaceId, cid != r.ssoWorkspaceId || r.method != .sso, let c = r.workspaces[cid],
      c.ssoConfigured, c.domainCapture
    {
      let existing = byWorkspace[cid]
      if existing?.status == .deleted {
        block(cid, "deactivated")
        refusal = refusal ?? "deactivated"
      } else if existing == nil && refusal == nil {
        actions.append(.createMembership(workspaceId: cid, role: c.defaultRole, joined: .captured))
        granted.append(GrantedWorkspace(workspaceId: cid, memberId: nil, role: c.defaultRole, joined: .captured))
      }
    }

    if let refusal {
      // Nothing is created or linked on a refused sign-in.
      return SignInDecision(allowed: false, reason: refusal, workspaces: [], blocked: dedupe(blocked), actions: [])
    }
    return SignInDecision(allowed: true, reason: nil, workspaces: granted, blocked: dedupe(blocked), actions: actions)
  }

  static func dedupe(_ b: [BlockedWorkspace]) -> [BlockedWorkspace] {
    var seen = Set<String>()
    return b.filter { seen.insert($0.workspaceId).inserted }
  }
}
