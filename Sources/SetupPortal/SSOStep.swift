import Foundation
import HTTP1
import JSON
import JSONRPC
import SSO
import WebPages

/// Single sign-on (G2): the IdP's app with Roster's values, the IdP's
/// metadata (URL, paste or upload) or OIDC client, and the test sign-in.
extension SetupPortal {
  static let roleOptions: [(value: String, label: String)] = [("creator", "Creator"), ("viewer", "Viewer"), ("admin", "Admin")]

  func ssoPage(_ link: SetupLink, idp chosen: IdP?, form: PageKit.FormState, query: [String: String]) throws -> Content {
    let settings = try call(link, "sso.get").get()
    let connection = settings["connection"] ?? .null
    let configured = settings["configured"] == true
    let idp =
      chosen
      ?? IdP.guess(
        protocolName: connection["protocol"]?.stringValue, url: connection["ssoUrl"]?.stringValue ?? connection["issuer"]?.stringValue)
    let sp = sso.spValues(connectionId: try sso.connectionId(forWorkspace: link.workspaceId))
    let progress = try Progress.load(ctx.pool, workspaceId: link.workspaceId)

    var notices: [HTML] = []
    switch query["done"] {
    case "saved"?: notices.append(PageKit.notice("Saved. Now run a test sign-in to check that it works."))
    case "tested"?: notices.append(PageKit.notice("The test sign-in has finished; the result is below."))
    default: break
    }
    if progress.verifiedDomains == 0 {
      let domainsLink: HTML =
        link.steps.contains(.domains) ? " (<a href=\"\(link.path(.domains))\">Domains</a>)" : " (ask the person who sent this link)"
      notices.append(
        PageKit.notice(
          "Verify a domain first\(domainsLink): Roster can save the identity provider's details only then. You can already create the app in your identity provider with the values below.",
          kind: "warn"))
    }

    let current: HTML
    if configured {
      let certs: [HTML] = (settings["certificates"]?.arrayValue ?? []).map {
        "<dd>\($0["subject"]?.stringValue ?? "certificate"), valid until \(PageKit.date($0["notAfter"]?.stringValue))</dd>"
      }
      let details: HTML =
        connection["protocol"] == "oidc"
        ? "<dt>Issuer</dt><dd>\(connection["issuer"]?.stringValue ?? "")</dd><dt>Client ID</dt><dd>\(connection["clientId"]?.stringValue ?? "")</dd>"
        : "<dt>IdP entity ID</dt><dd>\(connection["idpEntityId"]?.stringValue ?? "")</dd><dt>Sign-in URL</dt><dd>\(connection["ssoUrl"]?.stringValue ?? "")</dd><dt>Signing certificates</dt>\(certs)"
      current = """
        <div class="card"><h3>Saved connection (\(connection["protocol"] == "oidc" ? "OpenID Connect" : "SAML 2.0"))</h3>
        <dl class="facts">\(details)<dt>Role for new people</dt><dd>\(settings["defaultRole"]?.stringValue ?? "")</dd></dl>
        <p class="hint">Saving again replaces it\(settings["tested"] == true ? "; a different identity provider must be tested again" : "").</p></div>
        """
    } else {
      current = .empty
    }

    let defaultRole = form["default_role"].isEmpty ? (settings["defaultRole"]?.stringValue ?? "creator") : form["default_role"]
    let roleField = PageKit.select(
      "default_role", label: "Role for people who sign in for the first time", options: Self.roleOptions, selected: defaultRole,
      error: form.error("default_role"), hint: "Groups can give other roles later (Roles from groups).")
    let detailsForm: HTML
    if idp.isSAML {
      detailsForm = """
        <form method="post" action="\(link.path(.sso))" enctype="multipart/form-data" novalidate aria-labelledby="details-heading">
        \(formKey(link))<input type="hidden" name="protocol" value="saml"><input type="hidden" name="idp" value="\(idp.rawValue)">
        <p class="hint">\(idp.metadataHint) Give it one of these three ways:</p>
        \(PageKit.input("metadata_url", label: "Metadata URL", type: "url", value: form["metadata_url"], error: form.error("metadata_url"), extra: " autocomplete=\"off\" spellcheck=\"false\""))
        <p class="or">or</p>
        \(PageKit.textarea("metadata_xml", label: "Metadata XML (paste)", value: form["metadata_xml"], error: form.error("metadata_xml")))
        <p class="or">or</p>
        \(PageKit.file("metadata_file", label: "Metadata file (upload)", accept: ".xml,application/xml,text/xml,application/samlmetadata+xml", error: form.error("metadata_file")))
        \(roleField)
        \(PageKit.button("Save and check"))
        </form>
        """
    } else {
      detailsForm = """
        <form method="post" action="\(link.path(.sso))" novalidate aria-labelledby="details-heading">
        \(formKey(link))<input type="hidden" name="protocol" value="oidc"><input type="hidden" name="idp" value="\(idp.rawValue)">
        \(PageKit.input("issuer", label: "Issuer URL", type: "url", value: form["issuer"], error: form.error("issuer"), hint: "For example https://example.okta.com — Roster reads its /.well-known/openid-configuration at once.", required: true, extra: " autocomplete=\"off\" spellcheck=\"false\""))
        \(PageKit.input("client_id", label: "Client ID", value: form["client_id"], error: form.error("client_id"), required: true, extra: " autocomplete=\"off\" spellcheck=\"false\""))
        \(PageKit.input("client_secret", label: "Client secret", type: "password", error: form.error("client_secret"), hint: "Stored encrypted and never shown again. Leave it empty only for a public client (PKCE without a secret).", extra: " autocomplete=\"new-password\""))
        \(roleField)
        \(PageKit.button("Save and check"))
        </form>
        """
    }

    let test: HTML =
      configured
      ? """
        <p>Sign in once through \(idp.inSentence) as someone who is assigned to the app. It is a real sign-in: someone who is not a member yet joins the workspace with the role shown. The app itself is not involved; you come back here.</p>
        <p><a class="button primary" href="\(link.path(.sso))/test">Run a test sign-in</a></p>
        \(try testResultCard(link))
        """
      : "<p>Save the identity provider's details first; then you can run a test sign-in here.</p>"

    return Content(
      title: "Single sign-on",
      body: """
        <p class="lead">Connect \(link.workspaceName) to your identity provider, so people sign in to the app with their company account.</p>
        \(notices)\(PageKit.errorSummary(form))
        <h2 id="idp-heading">Your identity provider</h2>
        \(idpTabs(link, .sso, idp))
        <h2>1. Create the app in \(idp.inSentence)</h2>
        \(idp.ssoInstructions(sp))
        <h2 id="details-heading">2. Give Roster the details from \(idp.inSentence)</h2>
        \(current)
        \(configured && form.isEmpty ? "<details class=\"replace\"><summary>Replace the connection (new metadata, or another identity provider)</summary>\(detailsForm)</details>" : detailsForm)
        <h2 id="test-result">3. Test sign-in</h2>
        \(test)
        """)
  }

  /// The IdP choice: plain links, so it works without scripts.
  func idpTabs(_ link: SetupLink, _ step: SetupStep, _ chosen: IdP) -> HTML {
    let items: [HTML] = IdP.allCases.map {
      "<li><a href=\"\(link.path(step))?idp=\($0.rawValue)\"\(HTML.when($0 == chosen, " aria-current=\"true\""))>\($0.name)</a></li>"
    }
    return "<ul class=\"tabs\" aria-labelledby=\"idp-heading\">\(items)</ul>"
  }

  func postSSO(_ link: SetupLink, _ form: FormData) throws -> HTTPResponse {
    let proto = form["protocol"] ?? ""
    let idp = IdP(rawValue: form["idp"] ?? "") ?? (proto == "oidc" ? .oidc : .saml)
    var s = PageKit.FormState(values: [
      "metadata_url": form["metadata_url"] ?? "", "metadata_xml": form["metadata_xml"] ?? "", "issuer": form["issuer"] ?? "",
      "client_id": form["client_id"] ?? "", "default_role": form["default_role"] ?? "",
    ])
    if !Self.roleOptions.contains(where: { $0.value == s["default_role"] }) { s.fail("default_role", "Choose a role.") }
    var connection: [String: JSONValue] = [:]
    var fields: [String: String] = [:]
    var otherwise = "metadata_url"
    switch proto {
    case "saml":
      let url = s["metadata_url"].trimmingCharacters(in: .whitespacesAndNewlines)
      let xml = s["metadata_xml"].trimmingCharacters(in: .whitespacesAndNewlines)
      let file = form.file("metadata_file")
      switch (!url.isEmpty, !xml.isEmpty, file != nil) {
      case (false, false, false):
        s.fail("metadata_url", "Give the identity provider's metadata: its URL, the XML, or the file.")
      case (true, false, false):
        connection = ["protocol": "saml", "metadataUrl": .string(url)]
      case (false, true, false):
        connection = ["protocol": "saml", "metadataXml": .string(xml)]
        otherwise = "metadata_xml"
      case (false, false, true):
        otherwise = "metadata_file"
        if let text = String(validating: file!.bytes, as: UTF8.self), !text.contains("\u{0}") {
          connection = ["protocol": "saml", "metadataXml": .string(text)]
        } else {
          s.fail("metadata_file", "The file is not an XML text file. Download the metadata again and upload that file.")
        }
      default:
        s.fail("metadata_url", "Give the metadata one way only: a URL, the XML, or a file.")
      }
      fields = ["connection.metadataUrl": "metadata_url", "connection.metadataXml": otherwise, "connection": otherwise]
    case "oidc":
      otherwise = "issuer"
      let issuer = s["issuer"].trimmingCharacters(in: .whitespacesAndNewlines)
      let clientId = s["client_id"].trimmingCharacters(in: .whitespacesAndNewlines)
      let secret = form["client_secret"] ?? ""
      if issuer.isEmpty { s.fail("issuer", "Enter the issuer URL.") }
      if clientId.isEmpty { s.fail("client_id", "Enter the client ID.") }
      connection = ["protocol": "oidc", "issuer": .string(issuer), "clientId": .string(clientId)]
      if !secret.isEmpty { connection["clientSecret"] = .string(secret) }
      fields = ["connection.issuer": "issuer", "connection.clientId": "client_id", "connection.clientSecret": "client_secret", "connection": "issuer"]
    default:
      s.fail(nil, "The form was not one this page sends.")
    }
    if s.isEmpty {
      switch call(link, "sso.configure", ["connection": .object(connection), "defaultRole": .string(s["default_role"])], acting: true) {
      case .success:
        return redirect(link.path(.sso) + "?idp=" + idp.rawValue + "&done=saved#test-result")
      case .failure(let e):
        let general = ["no_verified_domain", "plan_required", "concurrent_change", "not_permitted"]
        let field: String? =
          general.contains(e.reason ?? "") ? nil : e.reason == "secret_key_required" ? "client_secret" : Self.field(e, fields, otherwise: otherwise)
        s.fail(field, e.message)
      }
    }
    var c = try ssoPage(link, idp: idp, form: s, query: [:])
    c.status = 422
    return render(link, .sso, c)
  }
}
