import Foundation
import JSON
import JSONRPC
import Postgres
import RosterApp
import RosterTestSupport
import SCIM
import Testing

/// Rules the audit showed unenforced (S10, S4, D1, R6, plans from billing)
/// and bad values (NUL, lengths).
@Suite(.serialized) final class RuleAuditTests {
  let f: ProvisioningFixture
  let s: SCIMFixture

  init() throws {
    f = try ProvisioningFixture()
    s = try SCIMFixture(f, name: "Seca", owner: "owner@seca.com")
    try f.verifyDomain(s.w, "seca.com")
  }

  // MARK: S10

  @Test(arguments: ["JÜRGEN@seca.com", "ju\u{0308}rgen@seca.com", "jürgen@ｓｅｃａ.com"])
  func s10ADeactivatedMemberCannotComeBackAsAnotherSpelling(_ spelling: String) throws {
    let id = try s.createUser("jürgen@seca.com")["id"]!.stringValue!
    #expect(try s.patch("/scim/v2/Users/\(id)", [["op": "replace", "value": ["active": false]]]).status == 200)
    let decision = try f.signIn(spelling)
    #expect(decision["allowed"] == false, "\(spelling)")
    #expect(decision.blockedReason(s.w.id) == "deactivated")
    // No second membership, by invite or by the directory.
    #expect(try f.rpc.error("member.add", ["workspaceId": .string(s.w.id), "email": .string(spelling), "actor": f.admin(s.w)])?.reason == "member_exists")
    let again = try s.http.request("POST", "/scim/v2/Users", json: SCIMFixture.user(spelling))
    #expect(again.status == 409)
    let count = try f.pool.query("SELECT count(*) AS n FROM members WHERE workspace_id = \(s.w.id)::uuid").first?["n"]
    #expect(count == "2", "the owner and Jürgen")
    #expect(try f.pool.query("SELECT count(*) AS n FROM users").first?["n"] == "2")
  }

  @Test func s10QuotedLocalPartsAndTheAddressAsFirstGiven() throws {
    let pre = try f.addMember(s.w, "Pre1@seca.com")
    #expect(pre["email"] == "Pre1@seca.com", "shown as first given")
    #expect(try f.rpc.error("member.add", ["workspaceId": .string(s.w.id), "email": "\"pre1\"@seca.com", "actor": f.admin(s.w)])?.reason == "member_exists")
    #expect(try f.signIn("\"PRE1\"@SECA.COM").workspace(s.w.id)?["memberId"] == pre["memberId"])
    let found = try f.rpc.call("member.list", ["workspaceId": .string(s.w.id), "email": "pre1@ｓｅｃａ.com"])["members"]?.arrayValue ?? []
    #expect(found.map { $0["memberId"] } == [pre["memberId"]!])
    // A raw xn-- label that is not valid IDNA is refused, not stored.
    #expect(try f.rpc.error("member.add", ["workspaceId": .string(s.w.id), "email": "x@xn--zz-.com", "actor": f.admin(s.w)])?.reason == "invalid_email")
  }

  // MARK: S4

  @Test func s4AMemberDeactivatedWhenSSOWasConfiguredMustLinkWhenReactivated() throws {
    let id = try s.createUser("later@seca.com")["id"]!.stringValue!
    #expect(try s.patch("/scim/v2/Users/\(id)", [["op": "replace", "value": ["active": false]]]).status == 200)
    try f.configureSSO(s.w)
    #expect(try f.outbox("sso_live").compactMap { $0["to_address"] }.contains("later@seca.com") == false, "no email while deactivated")
    #expect(try s.patch("/scim/v2/Users/\(id)", [["op": "replace", "value": ["active": true]]]).status == 200)
    let m = try s.member(id)
    #expect(m["status"] == "active")
    #expect(m["ssoLinkRequired"] == true)
    #expect(try f.signIn("later@seca.com").blockedReason(s.w.id) == "sso_link_required")
    #expect(try f.outbox("sso_live").compactMap { $0["to_address"] }.contains("later@seca.com"), "emailed to sign in again via SSO")
  }

  @Test func s4MembersOutsideTheVerifiedDomainsGetNoSignInAgainEmail() throws {
    try s.createUser("contractor@elsewhere.test")
    try s.createUser("staff@seca.com")
    try f.configureSSO(s.w)
    let to = try f.outbox("sso_live").compactMap { $0["to_address"] }
    #expect(to.contains("staff@seca.com") && to.contains("owner@seca.com"))
    #expect(!to.contains("contractor@elsewhere.test"))
  }

  // MARK: D1

  @Test func d1AVerificationCompletingAfterADowngradeDoesNotVerify() throws {
    let d = try f.rpc.call("domain.add", ["workspaceId": .string(s.w.id), "domain": "late.seca-group.com", "method": "dns", "actor": f.admin(s.w)])
    try f.rpc.call("workspace.setPlan", ["workspaceId": .string(s.w.id), "plan": "business", "actor": f.ops])
    f.dns.setTXT(d["dnsRecord"]!["name"]!.stringValue!, [d["dnsRecord"]!["value"]!.stringValue!])
    let checked = try f.rpc.call("domain.check", ["workspaceId": .string(s.w.id), "domainId": d["domainId"]!])
    #expect(checked["status"] == "failed")
    let verified = try f.pool.query("SELECT count(*) AS n FROM domains WHERE domain = 'late.seca-group.com' AND status = 'verified'").first?["n"]
    #expect(verified == "0")
  }

  @Test func d1AnEmailConfirmationAfterADowngradeIsRefused() throws {
    let smtpLink = try f.rpc.call(
      "domain.add", ["workspaceId": .string(s.w.id), "domain": "mail.seca-group.com", "method": "email", "email": "it@mail.seca-group.com", "actor": f.admin(s.w)])
    #expect(smtpLink["status"] == "pending")
    let link = try #require(try f.pool.query("SELECT data FROM notifications WHERE template = 'domain_verification'").first?.json("data")["link"]?.stringValue)
    let token = String(link.split(separator: "=").last ?? "")
    try f.rpc.call("workspace.setPlan", ["workspaceId": .string(s.w.id), "plan": "business", "actor": f.ops])
    #expect(try f.rpc.error("domain.confirm", ["token": .string(token)])?.reason == "plan_required")
  }

  // MARK: Plans come from billing

  @Test func workspaceSetPlanIsForOperatorsOnly() throws {
    let small = try f.workspace("Small", plan: "business", owner: "o@small.test")
    let e = try f.rpc.error("workspace.setPlan", ["workspaceId": .string(small.id), "plan": "enterprise", "actor": f.admin(small)])
    #expect(e?.code == RPCError.Code.forbidden)
    #expect(e?.reason == "ops_required")
    #expect(try f.rpc.call("workspace.get", ["workspaceId": .string(small.id)])["plan"] == "business")
    #expect(try f.rpc.call("workspace.setPlan", ["workspaceId": .string(small.id), "plan": "enterprise", "actor": f.ops])["plan"] == "enterprise")
  }

  // MARK: R6

  @Test func r6OnlyTheSourceWorkspacesOwnerMovesContentOut() throws {
    let d = try RunningProcess("deprovisioning", database: f.database)
    defer { d.stop() }
    let jobs = try d.client()
    let theirs = try f.workspace("Theirs", plan: "business", owner: "boss@other.test")
    let member = try f.addMember(theirs, "staff@seca.com")["memberId"]!.stringValue!
    try f.addMember(s.w, "staff@seca.com")
    try jobs.call("content.create", ["workspaceId": .string(theirs.id), "ownerMemberId": .string(member), "title": "Theirs", "posted": false])
    let user = try f.signIn("staff@seca.com")["user"]!["userId"]!.stringValue!
    let e = try jobs.error("content.moveToWorkspace", ["userId": .string(user), "fromWorkspaceId": .string(theirs.id), "toWorkspaceId": .string(s.w.id)])
    #expect(e?.reason == "not_workspace_owner")
    #expect(e?.code == RPCError.Code.forbidden)
  }

  // MARK: Bad values

  @Test func nulAndOverlongValuesAreRefusedNamingTheField() throws {
    let nul = try s.http.request("POST", "/scim/v2/Users", json: SCIMFixture.user("nul\u{0}x@seca.com"))
    #expect(nul.status == 400)
    #expect(nul.json?["scimType"] == "invalidValue")
    let detail = nul.json?["detail"]?.stringValue ?? ""
    #expect(detail.contains("NUL") && (detail.contains("'userName'") || detail.contains("'emails.value'")), "\(detail)")
    #expect(try f.pool.query("SELECT count(*) AS n FROM users WHERE email LIKE 'nul%'").first?["n"] == "0", "not stored truncated")
    let id = try s.createUser("ok@seca.com")["id"]!.stringValue!
    let patched = try s.patch("/scim/v2/Users/\(id)", [["op": "replace", "path": "nickName", "value": "a\u{0}b"]])
    #expect(patched.status == 400)
    let big = String(repeating: "x", count: 800_000)
    let longExternal = try s.http.request("POST", "/scim/v2/Users", json: SCIMFixture.user("long@seca.com", extra: ["externalId": .string(big)]))
    #expect(longExternal.status == 400)
    #expect(longExternal.json?["detail"]?.stringValue?.contains("externalId") == true)
    #expect(longExternal.json?["detail"]?.stringValue?.contains("1024") == true)
    let longGroup = try s.http.request("POST", "/scim/v2/Groups", json: ["schemas": [.string(URN.group)], "displayName": .string(big)])
    #expect(longGroup.status == 400)
    #expect(longGroup.json?["detail"]?.stringValue?.contains("displayName") == true)
    let filter = try s.http.request("GET", "/scim/v2/Users?filter=" + SCIMFixture.q("userName eq \"ok\\u0000x@seca.com\""))
    #expect(filter.status == 400)
    #expect(filter.json?["scimType"] == "invalidFilter")
    // JSON-RPC: every text param, named.
    let rpcNul = try f.rpc.error("member.add", ["workspaceId": .string(s.w.id), "email": "a@seca.com", "name": "A\u{0}B", "actor": f.admin(s.w)])
    #expect(rpcNul?.code == RPCError.Code.invalidParams)
    #expect(rpcNul?.reason == "nul_character")
    #expect(rpcNul?.data?["param"] == "name")
    let nested = try f.rpc.error("auth.signIn", ["email": "a@seca.com", "method": "password", "profile": ["groups": ["x\u{0}"]]])
    #expect(nested?.data?["param"] == "profile.groups[0]")
    let rpcLong = try f.rpc.error("workspace.create", ["name": .string(big), "plan": "business", "owner": ["email": "l@long.test"]])
    #expect(rpcLong?.reason == "too_long")
    #expect(rpcLong?.message.contains("200") == true, "the limit is stated")
    #expect(try f.rpc.call("system.health")["status"] == "ok")
  }
}
