import Crypto
import Foundation
import JSON
import Postgres
import RosterTestSupport
@testable import SetupPortal
import Testing

/// The guided setup over HTTP (G1–G3): links, their scope, expiry and
/// revocation, cross-site refusals, errors next to fields, the SCIM token
/// shown once. The browser walk is in SetupBrowserTests.
@Suite(.serialized) final class SetupPortalTests {
  let s: SetupFixture
  var f: ProvisioningFixture { s.f }

  init() throws { s = try SetupFixture() }

  func audit(_ w: ProvisioningFixture.Workspace) throws -> [JSONValue] {
    try f.rpc.call("audit.list", ["workspaceId": .string(w.id), "limit": 1000])["entries"]?.arrayValue ?? []
  }

  /// Turns Directory Sync on and pushes a group with one member over SCIM (as Okta would).
  func pushGroup(_ w: ProvisioningFixture.Workspace, _ name: String, member email: String, token: String? = nil) throws -> (group: String, token: String) {
    let bearer = try token ?? f.rpc.call("directory.enable", ["workspaceId": .string(w.id), "actor": f.admin(w)])["bearerToken"]!.stringValue!
    let user = try f.rpc.call(
      "scim.request",
      [
        "httpMethod": "POST", "path": "/scim/v2/Users", "authorization": .string("Bearer " + bearer),
        "body": [
          "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": .string(email), "active": true,
          "emails": [["value": .string(email), "primary": true]], "name": ["givenName": "Pat", "familyName": "Doe"],
        ],
      ])
    #expect(user["status"] == 201, "\(user)")
    let group = try f.rpc.call(
      "scim.request",
      [
        "httpMethod": "POST", "path": "/scim/v2/Groups", "authorization": .string("Bearer " + bearer),
        "body": [
          "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": .string(name),
          "members": [["value": user["body"]!["id"]!]],
        ],
      ])
    #expect(group["status"] == 201, "\(group)")
    return (group["body"]!["id"]!.stringValue!, bearer)
  }

  @Test func g1ALinkIsAHashedExpiringCredentialForOneWorkspace() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let r = try f.rpc.call("setup.createLink", ["workspaceId": .string(w.id), "actor": f.admin(w)])
    let url = try #require(r["url"]?.stringValue)
    #expect(url.hasPrefix(s.publicURL + "/setup/"))
    let token = String(url.split(separator: "/").last!)
    #expect(token.count == 43, "256 random bits, base64url")
    #expect(r["steps"] == ["domains", "sso", "directory", "roles"])
    let row = try #require(try f.pool.query("SELECT token_hash, expires_at - now() AS ttl, created_by FROM setup_links").first)
    #expect(row["token_hash"] == SHA256.hex(token), "only the hash is stored")
    #expect(try f.pool.query("SELECT 1 FROM setup_links WHERE row_to_json(setup_links)::text LIKE '%' || \(token) || '%'").count == 0)
    #expect(row["ttl"]?.hasPrefix("23:59") == true, "24 hours by default: \(row["ttl"] ?? "")")
    #expect(try audit(w).contains { $0["action"] == "setup.create_link" && $0["actor"] == f.admin(w) })
    // At most 7 days; a named subset of steps; Enterprise only.
    #expect(try f.rpc.error("setup.createLink", ["workspaceId": .string(w.id), "ttlHours": 169, "actor": f.admin(w)])?.code == -32602)
    #expect(try f.rpc.error("setup.createLink", ["workspaceId": .string(w.id), "steps": [], "actor": f.admin(w)])?.code == -32602)
    #expect(try f.rpc.error("setup.createLink", ["workspaceId": .string(w.id), "steps": ["billing"], "actor": f.admin(w)])?.code == -32602)
    let week = try f.rpc.call("setup.createLink", ["workspaceId": .string(w.id), "ttlHours": 168, "steps": ["roles", "sso"], "actor": f.ops])
    #expect(week["steps"] == ["sso", "roles"])
    let starter = try f.workspace("Small", plan: "starter", owner: "o@small.test")
    #expect(try f.rpc.error("setup.createLink", ["workspaceId": .string(starter.id), "actor": f.admin(starter)])?.reason == "plan_required")
    // A socket client cannot act as a link, nor mint links with one.
    let linkId = try #require(r["linkId"])
    #expect(try f.rpc.error("setup.createLink", ["workspaceId": .string(w.id), "actor": ["setupLink": linkId]])?.reason == "not_permitted")
    #expect(
      try f.rpc.error("domain.add", ["workspaceId": .string(w.id), "domain": "acme.test", "method": "dns", "actor": ["setupLink": linkId]])?.reason
        == "not_permitted")
    let links = try f.rpc.call("setup.listLinks", ["workspaceId": .string(w.id)])["links"]?.arrayValue ?? []
    #expect(links.count == 2)
    #expect(links.allSatisfy { $0["state"] == "active" && $0["url"] == nil })
    // Kept 90 days after they stop working, then removed.
    try f.pool.query("UPDATE setup_links SET expires_at = now() - interval '91 days' WHERE id = \(linkId.stringValue!)::uuid")
    #expect(try SetupLink.removeStale(f.pool) == 1)
    #expect(try f.rpc.call("setup.listLinks", ["workspaceId": .string(w.id)])["links"]?.arrayValue?.count == 1)
  }

  @Test func g1ExpiredRevokedAndUnknownLinksStopAtOnce() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let link = try s.link(w)
    #expect(try s.http("GET", link.path).status == 200)
    try f.pool.query("UPDATE setup_links SET expires_at = now() - interval '1 second' WHERE id = \(link.id)::uuid")
    let expired = try s.http("GET", link.path + "/domains")
    #expect(expired.status == 410)
    #expect(SetupFixture.text(expired).contains("expired"))
    let other = try s.link(w)
    let key = try s.formKey(other)
    #expect(try s.http("GET", other.path + "/sso").status == 200)
    let revoked = try f.rpc.call("setup.revokeLinks", ["workspaceId": .string(w.id), "actor": f.admin(w)])
    #expect(revoked["revoked"] == 1, "the expired one was not active")
    let gone = try s.http("POST", other.path + "/domains", form: [("form_key", key), ("action", "add"), ("domain", "acme.test"), ("method", "dns")])
    #expect(gone.status == 410)
    #expect(SetupFixture.text(gone).contains("withdrawn"))
    #expect(try f.rpc.call("domain.list", ["workspaceId": .string(w.id)])["domains"] == [], "nothing done through a revoked link")
    #expect(try audit(w).contains { $0["action"] == "setup.revoke_links" })
    #expect(try s.http("GET", "/setup/" + String(repeating: "A", count: 43)).status == 404)
    #expect(try s.http("GET", "/setup/not-a-token/domains").status == 404)
    let odd = try s.http("GET", "/setup/%00%ff")
    #expect(odd.status == 400, "a path that is not UTF-8 is refused before any lookup: \(odd.status)")
  }

  @Test func g1TheLinkOpensOnlyItsStepsOfItsWorkspace() throws {
    let a = try f.workspace("Acme", owner: "owner@acme.test")
    let b = try f.workspace("Beta", owner: "owner@beta.test")
    try f.verifyDomain(a, "acme.test")
    try f.verifyDomain(b, "beta.test")
    let onlyDomains = try s.link(a, steps: ["domains"])
    #expect(try s.http("GET", onlyDomains.path + "/domains").status == 200)
    #expect(try s.http("GET", onlyDomains.path + "/sso").status == 403)
    #expect(try s.http("GET", onlyDomains.path + "/sso/test").status == 403)
    let key = try s.formKey(onlyDomains)
    #expect(try s.http("POST", onlyDomains.path + "/directory", form: [("form_key", key), ("action", "enable")]).status == 403)
    #expect(try f.pool.query("SELECT 1 FROM directories").count == 0)
    let page = SetupFixture.text(try s.http("GET", onlyDomains.path))
    #expect(page.contains(onlyDomains.path + "/domains"))
    #expect(!page.contains(onlyDomains.path + "/sso"), "steps outside the link are not offered")

    // Another workspace's ids in a form are refused, and nothing changes.
    let pendingB = try f.rpc.call("domain.add", ["workspaceId": .string(b.id), "domain": "beta-two.test", "method": "dns", "actor": f.admin(b)])
    let link = try s.link(a)
    let akey = try s.formKey(link)
    let check = try s.http("POST", link.path + "/domains", form: [("form_key", akey), ("action", "check"), ("domainId", pendingB["domainId"]!.stringValue!)])
    #expect(check.status == 404)
    #expect(SetupFixture.text(check).contains("not part of this workspace"))
    #expect(try f.pool.query("SELECT check_count FROM domains WHERE id = \(pendingB["domainId"]!.stringValue!)::uuid").first?["check_count"] == "0")
    let (groupA, _) = try pushGroup(a, "Admins", member: "pat@acme.test")
    let (groupB, _) = try pushGroup(b, "Admins", member: "pat@beta.test")
    let roles = try s.http(
      "POST", link.path + "/roles",
      form: [
        ("form_key", akey), ("group", groupA), ("role-\(groupA)", "admin"), ("priority-\(groupA)", "1"), ("group", groupB),
        ("role-\(groupB)", "admin"), ("priority-\(groupB)", "1"),
      ])
    #expect(roles.status == 422)
    #expect(SetupFixture.text(roles).contains("not in this workspace"))
    #expect(try f.pool.query("SELECT 1 FROM scim_groups WHERE role IS NOT NULL").count == 0, "nothing half-saved, in either workspace")
    // The same form for its own group is saved, audited as the link.
    let ok = try s.http("POST", link.path + "/roles", form: [("form_key", akey), ("group", groupA), ("role-\(groupA)", "admin"), ("priority-\(groupA)", "1")])
    #expect(ok.status == 303)
    #expect(try f.rpc.call("group.list", ["workspaceId": .string(a.id)])["groups"]?.arrayValue?.first?["role"] == "admin")
    #expect(try audit(a).contains { $0["action"] == "group.map_role" && $0["actor"] == ["setupLink": .string(link.id)] })
  }

  @Test func g3StrictHeadersAndCrossSiteFormsRefused() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let link = try s.link(w)
    let page = try s.http("GET", link.path + "/domains")
    #expect(page.status == 200)
    let csp = try #require(page.header("Content-Security-Policy"))
    #expect(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"))
    #expect(page.header("X-Frame-Options") == "DENY")
    #expect(page.header("Referrer-Policy") == "no-referrer")
    #expect(page.header("Cache-Control") == "no-store")
    let html = SetupFixture.text(page)
    #expect(!html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("url("), "no outside assets")
    #expect(html.contains("<link rel=\"stylesheet\" href=\"/setup/assets/setup.css\">"))
    // Markup is never escaped into text by mistake (an attribute written as a String).
    for step in ["", "/domains", "/sso", "/sso?idp=oidc", "/directory", "/roles"] {
      let text = SetupFixture.text(try s.http("GET", link.path + step))
      #expect(!text.contains("=&quot;") && !text.contains("&lt;/"), "escaped markup on \(step)")
      #expect(text.contains("aria-current=\"page\""), "the current step is marked on \(step)")
    }
    let css = try s.http("GET", "/setup/assets/setup.css")
    #expect(css.status == 200 && css.header("Content-Type")?.hasPrefix("text/css") == true)
    #expect(try s.http("GET", "/setup/assets/setup.js").header("Content-Type")?.hasPrefix("text/javascript") == true)
    #expect(try s.http("GET", "/setup/assets/other.js").status == 404)

    let key = try s.formKey(link)
    let add: [(String, String)] = [("action", "add"), ("domain", "acme.test"), ("method", "dns")]
    let noKey = try s.http("POST", link.path + "/domains", form: add)
    #expect(noKey.status == 403)
    let wrongKey = try s.http("POST", link.path + "/domains", form: [("form_key", "x")] + add)
    #expect(wrongKey.status == 403)
    let crossSite = try s.http("POST", link.path + "/domains", form: [("form_key", key)] + add, headers: [("Sec-Fetch-Site", "cross-site")])
    #expect(crossSite.status == 403)
    let otherOrigin = try s.http("POST", link.path + "/domains", form: [("form_key", key)] + add, headers: [("Origin", "https://evil.test")])
    #expect(otherOrigin.status == 403)
    #expect(SetupFixture.text(otherOrigin).contains("Nothing was changed"))
    let nullOrigin = try s.http("POST", link.path + "/domains", form: [("form_key", key)] + add, headers: [("Origin", "null")])
    #expect(nullOrigin.status == 403, "an opaque origin without Sec-Fetch-Site (a sandboxed frame, a file) is refused")
    #expect(try f.rpc.call("domain.list", ["workspaceId": .string(w.id)])["domains"] == [])
    let sameOrigin = try s.http(
      "POST", link.path + "/domains", form: [("form_key", key)] + add, headers: [("Origin", s.publicURL), ("Sec-Fetch-Site", "same-origin")])
    #expect(sameOrigin.status == 303)
    #expect(sameOrigin.header("Location")?.hasPrefix(link.path + "/domains?done=added") == true)
    #expect(try f.rpc.call("domain.list", ["workspaceId": .string(w.id)])["domains"]?.arrayValue?.count == 1)
    #expect(try audit(w).contains { $0["action"] == "domain.add" && $0["actor"] == ["setupLink": .string(link.id)] }, "G1: audited as the link")
    #expect(try s.http("PUT", link.path + "/domains").header("Allow") == "GET, HEAD, POST")
  }

  @Test func g3BadInputShowsAMessageNextToTheFieldAndSavesNothing() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let link = try s.link(w)
    let key = try s.formKey(link)
    let empty = try s.http("POST", link.path + "/domains", form: [("form_key", key), ("action", "add"), ("domain", " "), ("method", "dns")])
    #expect(empty.status == 422)
    let html = SetupFixture.text(empty)
    #expect(html.contains("id=\"domain-error\""))
    #expect(html.contains("aria-describedby=\"domain-hint domain-error\" aria-invalid=\"true\""))
    #expect(html.contains("<a href=\"#domain\">Enter the domain"), "the summary links to the field")
    let invalid = try s.http("POST", link.path + "/domains", form: [("form_key", key), ("action", "add"), ("domain", "not a domain"), ("method", "dns")])
    #expect(invalid.status == 422)
    #expect(SetupFixture.text(invalid).contains("id=\"domain-error\""))
    #expect(SetupFixture.text(invalid).contains("value=\"not a domain\""), "what was typed stays")
    let nul = try s.http("POST", link.path + "/domains", form: [("form_key", key), ("action", "add"), ("domain", "a\u{0}.test"), ("method", "dns")])
    #expect(nul.status == 400)
    let noEmail = try s.http("POST", link.path + "/domains", form: [("form_key", key), ("action", "add"), ("domain", "acme.test"), ("method", "email")])
    #expect(noEmail.status == 422)
    #expect(SetupFixture.text(noEmail).contains("id=\"email-error\""))
    let escaped = try s.http(
      "POST", link.path + "/domains", form: [("form_key", key), ("action", "add"), ("domain", "<script>alert(1)</script>"), ("method", "dns")])
    #expect(!SetupFixture.text(escaped).contains("<script>alert"), "what was typed is escaped")
    #expect(SetupFixture.text(escaped).contains("&lt;script&gt;"))
    #expect(try f.rpc.call("domain.list", ["workspaceId": .string(w.id)])["domains"] == [])
    // Bodies that are not forms: a clear 400, and the process stays up.
    for (type, body) in [
      ("multipart/form-data", "--x\r\n"), ("multipart/form-data; boundary=x", "--x\r\nno headers"), ("application/json", "{}"),
      ("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\u{0}c\r\n--x--\r\n"),
    ] {
      let r = try TestHTTP(host: "127.0.0.1", port: s.webPort).raw("POST", link.path + "/domains", headers: [("Content-Type", type)], body: Array(body.utf8))
      #expect(r.status == 400, "\(type)")
    }
    #expect(try s.http("GET", link.path + "/domains").status == 200, "still serving")

    // SSO: the metadata given two ways at once; a URL that does not answer.
    try f.verifyDomain(w, "acme.test")
    let both = try s.http(
      "POST", link.path + "/sso",
      form: [("form_key", key), ("protocol", "saml"), ("idp", "okta"), ("metadata_url", "https://idp.test/m"), ("metadata_xml", "<x/>"), ("default_role", "creator")])
    #expect(both.status == 422)
    #expect(SetupFixture.text(both).contains("one way only"))
    let unreachable = try s.http(
      "POST", link.path + "/sso",
      form: [("form_key", key), ("protocol", "saml"), ("idp", "okta"), ("metadata_url", "http://127.0.0.1:9/metadata"), ("default_role", "creator")])
    #expect(unreachable.status == 422)
    #expect(SetupFixture.text(unreachable).contains("id=\"metadata_url-error\""))
    let badXML = try s.http(
      "POST", link.path + "/sso", form: [("form_key", key), ("protocol", "saml"), ("idp", "saml"), ("metadata_xml", "<nope"), ("default_role", "creator")])
    #expect(badXML.status == 422)
    #expect(SetupFixture.text(badXML).contains("id=\"metadata_xml-error\""))
    let oidcEmpty = try s.http("POST", link.path + "/sso", form: [("form_key", key), ("protocol", "oidc"), ("idp", "oidc"), ("default_role", "creator")])
    #expect(SetupFixture.text(oidcEmpty).contains("id=\"issuer-error\"") && SetupFixture.text(oidcEmpty).contains("id=\"client_id-error\""))
    #expect(try f.rpc.call("sso.get", ["workspaceId": .string(w.id)])["configured"] == false)

    // Roles: a role without a priority.
    let (group, _) = try pushGroup(w, "Admins", member: "pat@acme.test")
    let roles = try s.http("POST", link.path + "/roles", form: [("form_key", key), ("group", group), ("role-\(group)", "admin"), ("priority-\(group)", "")])
    #expect(roles.status == 422)
    #expect(SetupFixture.text(roles).contains("id=\"priority-\(group)-error\""))
    #expect(try f.rpc.call("group.list", ["workspaceId": .string(w.id)])["groups"]?.arrayValue?.first?["role"] == .null)
  }

  @Test func g2TheSCIMTokenIsShownOnceAndRotatesOnlyWhenConfirmed() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    try f.verifyDomain(w, "acme.test")
    let link = try s.link(w, steps: ["directory"])
    let key = try s.formKey(link, step: "directory")
    let enabled = try s.http("POST", link.path + "/directory", form: [("form_key", key), ("action", "enable")])
    #expect(enabled.status == 200, "the token is in this answer, not behind a redirect")
    let html = SetupFixture.text(enabled)
    let token = try SetupFixture.copyField(html, "scim-token")
    #expect(token.count > 30)
    #expect(html.contains(s.publicURL + "/scim/v2"))
    #expect(try pushGroup(w, "Admins", member: "pat@acme.test", token: token).token == token, "the token works")
    #expect(!SetupFixture.text(try s.http("GET", link.path + "/directory")).contains(token), "shown once")
    let unconfirmed = try s.http("POST", link.path + "/directory", form: [("form_key", key), ("action", "rotate")])
    #expect(unconfirmed.status == 422)
    #expect(SetupFixture.text(unconfirmed).contains("id=\"confirm-error\""))
    let rotated = try s.http("POST", link.path + "/directory", form: [("form_key", key), ("action", "rotate"), ("confirm", "yes")])
    let r = SetupFixture.text(rotated)
    let next = try SetupFixture.copyField(r, "scim-token")
    #expect(next != token)
    let old = try f.rpc.call("scim.request", ["httpMethod": "GET", "path": "/scim/v2/Users", "authorization": .string("Bearer " + token)])
    #expect(old["status"] == 401, "the old token stops at once")
  }

  @Test func g2TestSignInReturnsToItsLinkOnlyWithTheCookie() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let link = try s.link(w)
    let bare = try s.http("GET", "/setup/return")
    #expect(bare.status == 200)
    #expect(SetupFixture.text(bare).contains("Go back to the browser tab"))
    let back = try s.http("GET", "/setup/return", headers: [("Cookie", "roster_setup_return=" + link.token)])
    #expect(back.status == 303)
    #expect(back.header("Location") == link.path + "/sso?done=tested#test-result")
    #expect(back.headers.contains { $0.0 == "Set-Cookie" && $0.1.contains("Max-Age=0") }, "the cookie is dropped")
    // Before a connection exists, the test sign-in explains what to do first.
    let early = try s.http("GET", link.path + "/sso/test")
    #expect(early.status == 409)
    #expect(SetupFixture.text(early).contains("Save the identity provider"))
    // SP values exist before the connection: the SP metadata can be given to the IdP first.
    let page = SetupFixture.text(try s.http("GET", link.path + "/sso?idp=saml"))
    let metadataURL = try SetupFixture.copyField(page, "sp-metadata")
    #expect(metadataURL.hasPrefix(s.publicURL + "/sso/saml/"))
    let md = try s.http("GET", String(metadataURL.dropFirst(s.publicURL.count)))
    #expect(md.status == 200)
    #expect(SetupFixture.text(md).contains("AssertionConsumerService"))
  }

  /// The app's nginx proxies /setup/ with the shipped snippet: pages,
  /// assets, a form post and an upload pass; the Origin check sees the
  /// browser's origin (ROSTER_PUBLIC_URL), not nginx's.
  @Test func g3SetupPagesBehindNginxWithTheShippedSnippet() throws {
    let plain = try ProvisioningFixture()
    let w = try plain.workspace(owner: "owner@acme.test")
    let url = try plain.rpc.call("setup.createLink", ["workspaceId": .string(w.id), "actor": plain.admin(w)])["url"]!.stringValue!
    let path = String(url.dropFirst("https://app.example.test".count))
    let nginx = try TestNginx(snippet: "roster-web.conf", socketPaths: ["/run/roster/web.sock": plain.process.runDir + "/web.sock"])
    func http() throws -> TestHTTP { try TestHTTP(host: "127.0.0.1", port: nginx.port) }
    let page = try http().raw("GET", path + "/domains", headers: [], body: [])
    #expect(page.status == 200)
    #expect(page.header("Content-Security-Policy")?.contains("default-src 'none'") == true)
    #expect(try http().raw("GET", "/setup/assets/setup.css", headers: [], body: []).status == 200)
    let html = SetupFixture.text(page)
    let key = String(html[try #require(html.range(of: "name=\"form_key\" value=\"")).upperBound...].prefix { $0 != "\"" })
    let form = Array("form_key=\(key)&action=add&domain=acme.test&method=dns".utf8)
    let added = try http().raw(
      "POST", path + "/domains",
      headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", "https://app.example.test"), ("Sec-Fetch-Site", "same-origin")],
      body: form)
    #expect(added.status == 303, "\(SetupFixture.text(added).prefix(400))")
    #expect(try plain.rpc.call("domain.list", ["workspaceId": .string(w.id)])["domains"]?.arrayValue?.count == 1)
    // A multipart upload (the SSO step's metadata file) passes through too.
    try plain.verifyDomain(w, "acme.test")
    let boundary = "----roster\(Int.random(in: 1000...9999))"
    let body = Array(
      """
      --\(boundary)\r\nContent-Disposition: form-data; name="form_key"\r\n\r\n\(key)\r\n\
      --\(boundary)\r\nContent-Disposition: form-data; name="protocol"\r\n\r\nsaml\r\n\
      --\(boundary)\r\nContent-Disposition: form-data; name="default_role"\r\n\r\nviewer\r\n\
      --\(boundary)\r\nContent-Disposition: form-data; name="metadata_file"; filename="idp.xml"\r\nContent-Type: text/xml\r\n\r\n\
      \(ProvisioningFixture.samlMetadata)\r\n--\(boundary)--\r\n
      """.utf8)
    let saved = try http().raw(
      "POST", path + "/sso", headers: [("Content-Type", "multipart/form-data; boundary=\(boundary)"), ("Sec-Fetch-Site", "same-origin")], body: body)
    #expect(saved.status == 303, "\(SetupFixture.text(saved).prefix(600))")
    let sso = try plain.rpc.call("sso.get", ["workspaceId": .string(w.id)])
    #expect(sso["configured"] == true)
    #expect(sso["defaultRole"] == "viewer")
  }

  /// docs/sso.md's table of trace reasons and the advice the setup page
  /// gives name the same reasons.
  @Test func p9TheSetupAdviceCoversTheDocumentedReasons() throws {
    let doc = try String(contentsOfFile: TestFiles.repositoryRoot + "/docs/sso.md", encoding: .utf8)
    let table = doc.components(separatedBy: "## Trace reasons")[1].components(separatedBy: "\n## ")[0]
    var documented = Set<String>()
    for line in table.split(separator: "\n") where line.hasPrefix("| `") {
      let first = line.split(separator: "|")[0]
      for part in first.split(separator: "`") where part.allSatisfy({ $0.isLowercase || $0 == "_" }) && !part.isEmpty { documented.insert(String(part)) }
    }
    let advised = Set(TraceAdvice.table.flatMap(\.reasons))
    #expect(documented.subtracting(advised).isEmpty, "documented without advice: \(documented.subtracting(advised).sorted())")
    #expect(advised.subtracting(documented).isEmpty, "advice for undocumented reasons: \(advised.subtracting(documented).sorted())")
  }
}
