import Foundation
import JSON
import JSONRPC
import Postgres
import RosterApp
import RosterTestSupport
import SCIM
import Testing

/// C8: people are shared across workspaces; no directory may change what
/// another workspace can read. Jane belongs to workspace A (acme.test, her
/// address's domain) and, through B's directory, to workspace B (beta.test).
@Suite(.serialized) final class SharedPeopleTests {
  let f: ProvisioningFixture
  let a: SCIMFixture
  let b: SCIMFixture
  let janeA: String
  let janeB: String

  init() throws {
    f = try ProvisioningFixture()
    a = try SCIMFixture(f, name: "Acme", owner: "owner@acme.test")
    b = try SCIMFixture(f, name: "Beta", owner: "owner@beta.test")
    try f.verifyDomain(a.w, "acme.test")
    try f.verifyDomain(b.w, "beta.test")
    janeA = try a.createUser("jane@acme.test", extra: ["displayName": "Jane Acme"])["id"]!.stringValue!
    // B's directory pushes the same person (an address of A's domain): linked, 201.
    janeB = try b.createUser("jane@acme.test", extra: ["displayName": "Jane at Beta"])["id"]!.stringValue!
  }

  /// Everything workspace A can read about Jane and its own feed.
  func snapshotA() throws -> JSONValue {
    f.waitForFeed()
    let member = try a.member(janeA)
    let list = try f.rpc.call("member.list", ["workspaceId": .string(a.w.id)])
    let events = try f.rpc.call("events.list", ["workspaceId": .string(a.w.id), "limit": 1000])["events"] ?? .null
    let audit = try f.rpc.call("audit.list", ["workspaceId": .string(a.w.id), "limit": 1000])["entries"] ?? .null
    let scim = try a.http.request("GET", "/scim/v2/Users/\(janeA)").json ?? .null
    return ["member": member, "list": list, "events": events, "audit": audit, "scim": scim]
  }

  /// One write path of B's directory that changes Jane's address and name.
  enum WritePath: String, CaseIterable, Sendable {
    case put, patchWithPath, patchWithoutPath, patchEntraDottedAndURNKeys, patchEmailsFilter, rpcScimRequest
  }

  func rename(_ path: WritePath, to email: String, given: String) throws -> Int {
    let user = "/scim/v2/Users/\(janeB)"
    switch path {
    case .put:
      var body = SCIMFixture.user(email, given: given, family: "Beta").objectValue!
      body["id"] = .string(janeB)
      body["password"] = "secret-okta-sends"
      return try b.http.request("PUT", user, json: .object(body)).status
    case .patchWithPath:
      return try b.patch(
        user,
        [
          ["op": "replace", "path": "userName", "value": .string(email)],
          ["op": "replace", "path": "name.givenName", "value": .string(given)],
          ["op": "replace", "path": "displayName", "value": .string("\(given) Beta")],
        ]
      ).status
    case .patchWithoutPath:
      return try b.patch(user, [["op": "Replace", "value": ["userName": .string(email), "displayName": .string("\(given) Beta")]]]).status
    case .patchEntraDottedAndURNKeys:
      return try b.patch(
        user,
        [
          [
            "op": "Replace",
            "value": [
              "userName": .string(email), "name.givenName": .string(given), "name.familyName": "Beta",
              "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Sales",
            ],
          ]
        ]
      ).status
    case .patchEmailsFilter:
      return try b.patch(
        user,
        [
          ["op": "replace", "path": "userName", "value": .string(email)],
          ["op": "replace", "path": #"emails[type eq "work"].value"#, "value": .string(email)],
          ["op": "replace", "path": "name", "value": ["givenName": .string(given), "familyName": "Beta"]],
        ]
      ).status
    case .rpcScimRequest:
      let r = try f.rpc.call(
        "scim.request",
        [
          "httpMethod": "PATCH", "path": .string(user), "authorization": .string("Bearer \(b.token)"),
          "body": [
            "schemas": [.string(URN.patchOp)],
            "Operations": [["op": "replace", "value": ["userName": .string(email), "displayName": .string("\(given) Beta")]]],
          ],
        ])
      return Int(r["status"]?.intValue ?? 0)
    }
  }

  @Test(arguments: WritePath.allCases)
  func c8AnotherWorkspacesDirectoryCannotRewriteAPerson(_ path: WritePath) throws {
    let before = try snapshotA()
    #expect(try rename(path, to: "jane.b@beta.test", given: "Janet") == 200)
    // B's member follows its directory: the new address and name…
    let inB = try b.member(janeB)
    #expect(inB["email"] == "jane.b@beta.test")
    #expect(inB["name"] == "Janet Beta")
    // …on a user of its own: the person A holds is untouched.
    #expect(inB["userId"] != before["member"]?["userId"])
    #expect(try snapshotA() == before)
    // Sign-in finds Jane's memberships by her address: A's is still hers, B's has moved.
    let decision = try f.signIn("jane@acme.test")
    #expect(decision.workspace(a.w.id)?["memberId"]?.stringValue == janeA)
    #expect(decision.workspace(b.w.id) == nil)
    #expect(try f.signIn("jane.b@beta.test").workspace(b.w.id)?["memberId"]?.stringValue == janeB)
  }

  @Test func c8CreatingAnExistingPersonLinksThemAndChangesNothingElse() throws {
    let person = try a.member(janeA)
    #expect(person["name"] == "Jane Acme", "B's create kept A's name")
    #expect(try b.member(janeB)["name"] == "Jane at Beta", "B's name is on B's membership")
    #expect(try b.member(janeB)["userId"] == person["userId"], "linked to the same person")
    let users = try f.pool.query("SELECT name FROM users WHERE lower(email) = 'jane@acme.test'").rows
    #expect(users.map { $0["name"] } == ["Jane Acme"])
    // A person with an empty name (an invite without one) keeps it empty.
    try f.addMember(a.w, "nameless@acme.test")
    try b.createUser("nameless@acme.test", extra: ["displayName": "Named by Beta"])
    #expect(try f.pool.query("SELECT name FROM users WHERE email = 'nameless@acme.test'").first?["name"] == "")
  }

  @Test func c8DeleteAndDeactivationInBTouchOnlyB() throws {
    let before = try snapshotA()
    #expect(try b.patch("/scim/v2/Users/\(janeB)", [["op": "replace", "value": ["active": "False"]]]).status == 200)
    #expect(try b.member(janeB)["status"] == "deactivated")
    #expect(try snapshotA() == before)
    #expect(try b.http.request("DELETE", "/scim/v2/Users/\(janeB)").status == 204)
    #expect(try snapshotA() == before)
    #expect(try f.signIn("jane@acme.test").workspace(a.w.id) != nil)
  }

  @Test func c8RenamesInB() throws {
    // A name change alone stays on B's membership.
    let before = try snapshotA()
    #expect(try b.patch("/scim/v2/Users/\(janeB)", [["op": "replace", "path": "displayName", "value": "Jay"]]).status == 200)
    #expect(try b.member(janeB)["name"] == "Jay")
    #expect(try snapshotA() == before)
    // B's directory moving its membership to an address someone else already
    // holds links it to that person, and changes neither person.
    let bob = try a.createUser("bob@acme.test", extra: ["displayName": "Bob"])["id"]!.stringValue!
    let bobBefore = try a.member(bob)
    #expect(try b.patch("/scim/v2/Users/\(janeB)", [["op": "replace", "path": "userName", "value": "bob@acme.test"]]).status == 200)
    #expect(try b.member(janeB)["userId"] == bobBefore["userId"])
    #expect(try a.member(bob) == bobBefore)
    #expect(try a.member(janeA)["email"] == "jane@acme.test")
    // Two members of B cannot both be one person.
    let other = try b.createUser("carol@beta.test")["id"]!.stringValue!
    let taken = try b.patch("/scim/v2/Users/\(other)", [["op": "replace", "path": "userName", "value": "bob@acme.test"]])
    #expect(taken.status == 409)
    #expect(taken.json?["scimType"] == "uniqueness")
  }

  @Test func c8TheOwningWorkspaceIsAuthoritative() throws {
    // A owns acme.test: its directory renames the person everywhere.
    #expect(
      try a.patch(
        "/scim/v2/Users/\(janeA)",
        [["op": "replace", "path": "userName", "value": "janet@acme.test"], ["op": "replace", "path": "displayName", "value": "Janet Acme"]]
      ).status == 200)
    #expect(try a.member(janeA)["email"] == "janet@acme.test")
    #expect(try a.member(janeA)["name"] == "Janet Acme")
    #expect(try b.member(janeB)["email"] == "janet@acme.test", "one person, one address")
    #expect(try b.member(janeB)["name"] == "Jane at Beta", "B's name for her is B's")
    #expect(try a.member(janeA)["userId"] == b.member(janeB)["userId"])
    // Moving her to an address outside A's domains is not A's to do for
    // everyone: only A's membership moves.
    #expect(try a.patch("/scim/v2/Users/\(janeA)", [["op": "replace", "path": "userName", "value": "jane@gamma.test"]]).status == 200)
    #expect(try a.member(janeA)["email"] == "jane@gamma.test")
    #expect(try b.member(janeB)["email"] == "janet@acme.test")
  }

  @Test func idpRenamesReachTheMember() throws {
    let u = "/scim/v2/Users/\(janeA)"
    #expect(try a.patch(u, [["op": "replace", "path": "displayName", "value": "Jane Q. Acme"]]).status == 200)
    #expect(try a.member(janeA)["name"] == "Jane Q. Acme")
    #expect(try a.patch(u, [["op": "replace", "path": "name.givenName", "value": "Janine"]]).status == 200)
    #expect(try a.member(janeA)["name"] == "Janine User")
  }

  @Test func membersOutsideTheVerifiedDomainsAreVisible() throws {
    let contractor = try a.createUser("kim@contractor.test")["id"]!.stringValue!
    // Before SSO, everyone can sign in.
    #expect(try a.member(contractor)["signInBlocked"] == .null)
    try f.rpc.call("sso.configure", ["workspaceId": .string(a.w.id), "connection": ProvisioningFixture.samlConnection, "actor": f.admin(a.w)])
    #expect(try a.member(contractor)["signInBlocked"] == "outside_domain")
    #expect(try a.member(janeA)["signInBlocked"] == .null)
    let blocked = try f.rpc.call("member.list", ["workspaceId": .string(a.w.id), "signInBlocked": "outside_domain"])["members"]?.arrayValue ?? []
    #expect(blocked.map { $0["memberId"] } == [.string(contractor)])
    let fine = try f.rpc.call("member.list", ["workspaceId": .string(a.w.id), "signInBlocked": "none"])["members"]?.arrayValue ?? []
    #expect(fine.contains { $0["memberId"]?.stringValue == janeA } && !fine.contains { $0["memberId"]?.stringValue == contractor })
    // S3 agrees.
    #expect(try f.signIn("kim@contractor.test").blockedReason(a.w.id) == "outside_domain")
    #expect(try a.patch("/scim/v2/Users/\(janeA)", [["op": "replace", "value": ["active": false]]]).status == 200)
    #expect(try a.member(janeA)["signInBlocked"] == "deactivated")
  }
}
