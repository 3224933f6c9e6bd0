import Vocabulary
import Policy
import Testing

/// S1–S9 as a table: each row names the rule(s) it checks.
@Suite struct SignInPolicyTests {
  // Workspaces used by the table.
  static let acme = "acme"  // Enterprise, verified acme.com
  static let starter = "starter"  // the user's own free workspace
  static let other = "other"  // another Enterprise workspace, verified other.com

  static func acme(
    sso: Bool = true, enforce: Bool = false, capture: Bool = true, bypass: Set<String> = [], defaultRole: Role = .creator
  ) -> WorkspacePolicy {
    WorkspacePolicy(
      workspaceId: acme, name: "Acme", ssoConfigured: sso, enforceSso: enforce, domainCapture: capture, defaultRole: defaultRole,
      verifiedDomains: ["acme.com"], bypassMemberIds: bypass)
  }
  static let starterPolicy = WorkspacePolicy(workspaceId: starter, name: "Jane's")
  static let otherPolicy = WorkspacePolicy(workspaceId: other, name: "Other", ssoConfigured: true, verifiedDomains: ["other.com"])

  struct Case: CustomStringConvertible, Sendable {
    var name: String
    var domain = "acme.com"
    var method: SignInMethod = .password
    var ssoWorkspace: String? = nil
    var memberships: [MembershipState] = []
    var acme: WorkspacePolicy = SignInPolicyTests.acme()
    var claiming: String? = SignInPolicyTests.acme
    // expectations
    var allowed: Bool
    var reason: String? = nil
    var granted: [String: JSONExpect] = [:]
    var blocked: [String: String] = [:]
    var creates: [String: JoinedVia] = [:]
    var links = false
    var breakGlass = false
    var tested = false

    var description: String { name }
  }

  /// (role, joined) expected for a granted workspace.
  struct JSONExpect: Sendable, Equatable {
    var role: Role
    var joined: JoinedHow
  }

  static func m(_ ws: String, _ id: String, role: Role = .creator, status: MembershipStatus = .active, joined: JoinedVia = .invite,
                linked: Bool = false, linkRequired: Bool = false) -> MembershipState {
    MembershipState(workspaceId: ws, memberId: id, role: role, status: status, joined: joined, ssoLinked: linked, ssoLinkRequired: linkRequired)
  }

  static let cases: [Case] = [
    Case(name: "no SSO anywhere: password works, nothing joins (S6 needs SSO)", acme: acme(sso: false),
         allowed: true),
    Case(name: "S6 capture: password sign-up of acme.com joins Acme as captured", allowed: true,
         granted: [acme: .init(role: .creator, joined: .captured)], creates: [acme: .captured]),
    Case(name: "S6 capture keeps other workspaces as additional ones",
         memberships: [m(starter, "s1", role: .admin, joined: .owner)], allowed: true,
         granted: [acme: .init(role: .creator, joined: .captured), starter: .init(role: .admin, joined: .existing)], creates: [acme: .captured]),
    Case(name: "S6 capture uses the workspace default role", acme: acme(defaultRole: .viewer), allowed: true,
         granted: [acme: .init(role: .viewer, joined: .captured)], creates: [acme: .captured]),
    Case(name: "S6 capture off: nobody joins by password", acme: acme(capture: false), allowed: true),
    Case(name: "S5 JIT through SSO", method: .sso, ssoWorkspace: acme, allowed: true,
         granted: [acme: .init(role: .creator, joined: .jit)], creates: [acme: .jit], tested: true),
    Case(name: "S6 capture off: not even through SSO", method: .sso, ssoWorkspace: acme, acme: acme(capture: false),
         allowed: false, reason: "not_a_member", blocked: [acme: "not_a_member"]),
    Case(name: "S6 capture off + SCIM-provisioned member signs in via SSO", method: .sso, ssoWorkspace: acme,
         memberships: [m(acme, "a1", joined: .scim)], acme: acme(capture: false), allowed: true,
         granted: [acme: .init(role: .creator, joined: .scim)], links: true, tested: true),
    Case(name: "S6 capture off + invited member by password", memberships: [m(acme, "a1")], acme: acme(capture: false),
         allowed: true, granted: [acme: .init(role: .creator, joined: .existing)]),
    Case(name: "S2 enforced: password refused for a member, naming the workspace", memberships: [m(acme, "a1")],
         acme: acme(enforce: true), allowed: false, reason: "sso_required", blocked: [acme: "sso_required"]),
    Case(name: "S2 enforced: password refused for a non-member of the domain too", acme: acme(enforce: true),
         allowed: false, reason: "sso_required", blocked: [acme: "sso_required"]),
    Case(name: "S2 enforced + other workspaces: still refused outright",
         memberships: [m(starter, "s1", joined: .owner), m(acme, "a1")], acme: acme(enforce: true),
         allowed: false, reason: "sso_required", blocked: [acme: "sso_required"]),
    Case(name: "S2 enforced: SSO sign-in works", method: .sso, ssoWorkspace: acme, memberships: [m(acme, "a1", linked: true)],
         acme: acme(enforce: true), allowed: true, granted: [acme: .init(role: .creator, joined: .existing)], tested: true),
    Case(name: "S2 not enforced: password keeps working", memberships: [m(acme, "a1", linked: true)], allowed: true,
         granted: [acme: .init(role: .creator, joined: .existing)]),
    Case(name: "S9 break-glass admin signs in with a password while enforced",
         memberships: [m(acme, "a1", role: .admin)], acme: acme(enforce: true, bypass: ["a1"]), allowed: true,
         granted: [acme: .init(role: .admin, joined: .existing)], breakGlass: true),
    Case(name: "S9 break-glass works before the admin ever linked SSO (S4)",
         memberships: [m(acme, "a1", role: .admin, linkRequired: true)], acme: acme(enforce: true, bypass: ["a1"]), allowed: true,
         granted: [acme: .init(role: .admin, joined: .existing)], breakGlass: true),
    Case(name: "S9 the decision re-checks the role: a demoted member on a stale list is refused",
         memberships: [m(acme, "a1", role: .creator)], acme: acme(enforce: true, bypass: ["a1"]),
         allowed: false, reason: "sso_required", blocked: [acme: "sso_required"]),
    Case(name: "S9 a deactivated admin on the list is refused", memberships: [m(acme, "a1", role: .admin, status: .deactivated)],
         acme: acme(enforce: true, bypass: ["a1"]), allowed: false, reason: "sso_required", blocked: [acme: "sso_required"]),
    Case(name: "S9 a different admin is not covered by someone else's bypass",
         memberships: [m(acme, "a2", role: .admin)], acme: acme(enforce: true, bypass: ["a1"]),
         allowed: false, reason: "sso_required", blocked: [acme: "sso_required"]),
    Case(name: "S3 outside-domain member is blocked once SSO is configured", domain: "gmail.com",
         memberships: [m(acme, "a1"), m(starter, "s1", joined: .owner)], claiming: nil, allowed: true,
         granted: [starter: .init(role: .creator, joined: .existing)], blocked: [acme: "outside_domain"]),
    Case(name: "S3 + S2: enforced and outside the domain: blocked as outside, password elsewhere fine", domain: "gmail.com",
         memberships: [m(acme, "a1"), m(starter, "s1", joined: .owner)], acme: acme(enforce: true), claiming: nil, allowed: true,
         granted: [starter: .init(role: .creator, joined: .existing)], blocked: [acme: "outside_domain"]),
    Case(name: "S3 outside-domain SSO sign-in through the workspace is refused", domain: "gmail.com", method: .sso, ssoWorkspace: acme,
         claiming: nil, allowed: false, reason: "outside_domain", blocked: [acme: "outside_domain"]),
    Case(name: "S3 does not apply before SSO is configured", domain: "gmail.com", memberships: [m(acme, "a1")], acme: acme(sso: false),
         claiming: nil, allowed: true, granted: [acme: .init(role: .creator, joined: .existing)]),
    Case(name: "S4 pre-SSO member must link via SSO: password lists it as blocked",
         memberships: [m(acme, "a1", linkRequired: true), m(starter, "s1", joined: .owner)], allowed: true,
         granted: [starter: .init(role: .creator, joined: .existing)], blocked: [acme: "sso_link_required"]),
    Case(name: "S4 pre-SSO member links with their first SSO sign-in", method: .sso, ssoWorkspace: acme,
         memberships: [m(acme, "a1", role: .admin, linkRequired: true)], allowed: true,
         granted: [acme: .init(role: .admin, joined: .existing)], links: true, tested: true),
    Case(name: "S4 once linked, password works (not enforced)", memberships: [m(acme, "a1", linked: true, linkRequired: true)],
         allowed: true, granted: [acme: .init(role: .creator, joined: .existing)]),
    Case(name: "S7 deactivated member of the claiming workspace cannot sign in at all",
         memberships: [m(acme, "a1", status: .deactivated), m(starter, "s1", joined: .owner)], allowed: false, reason: "deactivated",
         blocked: [acme: "deactivated"]),
    Case(name: "S7 deactivated in a non-claiming workspace: only that workspace is blocked", domain: "gmail.com",
         memberships: [m(other, "o1", status: .deactivated), m(starter, "s1", joined: .owner)], claiming: nil, allowed: true,
         granted: [starter: .init(role: .creator, joined: .existing)], blocked: [other: "deactivated"]),
    Case(name: "C3 SSO never reactivates a deactivated member", method: .sso, ssoWorkspace: acme,
         memberships: [m(acme, "a1", status: .deactivated, joined: .scim)], allowed: false, reason: "deactivated",
         blocked: [acme: "deactivated"]),
    Case(name: "C3 SSO never re-creates a deleted member", method: .sso, ssoWorkspace: acme,
         memberships: [m(acme, "a1", status: .deleted, joined: .scim)], allowed: false, reason: "deactivated",
         blocked: [acme: "deactivated"]),
    Case(name: "S6/R: capture does not re-create a deprovisioned member",
         memberships: [m(acme, "a1", status: .deleted)], allowed: false, reason: "deactivated", blocked: [acme: "deactivated"]),
    Case(name: "multiple workspaces: active ones granted, deactivated one blocked", domain: "other.com",
         memberships: [m(other, "o1", linked: true), m(starter, "s1", joined: .owner), m(acme, "a1", status: .deactivated)],
         claiming: other, allowed: true,
         granted: [other: .init(role: .creator, joined: .existing), starter: .init(role: .creator, joined: .existing)],
         blocked: [acme: "deactivated"]),
    Case(name: "S8 SCIM-provisioned member is reported as joined scim", memberships: [m(acme, "a1", role: .viewer, joined: .scim)],
         allowed: true, granted: [acme: .init(role: .viewer, joined: .scim)]),
  ]

  static func request(_ c: Case) -> SignInRequest {
    var ws: [String: WorkspacePolicy] = [acme: c.acme, starter: starterPolicy, other: otherPolicy]
    let involved = Set(c.memberships.map(\.workspaceId) + [c.claiming, c.ssoWorkspace].compactMap { $0 })
    ws = ws.filter { involved.contains($0.key) }
    return SignInRequest(
      emailDomain: c.domain, method: c.method, ssoWorkspaceId: c.ssoWorkspace, memberships: c.memberships, workspaces: ws,
      claimingWorkspaceId: c.claiming)
  }

  @Test(arguments: cases)
  func decision(_ c: Case) {
    let d = SignInPolicy.decide(Self.request(c))
    #expect(d.allowed == c.allowed)
    #expect(d.reason == c.reason)
    let granted = Dictionary(uniqueKeysWithValues: d.workspaces.map { ($0.workspaceId, JSONExpect(role: $0.role, joined: $0.joined)) })
    #expect(granted == c.granted)
    let blocked = Dictionary(uniqueKeysWithValues: d.blocked.map { ($0.workspaceId, $0.reason) })
    #expect(blocked == c.blocked)
    var creates: [String: JoinedVia] = [:]
    for case .createMembership(let w, _, let j) in d.actions { creates[w] = j }
    #expect(creates == c.creates)
    #expect(d.actions.contains { if case .linkSso = $0 { return true } else { return false } } == c.links)
    #expect(d.actions.contains { if case .breakGlass = $0 { return true } else { return false } } == c.breakGlass)
    #expect(d.actions.contains { if case .markSsoTested = $0 { return true } else { return false } } == c.tested)
    if !d.allowed { #expect(d.actions.isEmpty, "a refused sign-in changes nothing") }
  }
}

/// C4/C5: role resolution.
@Suite struct RoleResolutionTests {
  struct Case: CustomStringConvertible, Sendable {
    var name: String
    var attribute: String?
    var groups: [GroupRole] = []
    var current: Role? = nil
    var currentSource: RoleSource = .default
    var expected: Role
    var source: RoleSource
    var description: String { name }
  }

  static let cases: [Case] = [
    Case(name: "C4 explicit attribute wins over groups", attribute: "viewer", groups: [GroupRole(role: .admin, priority: 1)],
         expected: .viewer, source: .attribute),
    Case(name: "C4 default on a new member gives the workspace default", attribute: "default", expected: .creator, source: .default),
    Case(name: "C4 default keeps an existing member's manual role", attribute: "default", current: .admin, currentSource: .manual,
         expected: .admin, source: .manual),
    Case(name: "C5 highest-priority group wins (1 is highest)", attribute: "default",
         groups: [GroupRole(role: .viewer, priority: 2), GroupRole(role: .admin, priority: 1)], expected: .admin, source: .group),
    Case(name: "C5 Okta guide: Admins above Creators", groups: [GroupRole(role: .creator, priority: 20), GroupRole(role: .admin, priority: 10)],
         expected: .admin, source: .group),
    Case(name: "C5 tie: the more privileged role", groups: [GroupRole(role: .viewer, priority: 3), GroupRole(role: .creator, priority: 3)],
         expected: .creator, source: .group),
    Case(name: "C5 leaving the Admins group falls back to the default", attribute: "default", current: .admin, currentSource: .group,
         expected: .creator, source: .default),
    Case(name: "C5 attribute removed falls back to the default", current: .viewer, currentSource: .attribute, expected: .creator,
         source: .default),
    Case(name: "no attribute, no groups, new member", expected: .creator, source: .default),
  ]

  @Test(arguments: cases)
  func resolves(_ c: Case) {
    let r = resolveRole(
      attribute: c.attribute, groups: c.groups, current: c.current.map { ($0, c.currentSource) }, workspaceDefault: .creator)
    #expect(r.role == c.expected)
    #expect(r.source == c.source)
  }
}
