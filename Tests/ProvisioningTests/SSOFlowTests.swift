import Foundation
import JSON
import JSONRPC
import Postgres
import RosterTestSupport
import Testing

/// S1–S9 end to end over the socket, against real PostgreSQL.
@Suite(.serialized) final class SSOFlowTests {
  let f: ProvisioningFixture

  init() throws { f = try ProvisioningFixture() }

  @Test func s1ConfigureNeedsAVerifiedDomainAndAValidConnection() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    #expect(try f.rpc.error("sso.configure", ["workspaceId": .string(w.id), "connection": ProvisioningFixture.samlConnection, "actor": f.admin(w)])?
      .reason == "no_verified_domain")
    try f.verifyDomain(w, "acme.test")
    var bad = ProvisioningFixture.samlConnection.objectValue!
    bad["ssoUrl"] = "ftp://acme.okta.com"
    let e = try f.rpc.error("sso.configure", ["workspaceId": .string(w.id), "connection": .object(bad), "actor": f.admin(w)])
    #expect(e?.reason == "invalid_connection")
    #expect(e?.data?["param"] == "connection.ssoUrl")
    let s = try f.configureSSO(w)
    #expect(s["configured"] == true)
    #expect(s["defaultRole"] == "creator")
    #expect(s["enforceSso"] == false)
    #expect(s["domainCapture"] == true)
    #expect(s["tested"] == false)
    #expect(try f.events("sso.enabled", workspace: w).count == 1)
    // S1: an OIDC issuer's discovery document is fetched at once; one that
    // cannot be reached is refused clearly (OIDC sign-ins: SSOProtocolTests).
    let unreachable = try f.rpc.error(
      "sso.configure",
      ["workspaceId": .string(w.id), "connection": ["protocol": "oidc", "issuer": "https://login.test/t", "clientId": "c1"], "actor": f.admin(w)])
    #expect(unreachable?.reason == "idp_unreachable")
    #expect(try f.rpc.call("sso.get", ["workspaceId": .string(w.id)])["connection"]?["protocol"] == "saml", "nothing half-saved")
  }

  @Test func d1SSONeedsEnterprise() throws {
    let w = try f.workspace(plan: "starter", owner: "o@x.test")
    #expect(try f.rpc.error("sso.configure", ["workspaceId": .string(w.id), "connection": ProvisioningFixture.samlConnection, "actor": f.admin(w)])?
      .reason == "plan_required")
  }

  @Test func s4PreExistingMembersMustSignInOnceViaSSO() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let jane = try f.addMember(w, "jane@acme.test")
    try f.verifyDomain(w, "acme.test")
    #expect(try f.signIn("jane@acme.test").workspace(w.id) != nil, "before SSO: a normal member")
    try f.configureSSO(w)
    // Sessions revoked (an event per member) and an email to each.
    let revoked = try f.events("member.sessions_revoked", workspace: w).compactMap { $0["memberId"]?.stringValue }
    #expect(Set(revoked) == [w.owner, jane["memberId"]!.stringValue!])
    #expect(Set(try f.outbox("sso_live").compactMap { $0["to_address"] }) == ["owner@acme.test", "jane@acme.test"])
    // A password sign-in no longer lists the workspace: it needs an SSO link.
    let before = try f.signIn("jane@acme.test")
    #expect(before["allowed"] == true)
    #expect(before.workspace(w.id) == nil)
    #expect(before.blockedReason(w.id) == "sso_link_required")
    // The first SSO sign-in links the member; password works again afterwards (not enforced).
    let viaSSO = try f.signIn("jane@acme.test", "sso", workspace: w)
    #expect(viaSSO.workspace(w.id)?["joined"] == "existing")
    #expect(try f.signIn("jane@acme.test").workspace(w.id) != nil)
    #expect(try f.rpc.call("member.get", ["workspaceId": .string(w.id), "memberId": jane["memberId"]!])["ssoLinked"] == true)
  }

  @Test func s2EnforceOnlyAfterATestedSignInThenPasswordIsRefused() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    try f.verifyDomain(w, "acme.test")
    try f.configureSSO(w)
    #expect(try f.rpc.error("sso.update", ["workspaceId": .string(w.id), "enforceSso": true, "actor": f.admin(w)])?.reason == "sso_untested")
    #expect(try f.signIn("owner@acme.test", "sso", workspace: w)["allowed"] == true)
    #expect(try f.rpc.call("sso.get", ["workspaceId": .string(w.id)])["tested"] == true)
    #expect(try f.rpc.call("sso.update", ["workspaceId": .string(w.id), "enforceSso": true, "actor": f.admin(w)])["enforceSso"] == true)
    let refused = try f.signIn("owner@acme.test")
    #expect(refused["allowed"] == false)
    #expect(refused["reason"] == "sso_required")
    #expect(refused.blockedReason(w.id) == "sso_required")
    #expect(refused["message"]?.stringValue?.contains("Acme") == true, "names the workspace")
    // Someone new at the domain is refused a password sign-up too.
    #expect(try f.signIn("newbie@acme.test")["reason"] == "sso_required")
    // SSO keeps working.
    #expect(try f.signIn("owner@acme.test", "sso", workspace: w)["allowed"] == true)
    // Changing the connection switches enforcement off until it is tested again.
    var changed = ProvisioningFixture.samlConnection.objectValue!
    changed["idpEntityId"] = "http://www.okta.com/exk2"
    let s = try f.rpc.call("sso.configure", ["workspaceId": .string(w.id), "connection": .object(changed), "actor": f.admin(w)])
    #expect(s["enforceSso"] == false)
    #expect(s["tested"] == false)
  }

  @Test func s3OutsideDomainMembersAreBlocked() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    try f.addMember(w, "contractor@partner.test")
    try f.verifyDomain(w, "acme.test")
    let s = try f.configureSSO(w)
    #expect((s["outsideDomainMembers"]?.arrayValue ?? []).map { $0["email"] } == ["contractor@partner.test"])
    let d = try f.signIn("contractor@partner.test")
    #expect(d.workspace(w.id) == nil)
    #expect(d.blockedReason(w.id) == "outside_domain")
  }

  @Test func s5AndS6JustInTimeAndDomainCapture() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    try f.verifyDomain(w, "acme.test")
    try f.configureSSO(w, defaultRole: "viewer")
    // JIT through SSO.
    let jit = try f.signIn("new.sso@acme.test", "sso", workspace: w)
    #expect(jit.workspace(w.id)?["joined"] == "jit")
    #expect(jit.workspace(w.id)?["role"] == "viewer")
    let mid = try #require(jit.workspace(w.id)?["memberId"]?.stringValue)
    #expect(try f.rpc.call("member.get", ["workspaceId": .string(w.id), "memberId": .string(mid)])["joined"] == "jit")
    // Captured by password sign-up, keeping their own workspace.
    let own = try f.workspace("Sam's", plan: "starter", owner: "sam@acme.test")
    let captured = try f.signIn("sam@acme.test")
    #expect(captured.workspace(w.id)?["joined"] == "captured")
    #expect(captured.workspace(own.id)?["joined"] == "existing")
    #expect(try f.events("member.created", workspace: w).count >= 3)
    // The second sign-in finds the membership: existing.
    #expect(try f.signIn("sam@acme.test").workspace(w.id)?["joined"] == "existing")
    // Domain Capture off: nobody joins automatically, not even via SSO.
    try f.rpc.call("sso.update", ["workspaceId": .string(w.id), "domainCapture": false, "actor": f.admin(w)])
    let off = try f.signIn("late@acme.test")
    #expect(off["allowed"] == true)
    #expect(off.workspace(w.id) == nil)
    let offSSO = try f.signIn("late2@acme.test", "sso", workspace: w)
    #expect(offSSO["allowed"] == false)
    #expect(offSSO.blockedReason(w.id) == "not_a_member")
    // …but an invite still works.
    try f.addMember(w, "late@acme.test")
    #expect(try f.signIn("late@acme.test").workspace(w.id)?["joined"] == "existing")
  }

  @Test func s7DeactivatedMembersCannotSignIn() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let jane = try f.addMember(w, "jane@acme.test")
    try f.verifyDomain(w, "acme.test")
    try f.configureSSO(w)
    try f.pool.query("UPDATE members SET status = 'deactivated' WHERE id = \(jane["memberId"]!.stringValue!)::uuid")
    let d = try f.signIn("jane@acme.test", "sso", workspace: w)
    #expect(d["allowed"] == false)
    #expect(d["reason"] == "deactivated")
    #expect(try f.pool.query("SELECT status FROM members WHERE id = \(jane["memberId"]!.stringValue!)::uuid").first?["status"] == "deactivated")
  }

  @Test func s9BreakGlassAdminsAreAuditedAndAdminsEmailed() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let second = try f.addMember(w, "second@acme.test", role: "admin")
    let third = try f.addMember(w, "third@acme.test", role: "admin")
    let creator = try f.addMember(w, "creator@acme.test")
    try f.verifyDomain(w, "acme.test")
    try f.configureSSO(w)
    #expect(
      try f.rpc.error("sso.update", ["workspaceId": .string(w.id), "bypassMemberIds": [.string(w.owner), second["memberId"]!, third["memberId"]!], "actor": f.admin(w)])?
        .reason == "too_many_bypass_members")
    #expect(
      try f.rpc.error("sso.update", ["workspaceId": .string(w.id), "bypassMemberIds": [creator["memberId"]!], "actor": f.admin(w)])?.reason
        == "bypass_member_not_admin")
    try f.signIn("owner@acme.test", "sso", workspace: w)
    try f.rpc.call("sso.update", ["workspaceId": .string(w.id), "enforceSso": true, "bypassMemberIds": [second["memberId"]!], "actor": f.admin(w)])
    let breakGlass = try f.signIn("second@acme.test")
    #expect(breakGlass["allowed"] == true)
    #expect(breakGlass.workspace(w.id)?["role"] == "admin")
    #expect(try f.signIn("third@acme.test")["reason"] == "sso_required")
    let audit = try f.rpc.call("audit.list", ["workspaceId": .string(w.id), "limit": 1000])["entries"]?.arrayValue ?? []
    #expect(audit.filter { $0["action"] == "sso.break_glass_sign_in" }.count == 1)
    #expect(Set(try f.outbox("break_glass_sign_in").compactMap { $0["to_address"] }) == ["owner@acme.test", "second@acme.test", "third@acme.test"])
  }

  @Test func c5JustInTimeMembersGetTheRoleOfTheirMappedGroups() throws {
    let s = try SCIMFixture(f, name: "Acme", owner: "owner@acme.test")
    try f.verifyDomain(s.w, "acme.test")
    try f.configureSSO(s.w, defaultRole: "viewer")
    let admins = try s.createGroup("Admins")["id"]!.stringValue!
    try f.rpc.call("group.mapRole", ["workspaceId": .string(s.w.id), "groupId": .string(admins), "role": "admin", "priority": 1, "actor": f.admin(s.w)])
    let d = try f.rpc.call(
      "auth.signIn",
      ["email": "new.admin@acme.test", "method": "sso", "workspaceId": .string(s.w.id), "profile": ["name": "New Admin", "groups": ["admins", "Other"]]])
    #expect(d.workspace(s.w.id)?["joined"] == "jit")
    #expect(d.workspace(s.w.id)?["role"] == "admin")
    let m = try f.rpc.call("member.get", ["workspaceId": .string(s.w.id), "memberId": d.workspace(s.w.id)!["memberId"]!])
    #expect(m["roleSource"] == "group")
    #expect(m["name"] == "New Admin")
    // Without a mapped group: the default role.
    let plain = try f.rpc.call("auth.signIn", ["email": "plain@acme.test", "method": "sso", "workspaceId": .string(s.w.id), "profile": ["groups": ["Other"]]])
    #expect(plain.workspace(s.w.id)?["role"] == "viewer")
  }
}
