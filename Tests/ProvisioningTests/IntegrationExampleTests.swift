import Foundation
import JSON
import RosterTestSupport
import Testing

/// docs/examples/roster_app.py — the example app of docs/integration.md —
/// against a real Roster, a real SAML IdP and SCIM through the app's proxy:
/// sign-up, invites, sign-in decisions, SSO with PKCE, sessions revoked from
/// the event feed, removal.
@Suite(.serialized) final class IntegrationExampleTests {
  let f: ProvisioningFixture
  let deprovisioning: RunningProcess
  let appPort: UInt16
  var app: Spawned
  let appLog: String
  let stateDir: String

  init() throws {
    appPort = freeLoopbackPort()
    f = try ProvisioningFixture(environment: [
      "ROSTER_IDP_ALLOW_HTTP_LOOPBACK": "true", "ROSTER_SSO_REDIRECT_URIS": "http://127.0.0.1:\(appPort)/sso/callback",
    ])
    deprovisioning = try RunningProcess("deprovisioning", database: f.database, runDir: f.process.runDir)
    stateDir = try TestFiles.makeTempDirectory(prefix: "roster-example-app")
    appLog = stateDir + "/app.log"
    app = try Self.startApp(port: appPort, runDir: f.process.runDir, stateDir: stateDir, log: appLog)
  }

  static func startApp(port: UInt16, runDir: String, stateDir: String, log: String) throws -> Spawned {
    try? FileManager.default.removeItem(atPath: log)
    let app = try TestProcess.start(
      [
        TestFiles.python, TestFiles.repositoryRoot + "/docs/examples/roster_app.py", "--run-dir", runDir, "--listen", "127.0.0.1:\(port)",
        "--state-dir", stateDir,
      ], output: log)
    guard TestProcess.waitUntil(timeout: 20, { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("ready") }) else {
      app.stop()
      throw TestError("the example app did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }
    return app
  }

  /// What the app's subscriber handled, in order: (cursor, type, memberId).
  func handled() -> [(cursor: String, type: String, member: String)] {
    ((try? String(contentsOfFile: stateDir + "/events.log", encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
      let p = $0.split(separator: " ").map(String.init)
      return p.count == 3 ? (p[0], p[1], p[2]) : nil
    }
  }

  deinit {
    app.stop()
    deprovisioning.stop()
  }

  struct Reply {
    let status: Int
    let json: JSONValue
    let headers: [(String, String)]
    func header(_ n: String) -> String? { headers.first { $0.0.lowercased() == n.lowercased() }?.1 }
    var cookie: String? { header("Set-Cookie").map { String($0.split(separator: ";")[0]) } }
  }

  func request(_ method: String, _ path: String, _ body: JSONValue? = nil, cookie: String? = nil, headers: [(String, String)] = []) throws -> Reply {
    var h = headers
    if let cookie { h.append(("Cookie", cookie)) }
    var bytes: [UInt8] = []
    if let body {
      bytes = JSONWriter.bytes(body)
      if !h.contains(where: { $0.0 == "Content-Type" }) { h.append(("Content-Type", "application/json")) }
    }
    let r = try TestHTTP(host: "127.0.0.1", port: appPort).raw(method, path, headers: h, body: bytes)
    return Reply(status: r.status, json: r.json ?? .null, headers: r.headers)
  }

  /// An SSO sign-in as a browser makes it: the app's /login/sso, the IdP,
  /// Roster's ACS, back to the app's callback.
  func ssoSignIn(_ email: String, idp: TestSAMLIdP) throws -> Reply {
    try idp.setUser(email: email, given: "Pat", family: "Doe", groups: [])
    let start = try request("GET", "/login/sso?email=" + TestBrowser.enc(email))
    #expect(start.status == 303)
    let browser = TestBrowser(
      publicURL: "https://app.example.test", webSocket: f.process.runDir + "/web.sock", appRedirectPrefix: "http://127.0.0.1:\(appPort)/sso/callback")
    let walk = try browser.walk(try #require(start.header("Location")))
    let landed = try #require(walk.landed, "\(String(decoding: walk.last.body, as: UTF8.self).prefix(400))")
    return try request("GET", String(landed.dropFirst("http://127.0.0.1:\(appPort)".count)))
  }

  func signedOut(_ cookie: String?) -> Bool {
    TestProcess.waitUntil(timeout: 10) { (try? self.request("GET", "/me", cookie: cookie).status) == 401 }
  }

  @Test func theExampleAppRunsEveryIntegrationStep() throws {
    // Sign-up and invites; only an admin's session may invite.
    let signup = try request("POST", "/signup", ["name": "Acme", "email": "owner@acme.test", "ownerName": "Olga Owner"])
    #expect(signup.status == 201)
    let w = ProvisioningFixture.Workspace(id: try #require(signup.json["workspaceId"]?.stringValue), owner: try #require(signup.json["ownerMemberId"]?.stringValue))
    let owner = try request("POST", "/login", ["email": "owner@acme.test"])
    #expect(owner.status == 200 && owner.json["via"] == "password")
    let ownerCookie = owner.cookie
    #expect(try request("POST", "/invite", ["workspaceId": .string(w.id), "email": "jane@acme.test"]).status == 403)
    let jane = try request("POST", "/invite", ["workspaceId": .string(w.id), "email": "jane@acme.test"], cookie: ownerCookie)
    #expect(jane.status == 201)
    let janeId = try #require(jane.json["memberId"]?.stringValue)
    let janeLogin = try request("POST", "/login", ["email": "jane@acme.test"])
    #expect(try request("GET", "/me", cookie: janeLogin.cookie).json["workspaces"]?[w.id]?["role"] == "creator")

    // SSO goes live: the existing members must sign in again through it —
    // Roster says so on the feed, and the app drops their sessions.
    try f.verifyDomain(w, "acme.test")
    let idp = try TestSAMLIdP()
    let s = try f.rpc.call(
      "sso.configure", ["workspaceId": .string(w.id), "connection": ["protocol": "saml", "metadataXml": .string(try idp.metadata())], "actor": f.admin(w)])
    try idp.addSP(metadata: try TestBrowser(publicURL: "https://app.example.test", webSocket: f.process.runDir + "/web.sock", appRedirectPrefix: "-")
      .request("GET", s["sp"]!["metadataUrl"]!.stringValue!).body)
    #expect(signedOut(janeLogin.cookie), "member.sessions_revoked ends Jane's session")
    #expect(signedOut(ownerCookie))

    // Signing in through the IdP (sso.authorize → IdP → sso.token with PKCE).
    let janeSSO = try ssoSignIn("jane@acme.test", idp: idp)
    #expect(janeSSO.status == 200 && janeSSO.json["via"] == "sso", "\(janeSSO.json)")
    #expect(try request("GET", "/me", cookie: janeSSO.cookie).json["user"]?["email"] == "jane@acme.test")
    let ownerSSO = try ssoSignIn("owner@acme.test", idp: idp)
    let adminCookie = ownerSSO.cookie
    // With SSO enforced, a password sign-in is sent to the IdP.
    _ = try f.rpc.call("sso.update", ["workspaceId": .string(w.id), "enforceSso": true, "actor": f.admin(w)])
    let enforced = try request("POST", "/login", ["email": "jane@acme.test"])
    #expect(enforced.json["sso"]?.stringValue?.contains("/login/sso?email=") == true, "\(enforced.json)")

    // The IdP provisions through the app's own /scim/v2 (proxied to Roster).
    let token = try f.rpc.call("directory.enable", ["workspaceId": .string(w.id), "actor": f.admin(w)])["bearerToken"]!.stringValue!
    let created = try request(
      "POST", "/scim/v2/Users",
      [
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "sam@acme.test", "active": true,
        "emails": [["value": "sam@acme.test", "primary": true]], "name": ["givenName": "Sam", "familyName": "Lee"],
      ], headers: [("Authorization", "Bearer " + token), ("Content-Type", "application/scim+json"), ("X-Request-Id", "idp-1")])
    #expect(created.status == 201, "\(created.json)")
    #expect(created.header("X-Request-Id") == "idp-1")
    let samId = try #require(created.json["id"]?.stringValue)
    let sam = try ssoSignIn("sam@acme.test", idp: idp)
    #expect(try request("GET", "/me", cookie: sam.cookie).status == 200)
    // Unassigned in the IdP: deactivated, and the app's session ends from the feed.
    let off = try request(
      "PATCH", "/scim/v2/Users/\(samId)",
      ["schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [["op": "replace", "value": ["active": false]]]],
      headers: [("Authorization", "Bearer " + token), ("Content-Type", "application/scim+json")])
    #expect(off.status == 200)
    #expect(signedOut(sam.cookie), "member.deactivated ends Sam's session")

    // An admin removes Jane in the app: a job; her session ends.
    let removed = try request("POST", "/remove", ["workspaceId": .string(w.id), "memberId": .string(janeId)], cookie: adminCookie)
    #expect(removed.status == 202, "\(removed.json)")
    #expect(removed.json["kind"] == "deprovision")
    #expect(signedOut(janeSSO.cookie))
    #expect(try request("GET", "/me", cookie: adminCookie).status == 200, "the admin's own session stays")
    // The subscriber keeps its place across a restart: what happens while
    // the app is down is handled once it is back, and nothing twice.
    app.stop()
    let late = try f.rpc.call("member.add", ["workspaceId": .string(w.id), "email": "late@acme.test", "actor": f.admin(w)])["memberId"]!.stringValue!
    app = try Self.startApp(port: appPort, runDir: f.process.runDir, stateDir: stateDir, log: appLog)
    #expect(TestProcess.waitUntil(timeout: 10) { self.handled().contains { $0.member == late && $0.type == "member.created" } })
    let cursors = handled().map(\.cursor)
    #expect(Set(cursors).count == cursors.count, "no event handled twice")
    f.waitForFeed()
    let listed = try f.rpc.call("events.list", ["after": .string(cursors.first!), "limit": 1000])["events"]?.arrayValue?.compactMap { $0["cursor"]?.stringValue } ?? []
    #expect(Array(cursors.dropFirst()) == listed, "nothing missed, in feed order")
  }
}
