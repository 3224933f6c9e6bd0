import Crypto
import Foundation
import JSON
import JSONRPC
import Postgres
import RosterTestSupport
import Testing

/// P1–P10 end to end: a real SAML IdP (pysaml2 + xmlsec1), the attack
/// corpus posted to the real ACS, and an OIDC provider that can misbehave;
/// a browser that follows redirects and posts the IdP's form; the app's side
/// through sso.authorize and sso.token.
@Suite(.serialized) final class SSOProtocolTests {
  let f: ProvisioningFixture
  let w: ProvisioningFixture.Workspace
  static let app = "https://app.example.test/sso/callback"
  static let secretKey = Data(Secrets.randomBytes(32)).base64EncodedString()

  init() throws {
    f = try ProvisioningFixture(environment: [
      "ROSTER_IDP_ALLOW_HTTP_LOOPBACK": "true", "ROSTER_SSO_REDIRECT_URIS": Self.app + ",https://app.example.test/other",
      "ROSTER_SECRET_KEY": Self.secretKey,
    ])
    w = try f.workspace("Acme", owner: "owner@acme.test")
    try f.verifyDomain(w, "acme.test")
  }

  var browser: TestBrowser {
    TestBrowser(publicURL: "https://app.example.test", webSocket: f.process.runDir + "/web.sock", appRedirectPrefix: Self.app)
  }

  struct PKCEPair {
    let verifier = Secrets.urlToken(bits: 256)
    var challenge: String { Base64URL.encode(SHA256.hash(Array(verifier.utf8))) }
  }

  func authorize(_ pkce: PKCEPair, state: String = "app-state-1", workspace: String? = nil, email: String? = nil) throws -> JSONValue {
    var p: [String: JSONValue] = [
      "redirectUri": .string(Self.app), "state": .string(state), "codeChallenge": .string(pkce.challenge), "codeChallengeMethod": "S256",
    ]
    if let email { p["email"] = .string(email) } else { p["workspaceId"] = .string(workspace ?? w.id) }
    return try f.rpc.call("sso.authorize", .object(p))
  }

  func traces() throws -> [JSONValue] { try f.rpc.call("sso.traces", ["workspaceId": .string(w.id)])["traces"]?.arrayValue ?? [] }

  /// Configures SAML from the IdP's metadata and registers Roster's SP metadata with it.
  @discardableResult
  func connectSAML(_ idp: TestSAMLIdP) throws -> JSONValue {
    let s = try f.rpc.call(
      "sso.configure", ["workspaceId": .string(w.id), "connection": ["protocol": "saml", "metadataXml": .string(try idp.metadata())], "actor": f.admin(w)])
    let metadata = try browser.request("GET", s["sp"]!["metadataUrl"]!.stringValue!)
    #expect(metadata.status == 200)
    try idp.addSP(metadata: metadata.body)
    return s
  }

  // MARK: SAML with a real IdP

  @Test func p1p8p9SPInitiatedSAMLSignInThroughARealIdP() throws {
    let idp = try TestSAMLIdP()
    let settings = try connectSAML(idp)
    let cid = try #require(settings["connectionId"]?.stringValue)
    #expect(settings["sp"]?["entityId"] == .string("https://app.example.test/sso/saml/\(cid)"))
    #expect(settings["sp"]?["acsUrl"] == .string("https://app.example.test/sso/saml/\(cid)/acs"))
    #expect(settings["certificates"]?.arrayValue?.first?["sha256"]?.stringValue?.count == 64)
    #expect(settings["connection"]?["idpEntityId"] == .string(idp.entityId))
    try idp.setUser(email: "jane@acme.test", given: "Jane", family: "Doe", groups: ["Engineering", "Admins"])
    let pkce = PKCEPair()
    let start = try authorize(pkce, email: "jane@acme.test")
    #expect(start["protocol"] == "saml")
    #expect(start["workspaceId"] == .string(w.id))
    let url = try #require(start["url"]?.stringValue)
    #expect(url.hasPrefix(idp.base + "/sso/redirect?SAMLRequest="))
    #expect(url.contains("RelayState="))
    let walk = try browser.walk(url)
    let code = try #require(walk.query["code"], "landed: \(walk.landed ?? "nowhere"), last: \(String(decoding: walk.last.body, as: UTF8.self).prefix(500))")
    #expect(walk.query["state"] == "app-state-1")
    #expect(walk.steps.contains { $0.method == "POST" && $0.url.hasSuffix("/acs") && $0.status == 303 })
    let token = try f.rpc.call("sso.token", ["code": .string(code), "codeVerifier": .string(pkce.verifier), "redirectUri": .string(Self.app)])
    #expect(token["profile"]?["email"] == "jane@acme.test")
    #expect(token["profile"]?["givenName"] == "Jane", "\(token["profile"]?["attributes"] ?? .null)")
    #expect(token["profile"]?["familyName"] == "Doe")
    #expect(token["profile"]?["groups"] == ["Engineering", "Admins"])
    #expect(token["protocol"] == "saml")
    #expect(token["initiatedBy"] == "app")
    #expect(token["workspaceId"] == .string(w.id))
    #expect(token["connectionId"] == .string(cid))
    #expect(token["decision"]?["allowed"] == true)
    #expect(token["decision"]?.workspace(w.id)?["joined"] == "jit", "S5: just-in-time through the connection")
    #expect(try f.rpc.call("sso.get", ["workspaceId": .string(w.id)])["tested"] == true, "P9 marks the connection tested")
    // P8: once only, and the second use is audited.
    #expect(try f.rpc.error("sso.token", ["code": .string(code), "codeVerifier": .string(pkce.verifier), "redirectUri": .string(Self.app)])?.reason == "code_used")
    let audit = try f.rpc.call("audit.list", ["workspaceId": .string(w.id), "limit": 1000])["entries"]?.arrayValue ?? []
    #expect(audit.contains { $0["action"] == "sso.sign_in" })
    #expect(audit.contains { $0["action"] == "sso.code_reused" })
    #expect(try traces().first?["outcome"] == "success")
  }

  /// The app's web server proxies /sso/ to Roster with the snippet shipped
  /// in deploy/nginx: metadata, the ACS post and the redirects all pass.
  @Test func p1SignInBehindNginxWithTheShippedSnippet() throws {
    let idp = try TestSAMLIdP()
    let nginx = try TestNginx(snippet: "roster-web.conf", socketPaths: ["/run/roster/web.sock": f.process.runDir + "/web.sock"])
    var viaNginx = browser
    viaNginx.proxy = ("127.0.0.1", nginx.port)
    let s = try f.rpc.call(
      "sso.configure", ["workspaceId": .string(w.id), "connection": ["protocol": "saml", "metadataXml": .string(try idp.metadata())], "actor": f.admin(w)])
    let metadata = try viaNginx.request("GET", s["sp"]!["metadataUrl"]!.stringValue!)
    #expect(metadata.status == 200)
    #expect(metadata.header("Content-Type")?.hasPrefix("application/samlmetadata+xml") == true)
    try idp.addSP(metadata: metadata.body)
    let pkce = PKCEPair()
    let walk = try viaNginx.walk(try authorize(pkce)["url"]!.stringValue!)
    let code = try #require(walk.query["code"])
    #expect(try f.rpc.call("sso.token", ["code": .string(code), "codeVerifier": .string(pkce.verifier), "redirectUri": .string(Self.app)])["decision"]?["allowed"] == true)
    let refused = try viaNginx.request("POST", s["sp"]!["acsUrl"]!.stringValue!, form: [("SAMLResponse", "AAAA")])
    #expect(refused.status == 400, "Roster's own error page passes through")
    #expect(String(decoding: refused.body, as: UTF8.self).contains("t-"))
  }

  @Test func p8CodesAreBoundToRedirectURIAndPKCE() throws {
    let idp = try TestSAMLIdP()
    try connectSAML(idp)
    func signIn() throws -> (String, PKCEPair) {
      let pkce = PKCEPair()
      let walk = try browser.walk(try authorize(pkce)["url"]!.stringValue!)
      return (try #require(walk.query["code"]), pkce)
    }
    var (code, pkce) = try signIn()
    #expect(try f.rpc.error("sso.token", ["code": .string(code), "codeVerifier": .string(pkce.verifier), "redirectUri": "https://app.example.test/other"])?.reason == "redirect_uri_mismatch")
    (code, pkce) = try signIn()
    #expect(try f.rpc.error("sso.token", ["code": .string(code), "codeVerifier": .string(PKCEPair().verifier), "redirectUri": .string(Self.app)])?.reason == "pkce_mismatch")
    (code, pkce) = try signIn()
    #expect(try f.rpc.error("sso.token", ["code": .string(code), "redirectUri": .string(Self.app)])?.reason == "missing_param")
    #expect(try f.rpc.error("sso.token", ["code": "nonsense", "codeVerifier": .string(pkce.verifier), "redirectUri": .string(Self.app)])?.reason == "invalid_code")
    // The code is stored hashed.
    let stored = try f.pool.query("SELECT code_hash FROM sso_codes").rows.compactMap { $0["code_hash"] }
    #expect(!stored.contains(code) && stored.contains(SHA256.hex(code)))
    // Only the configured redirect URIs, exactly.
    var p = ["redirectUri": "https://app.example.test/sso/callback/evil", "state": "s", "codeChallenge": .string(pkce.challenge), "codeChallengeMethod": "S256"] as [String: JSONValue]
    p["workspaceId"] = .string(w.id)
    #expect(try f.rpc.error("sso.authorize", .object(p))?.reason == "redirect_uri_not_allowed")
    #expect(try f.rpc.error("sso.authorize", ["redirectUri": .string(Self.app), "state": "s", "codeChallenge": .string(pkce.challenge), "codeChallengeMethod": "S256", "email": "x@nowhere.test"])?.reason == "no_sso_for_domain")
  }

  @Test func p5IdPInitiatedOnlyWhenAllowed() throws {
    let idp = try TestSAMLIdP()
    let settings = try connectSAML(idp)
    let entity = try #require(settings["sp"]?["entityId"]?.stringValue)
    let start = idp.base + "/idp-initiated?sp=" + (entity.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
    let refused = try browser.walk(start)
    #expect(refused.landed == nil)
    #expect(refused.last.status == 400)
    #expect(String(decoding: refused.last.body, as: UTF8.self).contains("t-"), "the browser sees a trace id")
    #expect(try traces().first?["reason"] == "idp_initiated_not_allowed")
    try f.rpc.call("sso.update", ["workspaceId": .string(w.id), "allowIdpInitiated": true, "actor": f.admin(w)])
    let walk = try browser.walk(start)
    let code = try #require(walk.query["code"])
    #expect(walk.query["state"] == nil, "no state on an IdP-initiated code")
    #expect(walk.landed?.hasPrefix(Self.app) == true, "the first allowed redirect URI, never RelayState")
    let token = try f.rpc.call("sso.token", ["code": .string(code), "redirectUri": .string(Self.app)])
    #expect(token["initiatedBy"] == "idp")
    #expect(token["decision"]?["allowed"] == true)
  }

  @Test func p6P9ARefusedDecisionIsAnErrorRedirectWithATrace() throws {
    let idp = try TestSAMLIdP()
    try connectSAML(idp)
    try idp.setUser(email: "contractor@elsewhere.test")
    let walk = try browser.walk(try authorize(PKCEPair())["url"]!.stringValue!)
    #expect(walk.query["error"] == "access_denied")
    #expect(walk.query["state"] == "app-state-1")
    #expect(walk.query["error_description"]?.contains("outside_domain") == true)
    let t = try #require(try traces().first)
    #expect(t["reason"] == "outside_domain")
    #expect(walk.query["error_description"]?.contains(t["traceId"]!.stringValue!) == true)
  }

  @Test func s1CertificateRotationKeepsTestedAndAcceptsBothKeys() throws {
    let idp = try TestSAMLIdP()
    try connectSAML(idp)
    let walk = try browser.walk(try authorize(PKCEPair())["url"]!.stringValue!)
    #expect(walk.query["code"] != nil)
    #expect(try f.rpc.call("sso.get", ["workspaceId": .string(w.id)])["tested"] == true)
    let next = try String(contentsOfFile: idp.keyDir + "/other.crt", encoding: .utf8)
    let rotated = try f.rpc.call(
      "sso.update", ["workspaceId": .string(w.id), "certificatesPem": [.string(idp.certificatePEM), .string(next)], "actor": f.admin(w)])
    #expect(rotated["tested"] == true, "a rotation does not reset tested")
    #expect(rotated["certificates"]?.arrayValue?.count == 2)
    #expect(try browser.walk(try authorize(PKCEPair())["url"]!.stringValue!).query["code"] != nil, "the current key still works")
    // Without the IdP's current certificate, its responses are refused.
    try f.rpc.call("sso.update", ["workspaceId": .string(w.id), "certificatesPem": [.string(next)], "actor": f.admin(w)])
    let refused = try browser.walk(try authorize(PKCEPair())["url"]!.stringValue!)
    #expect(refused.query["error"] == "access_denied")
    #expect(["certificate_unknown", "signature_invalid"].contains(try traces().first?["reason"]?.stringValue ?? ""))
  }

  // MARK: The attack corpus through the real ACS

  @Test func p2p3p4EveryAttackInTheCorpusIsRefusedAtTheACSWithItsReason() throws {
    let keys = try TestFiles.makeTempDirectory(prefix: "roster-corpus")
    let forge = TestFiles.repositoryRoot + "/Tests/Support/peers/saml_forge.py"
    try TestProcess.run([TestFiles.python, forge, "keys", keys])
    let idpEntity = "https://corpus-idp.example.test/metadata"
    let settings = try f.rpc.call(
      "sso.configure",
      [
        "workspaceId": .string(w.id),
        "connection": [
          "protocol": "saml", "idpEntityId": .string(idpEntity), "ssoUrl": "https://corpus-idp.example.test/sso",
          "certificatesPem": [.string(try String(contentsOfFile: keys + "/idp.crt", encoding: .utf8)), .string(try String(contentsOfFile: keys + "/ec.crt", encoding: .utf8))],
        ],
        "actor": f.admin(w),
      ])
    try f.rpc.call("sso.update", ["workspaceId": .string(w.id), "allowIdpInitiated": true, "actor": f.admin(w)])
    let sp = try #require(settings["sp"]?["entityId"]?.stringValue)
    let acs = try #require(settings["sp"]?["acsUrl"]?.stringValue)
    let config: JSONValue = [
      "idpEntityId": .string(idpEntity), "spEntityId": .string(sp), "acsUrl": .string(acs), "email": "alice@acme.test", "inResponseTo": .null,
      "now": .int(Int64(Date().timeIntervalSince1970)), "idpKey": .string(keys + "/idp.key"), "idpCert": .string(keys + "/idp.crt"),
      "ecKey": .string(keys + "/ec.key"), "ecCert": .string(keys + "/ec.crt"), "attackerKey": .string(keys + "/attacker.key"),
      "attackerCert": .string(keys + "/attacker.crt"),
    ]
    try Data(JSONWriter.bytes(config)).write(to: URL(fileURLWithPath: keys + "/config.json"))
    try TestProcess.run([TestFiles.python, forge, keys + "/config.json", keys + "/corpus"])
    let manifest = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: keys + "/corpus/manifest.json"))), maxDepth: 10)
    var checked = 0
    for c in manifest.arrayValue ?? [] {
      let name = c["name"]!.stringValue!
      var expected = c["reason"]!.stringValue!
      if expected.hasPrefix("ok:") { expected = "outside_domain" }  // comment injection: the full, signed address is used
      let xml = Array(try Data(contentsOf: URL(fileURLWithPath: c["file"]!.stringValue!)))
      let r = try browser.request("POST", acs, form: [("SAMLResponse", Base64.encode(xml))])
      let t = try #require(try traces().first)
      if expected == "ok" {
        #expect(r.status == 303 && r.header("Location")?.contains("code=") == true, "\(name) should be accepted: \(t["reason"] ?? "") \(t["detail"] ?? "")")
        // P4: the same assertion again is a replay.
        let again = try browser.request("POST", acs, form: [("SAMLResponse", Base64.encode(xml))])
        #expect(again.status == 400)
        #expect(try traces().first?["reason"] == "replayed", "\(name) replayed")
      } else {
        #expect(r.status == 400 && r.header("Location") == nil, "\(name): status \(r.status)")
        #expect(t["outcome"] == "refused")
        #expect(t["reason"]?.stringValue == expected, "\(name): \(t["detail"] ?? "")")
        let page = String(decoding: r.body, as: UTF8.self)
        #expect(page.contains(t["traceId"]!.stringValue!), "\(name): the page carries the trace id")
        #expect(!page.contains("Assertion") && !page.contains("alice@"), "\(name): never the assertion")
      }
      checked += 1
    }
    #expect(checked >= 40)
    // Workspace B's ACS refuses A's assertion (another connection, another audience).
    let b = try f.workspace("Beta", owner: "owner@beta.test")
    try f.verifyDomain(b, "beta.test")
    let bs = try f.rpc.call(
      "sso.configure",
      ["workspaceId": .string(b.id), "connection": ["protocol": "saml", "idpEntityId": .string(idpEntity), "ssoUrl": "https://corpus-idp.example.test/sso",
                                                   "certificatePem": .string(try String(contentsOfFile: keys + "/idp.crt", encoding: .utf8))], "actor": f.admin(b)])
    try f.rpc.call("sso.update", ["workspaceId": .string(b.id), "allowIdpInitiated": true, "actor": f.admin(b)])
    let aCase = (manifest.arrayValue ?? []).first { $0["name"] == "ok_assertion_signed" }!
    let xml = Array(try Data(contentsOf: URL(fileURLWithPath: aCase["file"]!.stringValue!)))
    let cross = try browser.request("POST", bs["sp"]!["acsUrl"]!.stringValue!, form: [("SAMLResponse", Base64.encode(xml))])
    #expect(cross.status == 400)
    let bt = try f.rpc.call("sso.traces", ["workspaceId": .string(b.id)])["traces"]?.arrayValue?.first
    #expect(["destination_mismatch", "audience_mismatch", "recipient_mismatch"].contains(bt?["reason"]?.stringValue ?? ""))
  }

  @Test func p10HostileInputOnSSOPathsIsA4xxWithATraceId() throws {
    let idp = try TestSAMLIdP()
    let settings = try connectSAML(idp)
    let acs = try #require(settings["sp"]?["acsUrl"]?.stringValue)
    let cases: [(String, String, [(String, String)])] = [
      ("POST", acs, []), ("POST", acs, [("SAMLResponse", "!!!not base64!!!")]), ("POST", acs, [("SAMLResponse", Base64.encode(Array("<x/>".utf8)))]),
      ("POST", acs, [("SAMLResponse", String(repeating: "A", count: 600_000))]), ("GET", acs, []),
      ("POST", "https://app.example.test/sso/saml/not-a-uuid/acs", [("SAMLResponse", "AAAA")]),
      ("POST", "https://app.example.test/sso/saml/0190c9a4-0000-7000-8000-000000000000/acs", [("SAMLResponse", "AAAA")]),
      ("GET", "https://app.example.test/sso/oidc/callback", []), ("GET", "https://app.example.test/sso/oidc/callback?state=forged&code=x", []),
      ("GET", "https://app.example.test/sso/nothing", []),
    ]
    for (method, url, form) in cases {
      let r = try browser.request(method, url, form: form)
      #expect((400..<500).contains(r.status), "\(method) \(url.suffix(40)): \(r.status)")
      #expect(String(decoding: r.body, as: UTF8.self).contains("t-"), "\(method) \(url.suffix(40)): trace id")
      #expect(r.header("X-Frame-Options") == "DENY")
      #expect(r.header("Content-Security-Policy")?.contains("frame-ancestors 'none'") == true)
    }
    #expect(try f.rpc.call("system.health")["status"] == "ok")
  }

  // MARK: OIDC

  @discardableResult
  func connectOIDC(_ op: TestOIDCProvider, secret: String? = "s3cret") throws -> JSONValue {
    try op.control(["client": ["id": "roster-client", "secret": secret.map { .string($0) } ?? .null], "mode": "ok"])
    var connection: [String: JSONValue] = ["protocol": "oidc", "issuer": .string(op.issuer), "clientId": "roster-client"]
    if let secret { connection["clientSecret"] = .string(secret) }
    return try f.rpc.call("sso.configure", ["workspaceId": .string(w.id), "connection": .object(connection), "actor": f.admin(w)])
  }

  @Test func p7OIDCSignInWithPKCEStateNonceAndAnEncryptedSecret() throws {
    let op = try TestOIDCProvider()
    let s = try connectOIDC(op)
    #expect(s["redirectUri"] == "https://app.example.test/sso/oidc/callback")
    #expect(s["connection"]?["clientSecret"] == nil, "never returned")
    #expect(s["connection"]?["hasClientSecret"] == true)
    let raw = try f.pool.query("SELECT sso_client_secret::text AS s, sso_connection::text AS c FROM workspaces WHERE id = \(w.id)::uuid").first
    #expect(raw?["s"]?.contains("s3cret") == false && raw?["c"]?.contains("s3cret") == false, "encrypted at rest")
    for signing in ["RS256", "PS256", "ES256"] {
      try op.control(["signing": .string(signing), "mode": "ok"])
      let pkce = PKCEPair()
      let start = try authorize(pkce, state: "st-\(signing)")
      #expect(start["protocol"] == "oidc")
      let url = try #require(start["url"]?.stringValue)
      #expect(url.contains("code_challenge_method=S256") && url.contains("nonce=") && url.contains("state="))
      let walk = try browser.walk(url)
      let code = try #require(walk.query["code"], "\(signing): \(walk.landed ?? String(decoding: walk.last.body, as: UTF8.self))")
      #expect(walk.query["state"] == .some("st-\(signing)"))
      let token = try f.rpc.call("sso.token", ["code": .string(code), "codeVerifier": .string(pkce.verifier), "redirectUri": .string(Self.app)])
      #expect(token["profile"]?["email"] == "alice@acme.test", "\(signing)")
      #expect(token["profile"]?["idpUserId"] == "00u1")
      #expect(token["protocol"] == "oidc")
      #expect(token["decision"]?["allowed"] == true)
    }
    // The callback cannot be replayed (state is single-use).
    let walk = try browser.walk(try authorize(PKCEPair())["url"]!.stringValue!)
    #expect(walk.query["code"] != nil)
    let log = try f.pool.query("SELECT count(*) AS n FROM sso_requests WHERE protocol = 'oidc' AND consumed_at IS NULL").first?["n"]
    #expect(log == "0")
  }

  @Test(arguments: [
    ("alg_none", "algorithm_refused"), ("hs256_public_key", "algorithm_refused"), ("unknown_kid", "kid_unknown"), ("wrong_iss", "issuer_mismatch"),
    ("wrong_aud", "audience_mismatch"), ("wrong_azp", "azp_mismatch"), ("wrong_nonce", "nonce_mismatch"), ("expired", "expired"),
    ("future_iat", "not_yet_valid"), ("no_email", "no_email"), ("email_unverified", "email_unverified"), ("bad_signature", "signature_invalid"),
  ])
  func p7AMisbehavingProviderIsRefusedWithItsReason(_ mode: String, _ reason: String) throws {
    let op = try TestOIDCProvider()
    try connectOIDC(op)
    try op.control(["mode": .string(mode)])
    let walk = try browser.walk(try authorize(PKCEPair())["url"]!.stringValue!)
    #expect(walk.query["error"] == "access_denied", "\(mode)")
    let detail = try traces().first?["detail"] ?? .null
    #expect(walk.query["error_description"]?.contains(reason) == true, "\(mode): \(walk.query["error_description"] ?? "") \(detail)")
    #expect(try traces().first?["reason"]?.stringValue == reason)
  }

  /// Entra's multi-tenant issuer: discovery names "…/{tenantid}/v2.0" and
  /// each token carries its tenant's own issuer and `tid`.
  @Test func p7EntraTenantIssuerTemplate() throws {
    let op = try TestOIDCProvider()
    let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    try op.control(["client": ["id": "roster-client", "secret": .null], "mode": "ok", "tenant": .string(tid)])
    let s = try f.rpc.call(
      "sso.configure",
      ["workspaceId": .string(w.id), "connection": ["protocol": "oidc", "issuer": .string(op.issuer + "/common/v2.0"), "clientId": "roster-client"], "actor": f.admin(w)])
    #expect(s["connection"]?["discovery"]?["issuer"] == .string(op.issuer + "/{tenantid}/v2.0"))
    let pkce = PKCEPair()
    let code = try #require(try browser.walk(try authorize(pkce)["url"]!.stringValue!).query["code"])
    let token = try f.rpc.call("sso.token", ["code": .string(code), "codeVerifier": .string(pkce.verifier), "redirectUri": .string(Self.app)])
    #expect(token["profile"]?["attributes"]?["tid"] == .string(tid))
    // A token whose tid is not a tenant id cannot fill the template.
    try op.control(["tenant": "not-a-guid"])
    let refused = try browser.walk(try authorize(PKCEPair())["url"]!.stringValue!)
    #expect(refused.query["error"] == "access_denied")
    #expect(try traces().first?["reason"] == "issuer_mismatch")
  }

  @Test func p7ACallbackReplayAndAForgedStateAreRefused() throws {
    let op = try TestOIDCProvider()
    try connectOIDC(op, secret: nil)
    let url = try authorize(PKCEPair())["url"]!.stringValue!
    // Stop at the callback to replay it.
    let toIdP = try browser.request("GET", url)
    let callback = try #require(toIdP.header("Location"))
    let first = try browser.request("GET", callback)
    #expect(first.status == 303 && first.header("Location")?.contains("code=") == true)
    let second = try browser.request("GET", callback)
    #expect(second.status == 400)
    #expect(try traces().first?["reason"] == "replayed")
    // An unreachable issuer at configure time.
    let e = try f.rpc.error(
      "sso.configure", ["workspaceId": .string(w.id), "connection": ["protocol": "oidc", "issuer": "http://127.0.0.1:9/", "clientId": "c"], "actor": f.admin(w)])
    #expect(e?.reason == "idp_unreachable")
  }
}
