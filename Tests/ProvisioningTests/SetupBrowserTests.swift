import Foundation
import JSON
import RosterTestSupport
import Testing

/// The guided setup in a real browser (headless Chromium over WebDriver),
/// against the real peers: the DNS server, a SAML IdP (pysaml2), an OIDC
/// provider. Each page is saved as a screenshot in the test output
/// (ROSTER_SCREENSHOT_DIR, default .build/test-output/setup); the ones in
/// docs/images/setup come from here.
@Suite(.serialized) final class SetupBrowserTests {
  let s: SetupFixture
  var f: ProvisioningFixture { s.f }
  let shots: String

  init() throws {
    s = try SetupFixture()
    shots = ProcessInfo.processInfo.environment["ROSTER_SCREENSHOT_DIR"] ?? (TestFiles.repositoryRoot + "/.build/test-output/setup")
  }

  typealias Key = TestBrowserSession

  /// Waits for a navigation (a form post, a redirect chain) to land.
  func land(_ b: TestBrowserSession, _ fragment: String) throws {
    guard b.waitForURL({ $0.contains(fragment) }) else {
      let problems = (try? b.find("#error-summary").text) ?? "no error summary"
      throw TestError("the browser is at \(b.url), not at …\(fragment): \(b.title): \(problems)")
    }
  }

  /// What a screen reader announces for the focused element.
  func focusedName(_ b: TestBrowserSession) throws -> String {
    try b.script(
      """
      var e = document.activeElement;
      if (e.labels && e.labels.length) { return e.labels[0].textContent.trim(); }
      return (e.getAttribute('aria-label') || e.textContent || '').trim();
      """
    ).stringValue ?? ""
  }

  func scim(_ token: String, _ method: String, _ path: String, _ body: JSONValue) throws -> JSONValue {
    let r = try f.rpc.call("scim.request", ["httpMethod": .string(method), "path": .string(path), "authorization": .string("Bearer " + token), "body": body])
    #expect((200..<300).contains(Int(r["status"]?.intValue ?? 0)), "\(r)")
    return r["body"] ?? .null
  }

  func scimUser(_ token: String, _ email: String) throws -> String {
    try scim(
      token, "POST", "/scim/v2/Users",
      [
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": .string(email), "active": true,
        "emails": [["value": .string(email), "primary": true]], "name": ["givenName": "Pat", "familyName": "Doe"],
      ])["id"]!.stringValue!
  }

  func scimGroup(_ token: String, _ name: String, _ members: [String]) throws -> String {
    try scim(
      token, "POST", "/scim/v2/Groups",
      ["schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": .string(name), "members": .array(members.map { ["value": .string($0)] })]
    )["id"]!.stringValue!
  }

  @Test func g2AnITAdminCompletesEveryStepInARealBrowser() throws {
    let w = try f.workspace("Acme", owner: "owner@acme.test")
    let link = try s.link(w)
    let idp = try TestSAMLIdP()
    let b = try TestBrowserSession(screenshotDir: shots)
    defer { b.close() }

    try b.open(link.url)
    #expect(b.title.contains("Set up sign-in for Acme"), "\(b.title)")
    #expect(b.exists("nav.steps a[aria-current=page]"))
    try b.screenshot("01-overview")

    // Domains, with the keyboard only (G3): skip link, steps, then the form.
    try b.findByText("Domains", in: "nav a").click()
    try land(b, "/domains")
    var path: [String] = []
    var reached = false
    for _ in 0..<30 {
      try b.press([Key.tab])
      let name = try focusedName(b)
      #expect(!name.isEmpty, "every stop on the way has a name a screen reader reads: \(path)")
      path.append(name)
      if b.active?.attribute("id") == "domain" {
        reached = true
        break
      }
    }
    #expect(reached, "Tab reaches the domain field: \(path)")
    #expect(path.first == "Skip to the page content")
    try b.typeKeys("acme.test")
    try b.press([Key.tab])  // the chosen radio button: DNS
    #expect(b.active?.attribute("value") == "dns")
    try b.press([Key.tab])  // the email field
    #expect(b.active?.attribute("id") == "email")
    try b.press([Key.tab])  // Add domain
    #expect(try focusedName(b) == "Add domain")
    try b.press([Key.enter])
    try land(b, "done=added")
    #expect(b.source.contains("Publish the TXT record below"))
    let recordName = try b.find("#main [id^=record-name-]").value
    let recordValue = try b.find("#main [id^=record-value-]").value
    #expect(recordName == "_roster-challenge.acme.test")
    #expect(recordValue.hasPrefix("roster-domain-verification="))
    let copy = try b.find("button.copy[data-copy^=record-value-]")
    try copy.click()
    // The page says so when the clipboard write resolves (a promise): the
    // button for 2 s, the live region for screen readers until the next copy.
    // On a loaded machine the button may already read "Copy" again.
    let live = try b.find("p[aria-live=polite]")
    _ = TestProcess.waitUntil(timeout: 5) { live.property("textContent").stringValue == "Copied to the clipboard" }
    #expect(live.property("textContent").stringValue == "Copied to the clipboard", "the copy button works under the page's CSP")
    try b.screenshot("02-domains-record")
    f.dns.setTXT(recordName, [recordValue])
    try b.findByText("Check now", in: "button").click()
    try land(b, "done=checked")
    #expect(b.source.contains("acme.test is verified"))
    try b.screenshot("03-domains-verified")
    // An empty domain: the message is next to the field, and the summary takes the focus.
    try b.findByText("Add domain", in: "button").click()
    #expect(b.waitFor("#error-summary"))
    #expect(b.active?.attribute("id") == "error-summary")
    #expect(try b.find("#domain").attribute("aria-invalid") == "true")
    #expect(try b.find("#domain-error").text.contains("Enter the domain"))
    try b.screenshot("04-domains-error")

    // SSO: the IdP's values, its metadata, the test sign-in through the real IdP.
    try b.findByText("Single sign-on", in: "nav a").click()
    try land(b, "/sso")
    #expect(try b.find(".tabs a[aria-current=true]").text == "Okta")
    let acs = try b.find("#sp-acs").value
    #expect(acs.hasPrefix(s.publicURL + "/sso/saml/") && acs.hasSuffix("/acs"))
    try b.screenshot("05-sso-okta")
    try b.findByText("Other SAML 2.0", in: ".tabs a").click()
    try land(b, "idp=saml")
    let spMetadata = try b.find("#sp-metadata").value
    // What the IT admin does in the IdP: give it Roster's SP metadata.
    try idp.addSP(metadata: try s.http("GET", String(spMetadata.dropFirst(s.publicURL.count))).body)
    try idp.setUser(email: "ida@acme.test", given: "Ida", family: "Admin", groups: ["Engineering"])
    try b.find("#metadata_xml").type("<EntityDescriptor")
    try b.findByText("Save and check", in: "button").click()
    #expect(b.waitFor("#metadata_xml-error"))
    #expect(try b.find("#metadata_xml-error").text.isEmpty == false)
    try b.screenshot("06-sso-error")
    try b.find("#metadata_xml").clear()
    let file = try TestFiles.makeTempDirectory(prefix: "roster-metadata") + "/idp-metadata.xml"
    try Data(try idp.metadata().utf8).write(to: URL(fileURLWithPath: file))
    try b.find("#metadata_file").type(file)
    try b.findByText("Save and check", in: "button").click()
    try land(b, "done=saved")
    #expect(b.source.contains("Saved connection (SAML 2.0)"))
    try b.findByText("Run a test sign-in", in: "a").click()
    try land(b, "done=tested")
    let result = try b.find("#test-result ~ .notice").text
    #expect(result.contains("The test sign-in worked"), "\(b.source.prefix(3000))")
    #expect(b.source.contains("ida@acme.test") && b.source.contains("Engineering"))
    try b.screenshot("07-sso-tested")
    #expect(try f.rpc.call("sso.get", ["workspaceId": .string(w.id)])["tested"] == true)

    // Directory: turn it on, the token once.
    try b.findByText("Directory sync", in: "nav a").click()
    try land(b, "/directory")
    try b.findByText("Turn on directory sync", in: "button").click()
    #expect(b.waitFor("#scim-token"))
    let token = try b.find("#scim-token").value
    #expect(token.count > 30)
    #expect(try b.find("#scim-url").value == s.publicURL + "/scim/v2")
    try b.screenshot("08-directory-token")
    let jane = try scimUser(token, "jane@acme.test")
    let sam = try scimUser(token, "sam@acme.test")
    let admins = try scimGroup(token, "Admins", [jane])
    let engineering = try scimGroup(token, "Engineering", [jane, sam])
    try b.open(link.url + "/directory")  // a fresh load of the same page
    #expect(b.exists("#scim-url") && !b.exists("#scim-token"))
    #expect(!b.source.contains(token), "shown once")

    // Roles: a missing priority is caught next to its field; then saved.
    try b.findByText("Roles from groups", in: "nav a").click()
    try land(b, "/roles")
    try b.find("#role-\(admins) option[value=admin]").click()
    try b.findByText("Save roles", in: "button").click()
    #expect(b.waitFor("#priority-\(admins)-error"))
    #expect(try b.find("#priority-\(admins)-error").text.contains("priority"))
    try b.screenshot("09-roles-error")
    try b.find("#priority-\(admins)").type("1")
    try b.find("#role-\(engineering) option[value=creator]").click()
    try b.find("#priority-\(engineering)").type("2")
    try b.findByText("Save roles", in: "button").click()
    try land(b, "done=saved")
    try b.screenshot("10-roles-saved")
    let members = try f.rpc.call("member.list", ["workspaceId": .string(w.id), "limit": 100])["members"]?.arrayValue ?? []
    #expect(members.first { $0["email"] == "jane@acme.test" }?["role"] == "admin")
    #expect(members.first { $0["email"] == "sam@acme.test" }?["role"] == "creator")

    // The summary: everything done.
    try b.findByText("Overview", in: "nav a").click()
    #expect(b.waitFor("main .summary-grid"))
    #expect(b.source.contains("Everything in this link is done"))
    #expect(try b.findAll("nav.steps .badge.done").count == 4)
    try b.screenshot("11-summary")
    let actions = (try f.rpc.call("audit.list", ["workspaceId": .string(w.id), "limit": 1000])["entries"]?.arrayValue ?? [])
      .filter { $0["actor"] == ["setupLink": .string(link.id)] }.compactMap { $0["action"]?.stringValue }
    #expect(Set(actions).isSuperset(of: ["domain.add", "sso.configure", "directory.enable", "group.map_role"]), "\(actions)")
  }

  @Test func g2OIDCTestSignInAndARefusalWithWhatToChange() throws {
    let w = try f.workspace("Orbit", owner: "owner@orbit.test")
    try f.verifyDomain(w, "orbit.test")
    let op = try TestOIDCProvider()
    try op.control([
      "client": ["id": "roster-client", "secret": "s3cret-value"], "mode": "ok",
      "user": ["sub": "u-7", "email": "ops@orbit.test", "email_verified": true, "given_name": "Otto", "family_name": "Ops", "name": "Otto Ops", "groups": ["SRE"]],
    ])
    let link = try s.link(w, steps: ["sso"])
    let b = try TestBrowserSession(screenshotDir: shots)
    defer { b.close() }
    try b.open(link.url + "/sso?idp=oidc")
    #expect(try b.find("#sp-redirect").value == s.publicURL + "/sso/oidc/callback")
    try b.find("#issuer").type(op.issuer)
    try b.find("#client_id").type("roster-client")
    try b.find("#client_secret").type("s3cret-value")
    try b.findByText("Save and check", in: "button").click()
    try land(b, "done=saved")
    #expect(!b.source.contains("s3cret-value"), "the secret is never shown again")
    try b.findByText("Run a test sign-in", in: "a").click()
    try land(b, "done=tested")
    #expect(b.source.contains("The test sign-in worked") && b.source.contains("ops@orbit.test") && b.source.contains("SRE"))
    try b.screenshot("12-sso-oidc-tested")
    // The IdP stops sending the email: the page says what happened and what to change.
    try op.control(["mode": "no_email"])
    try b.findByText("Run a test sign-in", in: "a").click()
    try land(b, "done=tested")
    #expect(b.source.contains("The test sign-in was refused"), "\(b.source.prefix(2000))")
    #expect(b.source.contains("no_email"))
    #expect(b.source.contains("What to change"))
    try b.screenshot("13-sso-refused")
  }

  @Test func g1g3ExpiryRevocationAndACrossSitePostInARealBrowser() throws {
    let w = try f.workspace("Acme", owner: "owner@acme.test")
    let link = try s.link(w)
    let b = try TestBrowserSession(screenshotDir: shots)
    defer { b.close() }

    // A page on another site posts to the setup form — with the right form
    // key, even: the browser says where it came from, and Roster refuses.
    try b.open(link.url + "/domains")
    let key = try b.find("input[name=form_key]").value
    let attack = try TestFiles.makeTempDirectory(prefix: "roster-attack") + "/attack.html"
    try Data(
      """
      <!doctype html><html><body><form id="f" method="post" action="\(s.publicURL)\(link.path)/domains">
      <input name="form_key" value="\(key)"><input name="action" value="add"><input name="domain" value="evil.test"><input name="method" value="dns">
      </form><script>document.getElementById('f').submit();</script></body></html>
      """.utf8
    ).write(to: URL(fileURLWithPath: attack))
    try b.open("file://" + attack)
    _ = b.waitForURL { $0.hasPrefix(self.s.publicURL) }
    #expect(b.title.contains("This change was refused"), "\(b.title)")
    try b.screenshot("14-cross-site-refused")
    #expect(try f.rpc.call("domain.list", ["workspaceId": .string(w.id)])["domains"] == [])

    // Framing is refused by the headers.
    let frame = try TestFiles.makeTempDirectory(prefix: "roster-frame") + "/frame.html"
    try Data("<!doctype html><iframe id=\"x\" src=\"\(link.url)\"></iframe>".utf8).write(to: URL(fileURLWithPath: frame))
    try b.open("file://" + frame)
    Thread.sleep(forTimeInterval: 1)
    let framed = try b.script("try { return document.getElementById('x').contentDocument === null || document.getElementById('x').contentDocument.title; } catch (e) { return 'blocked'; }")
    #expect(framed != .string("Set up sign-in for Acme · Acme · Roster setup"), "the page does not render in a frame: \(framed)")

    // Revoked: the next page says so.
    _ = try f.rpc.call("setup.revokeLinks", ["workspaceId": .string(w.id), "actor": f.admin(w)])
    try b.open(link.url)
    #expect(b.title.contains("withdrawn"))
    try b.screenshot("15-link-revoked")
    // Expired.
    let later = try s.link(w)
    try f.pool.query("UPDATE setup_links SET expires_at = now() - interval '1 minute' WHERE id = \(later.id)::uuid")
    try b.open(later.url)
    #expect(b.title.contains("expired"))
    try b.screenshot("16-link-expired")
  }
}
