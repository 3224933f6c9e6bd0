import Foundation
import HTTP1
import JSON
import JSONRPC
import SSO
import WebPages

/// The SSO step's test sign-in (G2): the real SP-initiated flow, returning
/// to the setup page instead of the app.
extension SetupPortal {
  var secureCookie: Bool { ctx.config.publicURL.lowercased().hasPrefix("https:") }

  /// GET /setup/{token}/sso/test: to the IdP, with a short-lived cookie that
  /// brings the browser back to this link's page afterwards.
  func startTest(_ link: SetupLink) throws -> HTTPResponse {
    let url: String
    do {
      url = try sso.startTest(workspaceId: link.workspaceId, setupLinkId: link.id, returnURL: ctx.config.publicURL + "/setup/return")
    } catch let e as RPCError where e.code == RPCError.Code.conflict || e.code == RPCError.Code.notFound {
      var c = try ssoPage(link, idp: nil, form: PageKit.FormState(errors: [(nil, e.message)]), query: [:])
      c.status = 409
      return render(link, .sso, c)
    }
    var r = redirect(url)
    r.headers.append(
      ("Set-Cookie", "\(Self.returnCookie)=\(link.token); Path=/setup/return; Max-Age=900; HttpOnly; SameSite=Lax\(secureCookie ? "; Secure" : "")"))
    return r
  }

  /// Called by the ACS or the OIDC callback when a test sign-in ends, either way.
  func testFinished(linkId: String, traceId: String) -> HTTPResponse {
    do {
      try ctx.pool.query("UPDATE setup_links SET last_test_trace = \(traceId) WHERE id = \(linkId)::uuid")
    } catch {
      ctx.logger.warning("setup test result not recorded", ["link": .string(linkId), "error": .string(String(describing: error))])
    }
    return redirect("/setup/return")
  }

  /// GET /setup/return: back to the link's SSO page, which shows the result.
  func testReturned(_ r: HTTPRequest) -> HTTPResponse {
    let clear = ("Set-Cookie", "\(Self.returnCookie)=; Path=/setup/return; Max-Age=0; HttpOnly; SameSite=Lax\(secureCookie ? "; Secure" : "")")
    if let token = r.cookies[Self.returnCookie], case .open(let link)? = try? SetupLink.lookup(ctx.pool, token: token) {
      var out = redirect(link.path(.sso) + "?done=tested#test-result")
      out.headers.append(clear)
      return out
    }
    var out = message(
      status: 200, title: "Your test sign-in has finished",
      text: "Go back to the browser tab with your setup page and reload it: the result is shown in the single sign-on step.")
    out.headers.append(clear)
    return out
  }

  /// The latest test sign-in of this link, for the SSO page.
  func testResultCard(_ link: SetupLink) throws -> HTML {
    guard let trace = link.lastTestTrace, let t = try sso.testResult(traceId: trace, workspaceId: link.workspaceId) else {
      return "<p>No test sign-in yet.</p>"
    }
    let when = PageKit.date(t.at)
    guard t.succeeded, let profile = t.profile else {
      let reason = t.reason ?? "refused"
      let (meaning, change) = TraceAdvice.advice(reason)
      return """
        <div class="notice bad" role="status">
        <p><strong>The test sign-in was refused</strong> (\(when)).</p>
        <p><strong>What happened:</strong> \(meaning)</p>
        <p><strong>What to change:</strong> \(change)</p>
        </div>
        <dl class="facts"><dt>Reason</dt><dd><code>\(reason)</code></dd>\
        \(t.detail.map { "<dt>Detail</dt><dd>\($0)</dd>" as HTML })\
        \(t.email.map { "<dt>Email</dt><dd>\($0)</dd>" as HTML })\
        <dt>Trace id</dt><dd><code>\(t.traceId)</code></dd></dl>
        """
    }
    let groups = (profile["groups"]?.arrayValue ?? []).compactMap(\.stringValue)
    let attributes = (profile["attributes"]?.objectValue ?? [:]).sorted { $0.key < $1.key }
    let attributeRows: [HTML] = attributes.map { k, v in
      let text = (v.arrayValue?.compactMap(\.stringValue) ?? [v.stringValue ?? JSONWriter.string(v)]).joined(separator: ", ")
      return "<dt><code>\(k)</code></dt><dd>\(text)</dd>"
    }
    var outcome: HTML = .empty
    if let d = t.decision {
      let mine = d["workspaces"]?.arrayValue?.first { $0["workspaceId"]?.stringValue == link.workspaceId }
      if let mine {
        let joined = mine["joined"]?.stringValue == "existing" ? "is a member" : "joined the workspace with this sign-in"
        outcome = "<p>\(profile["email"]?.stringValue ?? "") \(joined), with the role <strong>\(mine["role"]?.stringValue ?? "")</strong>.</p>"
      }
    }
    return """
      <div class="notice ok" role="status"><p><strong>The test sign-in worked</strong> (\(when)). Roster received this from your identity provider:</p></div>
      <dl class="facts">
      <dt>Email</dt><dd>\(profile["email"]?.stringValue ?? "")</dd>
      <dt>Name</dt><dd>\(profile["name"]?.stringValue ?? "")</dd>
      <dt>Given name</dt><dd>\(profile["givenName"]?.stringValue ?? "—")</dd>
      <dt>Family name</dt><dd>\(profile["familyName"]?.stringValue ?? "—")</dd>
      <dt>IdP user id</dt><dd><code>\(profile["idpUserId"]?.stringValue ?? "")</code></dd>
      <dt>Groups</dt><dd>\(groups.isEmpty ? "none sent" : groups.joined(separator: ", "))</dd>
      </dl>
      \(outcome)
      \(attributeRows.isEmpty ? .empty : "<details><summary>All \(attributeRows.count) attributes</summary><dl class=\"facts\">\(attributeRows)</dl></details>" as HTML)
      <p class="hint">Trace id <code>\(t.traceId)</code></p>
      """
  }
}
