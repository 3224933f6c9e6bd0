import Foundation
import HTTP1
import JSON
import JSONRPC
import WebPages

/// Domains (G2): add one, publish its TXT record (copy buttons), check now,
/// or verify by email.
extension SetupPortal {
  func domainsPage(_ link: SetupLink, form: PageKit.FormState, query: [String: String]) throws -> Content {
    let domains = try call(link, "domain.list").get()["domains"]?.arrayValue ?? []
    var notice: HTML = .empty
    let focus = query["domain"].flatMap { id in domains.first { $0["domainId"]?.stringValue == id } }
    switch (query["done"], focus) {
    case ("added"?, let d?) where d["method"] == "email":
      notice = PageKit.notice("We sent a verification link to \(d["email"]?.stringValue ?? ""). Open it to verify \(d["domain"]?.stringValue ?? "").")
    case ("added"?, let d?):
      notice = PageKit.notice("\(d["domain"]?.stringValue ?? "") was added. Publish the TXT record below at your DNS provider, then choose Check now.")
    case ("checked"?, let d?) where d["status"] == "verified":
      notice = PageKit.notice("\(d["domain"]?.stringValue ?? "") is verified.")
    case ("checked"?, let d?):
      notice = PageKit.notice(
        "The TXT record for \(d["domain"]?.stringValue ?? "") was not found yet (\(d["lastCheckResult"]?.stringValue ?? "no answer")). DNS changes can take from a few minutes to an hour; Roster keeps checking by itself.",
        kind: "warn")
    default: break
    }
    let cards: [HTML] = domains.map { domainCard(link, $0) }
    let list: HTML = cards.isEmpty ? "<p>No domains yet.</p>" : "\(cards)"
    return Content(
      title: "Domains",
      body: """
        <p class="lead">Prove that your company owns its email domain. People with addresses at a verified domain can then sign in through your identity provider.</p>
        \(notice)\(PageKit.errorSummary(form))
        <h2>Your domains</h2>
        \(list)
        <h2 id="add-heading">Add a domain</h2>
        <form method="post" action="\(link.path(.domains))" aria-labelledby="add-heading" novalidate>
        \(formKey(link))<input type="hidden" name="action" value="add">
        \(PageKit.input("domain", label: "Domain", value: form["domain"], error: form.error("domain"), hint: "The part after the @ in your company's email addresses, like example.com.", required: true, extra: " autocomplete=\"off\" spellcheck=\"false\" inputmode=\"url\""))
        \(PageKit.radios("method", legend: "How do you want to verify it?", options: [
          ("dns", "Add a DNS TXT record (recommended)", "You publish a record at your DNS provider; Roster looks it up."),
          ("email", "Send a link to an address at the domain", "For example it@example.com or postmaster@example.com."),
        ], selected: form["method"].isEmpty ? "dns" : form["method"], error: form.error("method")))
        \(PageKit.input("email", label: "Email address (only for the email method)", type: "email", value: form["email"], error: form.error("email"), extra: " autocomplete=\"off\""))
        \(PageKit.button("Add domain"))
        </form>
        """)
  }

  func domainCard(_ link: SetupLink, _ d: JSONValue) -> HTML {
    let id = d["domainId"]?.stringValue ?? ""
    let name = d["domain"]?.stringValue ?? ""
    let status = d["status"]?.stringValue ?? ""
    var body: HTML
    switch status {
    case "verified":
      body = "<p><span class=\"badge done\">Verified</span> \(PageKit.date(d["verifiedAt"]?.stringValue))</p>"
    case "pending" where d["method"] == "dns":
      let record = d["dnsRecord"] ?? .null
      let checked: HTML =
        d["lastCheckedAt"]?.stringValue.map {
          "<p class=\"hint\">Last checked \(PageKit.date($0)): \(d["lastCheckResult"]?.stringValue ?? "")</p>" as HTML
        } ?? .empty
      body = """
        <p><span class="badge wait">Waiting for the DNS record</span></p>
        <p>Add this TXT record at your DNS provider (the same value on <code>\(name)</code> itself also works):</p>
        \(PageKit.copyValue("record-name-\(id)", label: "Name (host)", value: record["name"]?.stringValue ?? ""))
        \(PageKit.copyValue("record-type-\(id)", label: "Type", value: "TXT"))
        \(PageKit.copyValue("record-value-\(id)", label: "Value", value: record["value"]?.stringValue ?? ""))
        \(checked)
        <form method="post" action="\(link.path(.domains))">\(formKey(link))<input type="hidden" name="action" value="check"><input type="hidden" name="domainId" value="\(id)">
        <button type="submit" class="button secondary">Check now<span class="visually-hidden"> for \(name)</span></button></form>
        """
    case "pending":
      body = "<p><span class=\"badge wait\">Waiting for the email link</span> sent to \(d["email"]?.stringValue ?? "").</p>"
    default:
      body = "<p><span class=\"badge todo\">Not verified</span> \(d["lastCheckResult"]?.stringValue ?? ""). Add it again to start over.</p>"
    }
    return "<section class=\"card\" id=\"domain-\(id)\" aria-labelledby=\"domain-\(id)-name\"><h3 id=\"domain-\(id)-name\">\(name)</h3>\(body)</section>"
  }

  func postDomains(_ link: SetupLink, _ form: FormData) throws -> HTTPResponse {
    switch form["action"] {
    case "add"?:
      var s = PageKit.FormState(values: ["domain": form["domain"] ?? "", "method": form["method"] ?? "", "email": form["email"] ?? ""])
      let domain = s["domain"].trimmingCharacters(in: .whitespaces)
      let method = s["method"]
      let email = s["email"].trimmingCharacters(in: .whitespaces)
      if domain.isEmpty { s.fail("domain", "Enter the domain, like example.com.") }
      if !["dns", "email"].contains(method) { s.fail("method", "Choose how to verify the domain.") }
      if method == "email" && email.isEmpty { s.fail("email", "Enter an address at \(domain.isEmpty ? "the domain" : domain) to send the link to.") }
      if s.isEmpty {
        var p: [String: JSONValue] = ["domain": .string(domain), "method": .string(method)]
        if method == "email" { p["email"] = .string(email) }
        switch call(link, "domain.add", p, acting: true) {
        case .success(let d):
          let id = d["domainId"]?.stringValue ?? ""
          return redirect(link.path(.domains) + "?done=added&domain=" + id + "#domain-" + id)
        case .failure(let e):
          s.fail(Self.field(e, ["domain": "domain", "email": "email", "method": "method"], otherwise: "domain"), e.message)
        }
      }
      var c = try domainsPage(link, form: s, query: [:])
      c.status = 422
      return render(link, .domains, c)
    case "check"?:
      let id = (form["domainId"] ?? "").lowercased()
      switch call(link, "domain.check", ["domainId": .string(id)]) {
      case .success:
        return redirect(link.path(.domains) + "?done=checked&domain=" + id + "#domain-" + id)
      case .failure(let e):
        let text = e.code == RPCError.Code.notFound || e.code == RPCError.Code.invalidParams ? "That domain is not part of this workspace." : e.message
        var c = try domainsPage(link, form: PageKit.FormState(errors: [(nil, text)]), query: [:])
        c.status = e.code == RPCError.Code.notFound ? 404 : 422
        return render(link, .domains, c)
      }
    default:
      var c = try domainsPage(link, form: PageKit.FormState(errors: [(nil, "The form was not one this page sends.")]), query: [:])
      c.status = 400
      return render(link, .domains, c)
    }
  }
}
