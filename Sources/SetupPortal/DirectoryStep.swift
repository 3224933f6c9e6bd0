import Foundation
import HTTP1
import JSON
import JSONRPC
import WebPages

/// Directory sync (G2): the SCIM base URL and the bearer token — shown once,
/// in the answer to the form that made it — with rotate.
extension SetupPortal {
  func directoryPage(_ link: SetupLink, idp chosen: IdP?, form: PageKit.FormState, newToken: String?) throws -> Content {
    let directory: JSONValue?
    switch call(link, "directory.get") {
    case .success(let d): directory = d
    case .failure(let e) where e.reason == "directory_not_found": directory = nil
    case .failure(let e): throw e
    }
    let settings = try call(link, "sso.get").get()
    let connection = settings["connection"] ?? .null
    let idp =
      chosen
      ?? IdP.guess(
        protocolName: connection["protocol"]?.stringValue, url: connection["ssoUrl"]?.stringValue ?? connection["issuer"]?.stringValue)
    let scimURL = directory?["scimUrl"]?.stringValue ?? (ctx.config.publicURL + "/scim/v2")
    let on = directory?["enabled"] == true

    let secret: HTML =
      newToken.map {
        """
        <section class="secret" aria-labelledby="token-heading"><h2 id="token-heading">Your bearer token</h2>
        <p>Copy it now and paste it into \(idp.inSentence). <strong>It is shown only this once</strong>: Roster keeps only a fingerprint of it. If it is lost, rotate it below.</p>
        \(PageKit.copyValue("scim-token", label: "Bearer token", value: $0))</section>
        """
      } ?? .empty

    let state: HTML
    if on, let d = directory {
      state = """
        <dl class="facts"><dt>Status</dt><dd><span class="badge done">On</span></dd>
        <dt>People provisioned</dt><dd>\(d["userCount"]?.intValue ?? 0)</dd><dt>Groups pushed</dt><dd>\(d["groupCount"]?.intValue ?? 0)</dd>
        <dt>Token issued</dt><dd>\(PageKit.date(d["tokenRotatedAt"]?.stringValue))</dd></dl>
        """
    } else {
      state = """
        <p>Directory sync is off. Turn it on to get the token your identity provider uses to add, update and remove people in \(link.workspaceName).</p>
        <form method="post" action="\(link.path(.directory))">\(formKey(link))<input type="hidden" name="action" value="enable"><input type="hidden" name="idp" value="\(idp.rawValue)">
        \(PageKit.button("Turn on directory sync"))</form>
        """
    }
    let rotate: HTML =
      on
      ? """
        <h2 id="rotate-heading">Rotate the token</h2>
        <p>A new token replaces the current one at once: provisioning stops until you paste the new token into \(idp.inSentence).</p>
        <form method="post" action="\(link.path(.directory))" novalidate aria-labelledby="rotate-heading">\(formKey(link))<input type="hidden" name="action" value="rotate"><input type="hidden" name="idp" value="\(idp.rawValue)">
        \(PageKit.checkbox("confirm", label: "I understand that the current token stops working now", error: form.error("confirm")))
        \(PageKit.button("Rotate the token", kind: "danger"))</form>
        """
      : .empty

    return Content(
      title: "Directory sync",
      body: """
        <p class="lead">Your identity provider adds people to \(link.workspaceName), keeps their details current and removes them when they leave, over SCIM 2.0.</p>
        \(PageKit.errorSummary(form))\(secret)
        \(state)
        <h2 id="idp-heading">Your identity provider</h2>
        \(idpTabs(link, .directory, idp))
        <h2>Provisioning in \(idp.inSentence)</h2>
        \(idp.directoryInstructions(scimURL: scimURL))
        \(rotate)
        """)
  }

  func postDirectory(_ link: SetupLink, _ form: FormData) throws -> HTTPResponse {
    let idp = IdP(rawValue: form["idp"] ?? "")
    var s = PageKit.FormState()
    let method: String
    switch form["action"] {
    case "enable"?: method = "directory.enable"
    case "rotate"?:
      method = "directory.rotateToken"
      if form["confirm"] != "yes" { s.fail("confirm", "Confirm that the current token may stop working.") }
    default:
      method = ""
      s.fail(nil, "The form was not one this page sends.")
    }
    if s.isEmpty {
      switch call(link, method, acting: true) {
      case .success(let d):
        // The token is in this answer only (not a redirect): shown once, never stored.
        return render(link, .directory, try directoryPage(link, idp: idp, form: s, newToken: d["bearerToken"]?.stringValue))
      case .failure(let e):
        s.fail(nil, e.message)
      }
    }
    var c = try directoryPage(link, idp: idp, form: s, newToken: nil)
    c.status = 422
    return render(link, .directory, c)
  }
}
