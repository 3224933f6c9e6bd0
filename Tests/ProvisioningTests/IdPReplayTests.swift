import Foundation
import JSON
import JSONRPC
import Postgres
import RosterTestSupport
import SCIM
import Testing

/// C2: the request sequences Okta and Microsoft Entra ID really send
/// (shared/notes/scim-idp-behaviour.md), replayed over scim.sock.
@Suite(.serialized) final class OktaReplayTests {
  let f: ProvisioningFixture
  let s: SCIMFixture

  init() throws {
    f = try ProvisioningFixture()
    s = try SCIMFixture(f)
  }

  @Test func userLifecycleAsOktaSendsIt() throws {
    // Lookup before create: 200 with an empty ListResponse, integers, never 404.
    let lookup = try s.http.request(
      "GET", "/scim/v2/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100")
    #expect(lookup.status == 200)
    #expect(lookup.header("Content-Type")?.hasPrefix("application/scim+json") == true)
    #expect(lookup.json == ["schemas": [.string(URN.listResponse)], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []])
    // Create with password and groups: [] inside.
    let created = try s.http.request(
      "POST", "/scim/v2/Users",
      json: [
        "schemas": [.string(URN.user)], "userName": "test.user@okta.local", "name": ["givenName": "Test", "familyName": "User"],
        "emails": [["primary": true, "value": "test.user@okta.local", "type": "work"]], "displayName": "Test User", "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7", "groups": [], "password": "1mz050nq", "active": true,
      ])
    #expect(created.status == 201)
    let user = try #require(created.json)
    let id = try #require(user["id"]?.stringValue)
    #expect(created.header("Location")?.hasSuffix("/scim/v2/Users/\(id)") == true)
    #expect(user["password"] == nil, "password is never returned")
    #expect(try f.pool.query("SELECT count(*) AS n FROM scim_users WHERE resource::text LIKE '%1mz050nq%'").first?["n"] == "0", "nor stored")
    #expect(user["meta"]?["version"]?.stringValue?.hasPrefix("W/") == true)
    #expect(try s.member(id)["joined"] == "scim")
    // Duplicate → 409 uniqueness, case-insensitively.
    let dup = try s.http.request("POST", "/scim/v2/Users", json: SCIMFixture.user("TEST.USER@okta.local"))
    #expect(dup.status == 409)
    #expect(dup.json?["scimType"] == "uniqueness")
    #expect(dup.json?["status"] == "409")
    // The upper-cased lookup finds it; userName comes back as sent.
    let upper = try s.http.request("GET", "/scim/v2/Users?filter=" + SCIMFixture.q(#"userName eq "TEST.USER@OKTA.LOCAL""#))
    #expect(upper.json?["totalResults"] == 1)
    #expect(upper.json?["Resources"]?.arrayValue?.first?["userName"] == "test.user@okta.local")
    // Profile update: GET, then PUT of the whole object with id, groups and meta inside.
    var full = try s.http.request("GET", "/scim/v2/Users/\(id)").json!.objectValue!
    full["name"] = ["givenName": "Another", "middleName": "Excited", "familyName": "User"]
    full["groups"] = []
    full["meta"] = ["resourceType": "User"]
    let put = try s.http.request("PUT", "/scim/v2/Users/\(id)", json: .object(full))
    #expect(put.status == 200)
    #expect(put.json?["name"]?["middleName"] == "Excited")
    // Deactivate: path-less replace of {"active": false}.
    let off = try s.patch("/scim/v2/Users/\(id)", [["op": "replace", "value": ["active": false]]])
    #expect(off.status == 200)
    #expect(off.json?["active"] == false)
    #expect(try s.member(id)["status"] == "deactivated")
    #expect(try f.signIn("test.user@okta.local", workspace: nil).blockedReason(s.w.id) == "deactivated")
    // Still readable and filterable with active false (C6).
    let inactive = try s.http.request("GET", "/scim/v2/Users?filter=" + SCIMFixture.q(#"userName eq "test.user@okta.local" and active eq false"#))
    #expect(inactive.json?["totalResults"] == 1)
    #expect(try s.f.pool.query("SELECT count(*) AS n FROM jobs WHERE member_id = \(id)::uuid AND kind = 'deprovision'").first?["n"] == "1")
    // Reactivate.
    let on = try s.patch("/scim/v2/Users/\(id)", [["op": "replace", "value": ["active": true]]])
    #expect(on.json?["active"] == true)
    #expect(try s.member(id)["status"] == "active")
    let types = try f.events("member.sessions_revoked", workspace: s.w).map { $0["memberId"] }
    #expect(types.contains(.string(id)))
    #expect(try f.events("member.reactivated", workspace: s.w).count == 1)
  }

  @Test func importPagesAreStable() throws {
    for i in 0..<7 { try s.createUser("page\(i)@okta.local") }
    var seen: [String] = []
    var start = 1
    while true {
      let page = try s.http.request("GET", "/scim/v2/Users?startIndex=\(start)&count=3").json!
      #expect(page["totalResults"] == 7)
      #expect(page["startIndex"] == .int(Int64(start)))
      let ids = (page["Resources"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
      #expect(page["itemsPerPage"] == .int(Int64(ids.count)))
      if ids.isEmpty { break }
      seen += ids
      start += 3
    }
    #expect(seen.count == 7)
    #expect(Set(seen).count == 7)
    let zero = try s.http.request("GET", "/scim/v2/Users?count=0").json!
    #expect(zero["totalResults"] == 7)
    #expect(zero["Resources"] == [])
  }

  @Test func groupPushAndMembership() throws {
    let a = try s.createUser("a@okta.local")["id"]!.stringValue!
    let b = try s.createUser("b@okta.local")["id"]!.stringValue!
    let g = try s.http.request("POST", "/scim/v2/Groups", json: ["schemas": [.string(URN.group)], "displayName": "Test SCIMv2", "members": []])
    #expect(g.status == 201)
    let gid = g.json!["id"]!.stringValue!
    // Rename with the id inside the value (sent on every membership update).
    let rename = try s.patch("/scim/v2/Groups/\(gid)", [["op": "replace", "value": ["id": .string(gid), "displayName": "Test SCIMv2"]]])
    #expect(rename.status == 200)
    // Add without type, then remove by filter and add in one request.
    #expect(try s.patch("/scim/v2/Groups/\(gid)", [["op": "add", "path": "members", "value": [["value": .string(a), "display": "a@okta.local"]]]]).status < 300)
    let swap = try s.patch(
      "/scim/v2/Groups/\(gid)",
      [["op": "remove", "path": .string("members[value eq \"\(a)\"]")], ["op": "add", "path": "members", "value": [["value": .string(b)]]]])
    #expect(swap.status < 300)
    var members = try s.http.request("GET", "/scim/v2/Groups/\(gid)").json!["members"]?.arrayValue?.compactMap { $0["value"]?.stringValue } ?? []
    #expect(members == [b])
    // Full push with replace.
    #expect(try s.patch("/scim/v2/Groups/\(gid)", [["op": "replace", "path": "members", "value": [["value": .string(a)], ["value": .string(b)]]]]).status < 300)
    members = try s.http.request("GET", "/scim/v2/Groups/\(gid)").json!["members"]?.arrayValue?.compactMap { $0["value"]?.stringValue } ?? []
    #expect(Set(members) == [a, b])
    // Path-less replace of members.
    #expect(try s.patch("/scim/v2/Groups/\(gid)", [["op": "replace", "value": ["members": [["value": .string(a)]]]]]).status < 300)
    members = try s.http.request("GET", "/scim/v2/Groups/\(gid)").json!["members"]?.arrayValue?.compactMap { $0["value"]?.stringValue } ?? []
    #expect(members == [a])
    // The user shows the group.
    #expect(try s.http.request("GET", "/scim/v2/Users/\(a)").json!["groups"]?.arrayValue?.first?["value"] == .string(gid))
    // Unknown member ids change nothing.
    let bogus = try s.patch("/scim/v2/Groups/\(gid)", [["op": "add", "path": "members", "value": [["value": "3f2504e0-4f89-41d3-9a0c-0305e82c3301"]]]])
    #expect(bogus.status == 400)
    #expect(bogus.json?["scimType"] == "invalidValue")
    #expect(try s.http.request("DELETE", "/scim/v2/Groups/\(gid)").status == 204)
    #expect(try s.http.request("GET", "/scim/v2/Groups/\(gid)").status == 404)
  }
}

@Suite(.serialized) final class EntraReplayTests {
  let f: ProvisioningFixture
  let s: SCIMFixture

  init() throws {
    f = try ProvisioningFixture()
    s = try SCIMFixture(f)
  }

  static let entraUser: JSONValue = [
    "schemas": [.string(URN.user), .string(URN.enterprise)], "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": "Test_User_ab6490ee@testuser.com", "active": true,
    "emails": [["primary": true, "type": "work", "value": "Test_User_ab6490ee@testuser.com"]], "meta": ["resourceType": "User"],
    "name": ["formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"], "roles": [],
    "addresses": nil, "phoneNumbers": nil,
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": ["department": "Eng", "employeeNumber": "42", "manager": nil],
  ]

  @Test(arguments: ["", "?aadOptscim062020"])
  func testConnectionAndMatchingLookups(_ flag: String) throws {
    let sep = flag.isEmpty ? "?" : "&"
    // Test Connection: a random GUID as the matching property → 200 empty.
    let probe = try s.http.request("GET", "/scim/v2/Users\(flag)\(sep)filter=" + SCIMFixture.q("userName eq \"\(UUID().uuidString)\""))
    #expect(probe.status == 200)
    #expect(probe.json?["totalResults"] == 0)
    let created = try s.http.request("POST", "/scim/v2/Users\(flag)", json: Self.entraUser)
    #expect(created.status == 201)
    let u = created.json!
    #expect(u[URN.enterprise]?["department"] == "Eng")
    for filter in [
      #"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#, #"emails[type eq "work"].value eq "test_user_ab6490ee@testuser.com""#,
      #"userName eq "Test_User_ab6490ee@testuser.com""#,
    ] {
      let r = try s.http.request("GET", "/scim/v2/Users\(flag)\(sep)filter=" + SCIMFixture.q(filter))
      #expect(r.json?["totalResults"] == 1, "\(filter)")
    }
    #expect(try s.http.request("GET", "/scim/v2/Users\(flag)\(sep)filter=" + SCIMFixture.q(#"externalId eq "0A21F0F2-8D2A-4F8E-BF98-7363C4AED4EF""#)).json?["totalResults"] == 0,
      "externalId is case-exact")
    #expect(try s.http.request("DELETE", "/scim/v2/Users/\(u["id"]!.stringValue!)\(flag)").status == 204)
  }

  @Test func defaultModePatchShapes() throws {
    let id = try s.http.request("POST", "/scim/v2/Users", json: Self.entraUser).json!["id"]!.stringValue!
    let r = try s.patch(
      "/scim/v2/Users/\(id)",
      [
        ["op": "Replace", "path": "displayName", "value": "Bjfe"],
        ["op": "Replace", "path": #"emails[type eq "work"].value"#, "value": "Test_User_ab6490ee@testuser.com"],
        ["op": "Replace", "path": "name.givenName", "value": "Kkom"], ["op": "Replace", "path": "name.familyName", "value": "Unua"],
        ["op": "Replace", "path": "externalId", "value": "ext-2"],
        ["op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "Aklq"],
        ["op": "Add", "path": "nickName", "value": "Babs"],
        ["op": "Add", "path": #"phoneNumbers[type eq "mobile"].value"#, "value": "+1 555 0100"],
        ["op": "Add", "path": "manager", "value": [["$ref": "https://graph.test/Users/00aa", "value": "00aa"]]],
      ])
    #expect(r.status == 200)
    let u = r.json!
    #expect(u["displayName"] == "Bjfe")
    #expect(u["name"]?["givenName"] == "Kkom")
    #expect(u["externalId"] == "ext-2")
    #expect(u["nickName"] == "Babs")
    #expect(u[URN.enterprise]?["employeeNumber"] == "Aklq")
    #expect(u[URN.enterprise]?["manager"]?["value"] == "00aa")
    #expect(u["phoneNumbers"] == [["type": "mobile", "value": "+1 555 0100"]])
    // Entra's manager update with "$ref": null (RFC 7643 §2.5: unassigned), not a 400.
    let nullRef = try s.patch(
      "/scim/v2/Users/\(id)",
      [["op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": [["$ref": nil, "value": "00bb"]]]])
    #expect(nullRef.status == 200, "\(String(decoding: nullRef.body, as: UTF8.self))")
    #expect(nullRef.json?[URN.enterprise]?["manager"] == ["value": "00bb"])
    // Disable with the string boolean.
    let off = try s.patch("/scim/v2/Users/\(id)", [["op": "Replace", "path": "active", "value": "False"]])
    #expect(off.json?["active"] == false)
    #expect(try s.member(id)["status"] == "deactivated")
    // The validator re-reads by userName and expects active false there.
    let reread = try s.http.request("GET", "/scim/v2/Users?filter=" + SCIMFixture.q(#"userName eq "Test_User_ab6490ee@testuser.com""#))
    #expect(reread.json?["Resources"]?.arrayValue?.first?["active"] == false)
  }

  @Test func flaggedModePatchShapes() throws {
    let id = try s.http.request("POST", "/scim/v2/Users?aadOptscim062020", json: Self.entraUser).json!["id"]!.stringValue!
    let r = try s.patch(
      "/scim/v2/Users/\(id)?aadOptscim062020",
      [
        ["op": "replace", "path": #"emails[type eq "work"].value"#, "value": "Test_User_ab6490ee@testuser.com"],
        [
          "op": "replace",
          "value": [
            "displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq",
          ],
        ],
        ["op": "add", "path": "nickName", "value": "Babs"],
      ])
    #expect(r.status == 200)
    #expect(r.json?["name"]?["familyName"] == "Unua")
    #expect(r.json?[URN.enterprise]?["employeeNumber"] == "Aklq")
    #expect(try s.patch("/scim/v2/Users/\(id)?aadOptscim062020", [["op": "replace", "path": "active", "value": false]]).json?["active"] == false)
    // Null update clears (SCIM_Null_Update).
    #expect(try s.patch("/scim/v2/Users/\(id)", [["op": "replace", "path": "nickName", "value": ""]]).json?["nickName"] == nil)
  }

  @Test func groupsInBothModes() throws {
    let a = try s.createUser("a@entra.test")["id"]!.stringValue!
    let b = try s.createUser("b@entra.test")["id"]!.stringValue!
    let c = try s.createUser("c@entra.test")["id"]!.stringValue!
    let g = try s.http.request(
      "POST", "/scim/v2/Groups",
      json: [
        "schemas": [.string(URN.group), "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "Group1936", "meta": ["resourceType": "Group"],
      ])
    #expect(g.status == 201)
    let gid = g.json!["id"]!.stringValue!
    // Matching: displayName filter with members excluded.
    let found = try s.http.request("GET", "/scim/v2/Groups?excludedAttributes=members&filter=" + SCIMFixture.q(#"displayName eq "Group1936""#))
    #expect(found.json?["totalResults"] == 1)
    #expect(found.json?["Resources"]?.arrayValue?.first?["members"] == nil)
    // Add with $ref null; then legacy Remove with a value list removes only those.
    let add = try s.patch(
      "/scim/v2/Groups/\(gid)",
      [["op": "Add", "path": "members", "value": [["$ref": nil, "value": .string(a)], ["$ref": nil, "value": .string(b)], ["$ref": nil, "value": .string(c)]]]])
    #expect(add.status == 204, "Entra expects 204 for group PATCH")
    #expect(try s.patch("/scim/v2/Groups/\(gid)", [["op": "Remove", "path": "members", "value": [["value": .string(a)]]]]).status == 204)
    let after = try s.http.request("GET", "/scim/v2/Groups/\(gid)?excludedAttributes=displayName").json!
    #expect(Set(after["members"]?.arrayValue?.compactMap { $0["value"]?.stringValue } ?? []) == [b, c])
    // Flagged: remove by filter.
    #expect(try s.patch("/scim/v2/Groups/\(gid)?aadOptscim062020", [["op": "remove", "path": .string("members[value eq \"\(b)\"]")]]).status == 204)
    let last = try s.http.request("GET", "/scim/v2/Groups/\(gid)").json!
    #expect(last["members"]?.arrayValue?.compactMap { $0["value"]?.stringValue } == [c])
    // Rename.
    #expect(try s.patch("/scim/v2/Groups/\(gid)", [["op": "Replace", "path": "displayName", "value": "Group1936-renamed"]]).json?["displayName"] == "Group1936-renamed")
    // Hard delete of a user: 204, then 404; gone from the group.
    #expect(try s.http.request("DELETE", "/scim/v2/Users/\(c)").status == 204)
    #expect(try s.http.request("GET", "/scim/v2/Users/\(c)").status == 404)
    #expect(try s.http.request("GET", "/scim/v2/Users/\(c)").json?["status"] == "404")
    #expect(try s.http.request("GET", "/scim/v2/Groups/\(gid)").json!["members"]?.arrayValue?.isEmpty ?? true)
  }
}
