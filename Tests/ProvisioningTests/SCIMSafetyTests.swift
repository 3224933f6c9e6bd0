import Foundation
import JSON
import JSONRPC
import Postgres
import RosterTestSupport
import SCIM
import Testing

/// C1, C4, C5, C7 and bad input over the HTTP listener.
@Suite(.serialized) final class SCIMSafetyTests {
  let f: ProvisioningFixture
  let s: SCIMFixture

  init() throws {
    f = try ProvisioningFixture()
    s = try SCIMFixture(f)
  }

  @Test func c7TokensAreIsolatedHashedRotatableAndRevocable() throws {
    let other = try SCIMFixture(f, name: "Other", owner: "o@other.test")
    let mine = try s.createUser("mine@acme.test")["id"]!.stringValue!
    let theirs = try other.createUser("theirs@other.test")["id"]!.stringValue!
    #expect(try s.http.request("GET", "/scim/v2/Users/\(theirs)").status == 404)
    #expect(try s.patch("/scim/v2/Users/\(theirs)", [["op": "replace", "value": ["active": false]]]).status == 404)
    #expect(try s.http.request("DELETE", "/scim/v2/Users/\(theirs)").status == 404)
    #expect(try s.http.request("GET", "/scim/v2/Users?filter=" + SCIMFixture.q(#"userName eq "theirs@other.test""#)).json?["totalResults"] == 0)
    #expect(try s.http.request("GET", "/scim/v2/Users").json?["totalResults"] == 1)
    let g = try other.createGroup("Theirs")["id"]!.stringValue!
    #expect(try s.http.request("GET", "/scim/v2/Groups/\(g)").status == 404)
    // A group in one workspace cannot take a member of another.
    let mixed = try other.patch("/scim/v2/Groups/\(g)", [["op": "add", "path": "members", "value": [["value": .string(mine)]]]])
    #expect(mixed.status == 400)
    #expect(try other.member(theirs)["status"] == "active")
    // Only a hash is stored.
    let stored = try f.pool.query("SELECT token_hash FROM directories").rows.compactMap { $0["token_hash"] }
    #expect(stored.count == 2 && !stored.contains(s.token) && stored.allSatisfy { $0.count == 64 })
    // Rotation: the old token stops working, the new one works.
    let rotated = try f.rpc.call("directory.rotateToken", ["workspaceId": .string(s.w.id), "actor": f.admin(s.w)])["bearerToken"]!.stringValue!
    #expect(try s.http.request("GET", "/scim/v2/Users").status == 401)
    s.http.token = rotated
    #expect(try s.http.request("GET", "/scim/v2/Users").status == 200)
    // Disable: revoked.
    try f.rpc.call("directory.disable", ["workspaceId": .string(s.w.id), "actor": f.admin(s.w)])
    let revoked = try s.http.request("GET", "/scim/v2/Users")
    #expect(revoked.status == 401)
    #expect(revoked.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
    #expect(revoked.json?["schemas"] == [.string(URN.error)])
    #expect(try f.rpc.call("directory.get", ["workspaceId": .string(s.w.id)])["enabled"] == false)
    #expect(try f.rpc.call("directory.get", ["workspaceId": .string(s.w.id)])["bearerToken"] == nil)
  }

  @Test func d1DirectorySyncNeedsEnterprise() throws {
    let small = try f.workspace("Small", plan: "business", owner: "o@small.test")
    #expect(try f.rpc.error("directory.enable", ["workspaceId": .string(small.id), "actor": f.admin(small)])?.reason == "plan_required")
  }

  @Test func c4RoleAttribute() throws {
    let bad = try s.http.request("POST", "/scim/v2/Users", json: SCIMFixture.user("x@acme.test", extra: ["loomMemberRole": "owner"]))
    #expect(bad.status == 400)
    #expect(bad.json?["scimType"] == "invalidValue")
    #expect(try f.pool.query("SELECT count(*) AS n FROM users WHERE email = 'x@acme.test'").first?["n"] == "0", "nothing written")
    let viewer = try s.createUser("v@acme.test", extra: ["loomMemberRole": "viewer"])["id"]!.stringValue!
    #expect(try s.member(viewer)["role"] == "viewer")
    #expect(try s.member(viewer)["roleSource"] == "attribute")
    let d = try s.createUser("d@acme.test", extra: ["loomMemberRole": "default"])["id"]!.stringValue!
    #expect(try s.member(d)["role"] == "creator")
    #expect(try s.member(d)["roleSource"] == "default")
    // The attribute is in /Schemas, in the core User schema.
    let schema = try s.http.request("GET", "/scim/v2/Schemas/" + URN.user).json!
    #expect((schema["attributes"]?.arrayValue ?? []).contains { $0["name"] == "loomMemberRole" })
  }

  @Test func c5GroupMappingsWithPriorities() throws {
    let jane = try s.createUser("jane@acme.test", extra: ["loomMemberRole": "default"])["id"]!.stringValue!
    let creators = try s.createGroup("Creators", members: [jane])["id"]!.stringValue!
    let admins = try s.createGroup("Admins")["id"]!.stringValue!
    let viewers = try s.createGroup("Viewers", members: [jane])["id"]!.stringValue!
    try f.rpc.call("group.mapRole", ["workspaceId": .string(s.w.id), "groupId": .string(creators), "role": "creator", "priority": 20, "actor": f.admin(s.w)])
    try f.rpc.call("group.mapRole", ["workspaceId": .string(s.w.id), "groupId": .string(admins), "role": "admin", "priority": 10, "actor": f.admin(s.w)])
    try f.rpc.call("group.mapRole", ["workspaceId": .string(s.w.id), "groupId": .string(viewers), "role": "viewer", "priority": 30, "actor": f.admin(s.w)])
    #expect(try s.member(jane)["role"] == "creator")
    #expect(try s.member(jane)["roleSource"] == "group")
    // Joining Admins (higher priority) makes her an admin at once.
    #expect(try s.patch("/scim/v2/Groups/\(admins)", [["op": "add", "path": "members", "value": [["value": .string(jane)]]]]).status < 300)
    #expect(try s.member(jane)["role"] == "admin")
    let changes = try f.events("member.role_changed", workspace: s.w).filter { $0["memberId"] == .string(jane) }
    #expect(changes.last?["data"]?["to"] == "admin")
    // An explicit attribute wins over groups.
    #expect(try s.patch("/scim/v2/Users/\(jane)", [["op": "replace", "path": "loomMemberRole", "value": "viewer"]]).status == 200)
    #expect(try s.member(jane)["role"] == "viewer")
    #expect(try s.member(jane)["roleSource"] == "attribute")
    // Back to default: the groups decide again.
    #expect(try s.patch("/scim/v2/Users/\(jane)", [["op": "replace", "path": "loomMemberRole", "value": "default"]]).status == 200)
    #expect(try s.member(jane)["role"] == "admin")
    // Leaving every mapped group falls back to the workspace default.
    for g in [creators, admins, viewers] {
      #expect(try s.patch("/scim/v2/Groups/\(g)", [["op": "remove", "path": .string("members[value eq \"\(jane)\"]")]]).status < 300)
    }
    #expect(try s.member(jane)["role"] == "creator")
    #expect(try s.member(jane)["roleSource"] == "default")
    let groups = try f.rpc.call("group.list", ["workspaceId": .string(s.w.id)])["groups"]!.arrayValue!
    #expect(groups.first { $0["displayName"] == "Admins" }?["priority"] == 10)
    #expect(try f.rpc.error("group.mapRole", ["workspaceId": .string(s.w.id), "groupId": .string(admins), "role": "admin", "actor": f.admin(s.w)])?.data?["param"] == "priority")
    #expect(try f.rpc.error("group.mapRole", ["workspaceId": .string(s.w.id), "groupId": .string(admins), "role": "admin", "priority": 0, "actor": f.admin(s.w)])?.code == -32602)
  }

  @Test func r4TheTransferTargetCannotBeDeactivatedOrDemotedThroughSCIM() throws {
    let target = try s.createUser("target@acme.test", extra: ["loomMemberRole": "creator"])["id"]!.stringValue!
    try f.pool.query(
      "UPDATE workspaces SET deprovision_mode = 'delete', deprovision_content = 'transfer', deprovision_target_member_id = \(target)::uuid WHERE id = \(s.w.id)::uuid")
    let off = try s.patch("/scim/v2/Users/\(target)", [["op": "replace", "value": ["active": false]]])
    #expect(off.status == 409)
    #expect(off.json?["schemas"] == [.string(URN.error)])
    #expect(try s.member(target)["status"] == "active", "nothing changed")
    #expect(try s.http.request("GET", "/scim/v2/Users/\(target)").json?["active"] == true)
    let demote = try s.patch("/scim/v2/Users/\(target)", [["op": "replace", "path": "loomMemberRole", "value": "viewer"]])
    #expect(demote.status == 409)
    #expect(try s.member(target)["role"] == "creator")
    #expect(try s.http.request("DELETE", "/scim/v2/Users/\(target)").status == 409)
    // The admin is emailed once for the three refused attempts (an hour's
    // throttle per workspace and target); each attempt is audited.
    for _ in 0..<2 { #expect(try s.patch("/scim/v2/Users/\(target)", [["op": "replace", "value": ["active": false]]]).status == 409) }
    #expect(try f.outbox("transfer_target_conflict").count == 1)
    let audited = try f.pool.query("SELECT after FROM audit_log WHERE action = 'deprovision.target_protected' ORDER BY id").rows
    #expect(audited.count == 5)
    #expect(audited.compactMap { try? $0.json("after")["adminsEmailed"] } == [true, false, false, false, false])
    // After the target changes, the retried deactivation succeeds.
    try f.pool.query("UPDATE workspaces SET deprovision_target_member_id = \(s.w.owner)::uuid WHERE id = \(s.w.id)::uuid")
    #expect(try s.patch("/scim/v2/Users/\(target)", [["op": "replace", "value": ["active": false]]]).status == 200)
  }

  @Test func badInputGetsSCIMErrors() throws {
    let id = try s.createUser("bad@acme.test")["id"]!.stringValue!
    func expectError(_ r: TestHTTP.Response, _ status: Int, _ scimType: String? = nil, _ note: Comment? = nil) {
      #expect(r.status == status, note)
      #expect(r.json?["schemas"] == [.string(URN.error)], note)
      #expect(r.json?["status"] == .string(String(status)), note)
      if let scimType { #expect(r.json?["scimType"] == .string(scimType), note) }
    }
    expectError(try s.http.raw("POST", "/scim/v2/Users", headers: [("Authorization", "Bearer \(s.token)"), ("Content-Type", "application/scim+json")], body: Array("{bad".utf8)), 400, "invalidSyntax")
    expectError(try s.http.raw("POST", "/scim/v2/Users", headers: [("Authorization", "Bearer \(s.token)"), ("Content-Type", "text/plain")], body: Array("{}".utf8)), 415)
    expectError(try s.patch("/scim/v2/Users/\(id)", [["op": "replace", "path": "frobnicator", "value": "x"]]), 400, "invalidPath")
    expectError(try s.patch("/scim/v2/Users/\(id)", [["op": "replace", "path": "id", "value": "x"]]), 400, "mutability")
    expectError(try s.patch("/scim/v2/Users/\(id)", [["op": "remove"]]), 400, "noTarget")
    expectError(try s.http.request("GET", "/scim/v2/Users?filter=" + SCIMFixture.q("userName eq \"" + String(repeating: "x", count: 10_240) + "\"")), 400, "invalidFilter")
    expectError(try s.http.request("GET", "/scim/v2/Users?filter=" + SCIMFixture.q("userName zz 1")), 400, "invalidFilter")
    expectError(try s.http.request("GET", "/scim/v2/Users?filter=" + SCIMFixture.q("nosuch eq 1")), 400, "invalidFilter")
    let deep = String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)
    expectError(try s.http.raw("POST", "/scim/v2/Users", headers: [("Authorization", "Bearer \(s.token)"), ("Content-Type", "application/scim+json")], body: Array(deep.utf8)), 400, "invalidSyntax")
    expectError(try s.http.request("GET", "/scim/v2/Users/3f2504e0-4f89-41d3-9a0c-0305e82c3301"), 404)
    expectError(try s.http.request("GET", "/scim/v2/Users/not-a-uuid"), 404)
    let notAllowed = try s.http.request("PUT", "/scim/v2/Users", json: SCIMFixture.user("y@acme.test"))
    expectError(notAllowed, 405)
    #expect(notAllowed.header("Allow") == "GET, POST", "RFC 9110 §15.5.6: a 405 names the allowed methods")
    expectError(try s.http.request("DELETE", "/scim/v2/ServiceProviderConfig"), 405)
    expectError(try s.http.request("POST", "/scim/v2/Schemas", json: [:]), 405)
    expectError(try s.http.request("GET", "/scim/v2/Nowhere"), 404)
    expectError(try s.http.request("POST", "/scim/v2/Bulk", json: [:]), 501)
    expectError(try s.http.request("GET", "/scim/v2/Users/\(id)", headers: [("Authorization", "Basic abc")]), 401)
    let stale = try s.http.request("PUT", "/scim/v2/Users/\(id)", json: SCIMFixture.user("bad@acme.test"), headers: [("If-Match", "W/\"999\"")])
    expectError(stale, 412)
    let current = try s.http.request("GET", "/scim/v2/Users/\(id)")
    #expect(current.header("ETag") == current.json?["meta"]?["version"]?.stringValue)
    #expect(try s.http.request("PUT", "/scim/v2/Users/\(id)", json: SCIMFixture.user("bad@acme.test"), headers: [("If-Match", current.header("ETag")!)]).status == 200)
    // A Group DELETE honours If-Match too (RFC 7644 §3.14): stale → 412 and the group stays.
    let gid = try s.createGroup("Stale")["id"]!.stringValue!
    expectError(try s.http.request("DELETE", "/scim/v2/Groups/\(gid)", headers: [("If-Match", "W/\"999\"")]), 412)
    #expect(try s.http.request("GET", "/scim/v2/Groups/\(gid)").status == 200)
    #expect(try s.http.request("DELETE", "/scim/v2/Groups/\(gid)").status == 204)
    // Nothing half-written by the failed attempts.
    #expect(try f.pool.query("SELECT count(*) AS n FROM scim_users").first?["n"] == "1")
  }

  @Test func httpFramingLimitsAndKeepAlive() throws {
    let auth = "Authorization: Bearer \(s.token)\r\n"
    // Chunked body.
    let user = JSONWriter.bytes(SCIMFixture.user("chunked@acme.test"))
    let half = user.count / 2
    var chunked = Array("POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n\(auth)Content-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
    chunked += Array(String(half, radix: 16).utf8) + [13, 10] + user[..<half] + [13, 10]
    chunked += Array(String(user.count - half, radix: 16).utf8) + [13, 10] + user[half...] + [13, 10] + Array("0\r\n\r\n".utf8)
    #expect(try s.http.send(chunked).status == 201)
    // Keep-alive: the same connection serves the next request.
    #expect(try s.http.request("GET", "/scim/v2/ServiceProviderConfig").status == 200)
    // Body over 1 MiB: 413 with a SCIM error.
    let big = try TestHTTP(socket: f.process.runDir + "/scim.sock", token: s.token)
    let tooBig = try big.send(
      Array("POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n\(auth)Content-Type: application/scim+json\r\nContent-Length: \((1 << 20) + 1)\r\n\r\n".utf8))
    #expect(tooBig.status == 413)
    #expect(tooBig.json?["status"] == "413")
    // A chunk size near Int.max after a first chunk: 413, not an arithmetic overflow that kills the process.
    let huge = try TestHTTP(socket: f.process.runDir + "/scim.sock", token: s.token)
    let overflow = try huge.send(
      Array(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n\(auth)Content-Type: application/scim+json\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n7fffffffffffffff\r\n"
          .utf8))
    #expect(overflow.status == 413)
    #expect(overflow.json?["status"] == "413")
    // Headers over 16 KiB: 431.
    let fat = try TestHTTP(socket: f.process.runDir + "/scim.sock", token: s.token)
    #expect(try fat.request("GET", "/scim/v2/Users", headers: [("X-Padding", String(repeating: "a", count: 17_000))]).status == 431)
    // Malformed request line: 400 with a SCIM error, never plain text.
    let junk = try TestHTTP(socket: f.process.runDir + "/scim.sock")
    let r = try junk.send(Array("NOT A REQUEST\r\n\r\n".utf8))
    #expect(r.status == 400)
    #expect(r.json?["schemas"] == [.string(URN.error)])
    // And the server is still fine.
    #expect(try TestHTTP(socket: f.process.runDir + "/scim.sock", token: s.token).request("GET", "/scim/v2/Users").status == 200)
  }

  @Test func scimRequestRPCRunsTheSameHandler() throws {
    let viaRPC = try f.rpc.call(
      "scim.request",
      ["httpMethod": "POST", "path": "/scim/v2/Users", "authorization": .string("Bearer \(s.token)"), "body": SCIMFixture.user("rpc@acme.test")])
    #expect(viaRPC["status"] == 201)
    let id = try #require(viaRPC["body"]?["id"]?.stringValue)
    let viaHTTP = try s.http.request("GET", "/scim/v2/Users/\(id)")
    #expect(viaHTTP.json?["userName"] == "rpc@acme.test")
    let filtered = try f.rpc.call(
      "scim.request",
      ["httpMethod": "GET", "path": "/scim/v2/Users", "query": ["filter": #"userName eq "RPC@acme.test""#], "authorization": .string("Bearer \(s.token)")])
    #expect(filtered["body"]?["totalResults"] == 1)
    let denied = try f.rpc.call("scim.request", ["httpMethod": "GET", "path": "/scim/v2/Users", "authorization": "Bearer nope"])
    #expect(denied["status"] == 401)
  }

  @Test func filtersTranslateToSQL() throws {
    try s.createUser("alice@acme.test", extra: ["title": "Engineer", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": ["department": "R&D"]])
    try s.createUser("bob@acme.test", extra: ["title": "Designer"])
    try s.createUser("carol@partner.test", extra: ["active": false])
    func count(_ filter: String) throws -> Int64? {
      try s.http.request("GET", "/scim/v2/Users?filter=" + SCIMFixture.q(filter)).json?["totalResults"]?.intValue
    }
    #expect(try count(#"userName sw "ALICE""#) == 1)
    #expect(try count(#"userName ew "@acme.test""#) == 2)
    #expect(try count(#"userName co "o""#) == 2)
    #expect(try count(#"userName ne "alice@acme.test""#) == 2)
    #expect(try count(#"title pr"#) == 2)
    #expect(try count(#"not (title pr)"#) == 1)
    #expect(try count(#"title eq "engineer" or title eq "Designer""#) == 2)
    #expect(try count(#"active eq true and emails[value ew "acme.test"]"#) == 2)
    #expect(try count(#"emails.value eq "CAROL@partner.test""#) == 1)
    #expect(try count(#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d""#) == 1)
    #expect(try count(#"meta.created gt "2000-01-01T00:00:00Z""#) == 3)
    #expect(try count(#"meta.lastModified lt "2000-01-01T00:00:00Z""#) == 0)
    #expect(try count(#"name.familyName eq "user""#) == 3)
    #expect(try count(#"id eq "not-a-uuid""#) == 0)
    let hostile = #"userName eq "x' OR '1'='1""#
    #expect(try count(hostile) == 0)
  }
}
