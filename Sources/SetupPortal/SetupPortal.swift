import Crypto
import Foundation
import HTTP1
import JSON
import JSONRPC
import Postgres
import RosterRuntime
import SSO
import ServiceKit
import WebPages

/// The guided setup (G1–G3): server-rendered pages under `/setup/{token}`
/// on ROSTER_WEB_LISTEN, for a customer's IT admin holding a setup link.
/// Every change goes through the same JSON-RPC methods as the app's (same
/// validation, transactions and audit), acting as `{"setupLink": ID}`.
public final class SetupPortal: Sendable {
  let ctx: ServiceContext
  let sso: SSOService
  /// Carries the link's token from the test sign-in back to its page: the
  /// IdP returns the browser to Roster's ACS/callback, which knows only the
  /// link's id.
  static let returnCookie = "roster_setup_return"

  public init(host: ProcessHost, sso: SSOService) {
    ctx = ServiceContext(host: host)
    self.sso = sso
  }

  public func install(web: WebServer) {
    ctx.host.dispatcher.register(linkMethods())
    ctx.host.dispatcher.document(errors: Self.errorDocs)
    web.add(prefix: "/setup/") { [self] r in serve(r) }
    sso.setupReturn.withLock { $0 = { [self] linkId, traceId in testFinished(linkId: linkId, traceId: traceId) } }
    // Links are kept 90 days after they stop working (setup.listLinks shows
    // them; the audit log keeps their ids), then removed.
    let cleanup = WorkerLoop(name: "setup-cleanup", threads: 1, pollSeconds: 3600, channel: nil, config: ctx.host.pgConfig, logger: ctx.logger)
    cleanup.start(
      makePass: { [ctx] in
        {
          try SetupLink.removeStale(ctx.pool)
          return false
        }
      }, nextDue: { 3600 })
    ctx.host.onStop("setup cleanup") { cleanup.stop() }
  }

  func serve(_ r: HTTPRequest) -> HTTPResponse {
    do {
      return try route(r)
    } catch let e as PGError where e.isConnectionFailure {
      return message(status: 503, title: "Try again in a moment", text: "The setup pages are unavailable for a moment. Reload the page shortly.")
    } catch let e as RPCError where e.code == RPCError.Code.unavailable {
      return message(status: 503, title: "Try again in a moment", text: e.message)
    } catch {
      let id = WebPage.traceId()
      // Never the path: it holds the link's token.
      ctx.logger.error("setup page failed", ["trace": .string(id), "method": .string(r.method), "error": .string(String(describing: error))])
      return message(status: 500, title: "Something went wrong", text: "The page could not be shown. Nothing was half-saved; try again.", traceId: id)
    }
  }

  func route(_ r: HTTPRequest) throws -> HTTPResponse {
    let parts = r.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    let read = r.method == "GET" || r.method == "HEAD"
    guard parts.count >= 2, parts[0] == "setup" else { return notFound() }
    switch parts[1] {
    case "assets":
      guard parts.count == 3, let asset = Assets.response(parts[2]) else { return notFound() }
      return read ? asset : notAllowed("GET, HEAD")
    case "return":
      return read ? testReturned(r) : notAllowed("GET, HEAD")
    default: break
    }
    let link: SetupLink
    switch try SetupLink.lookup(ctx.pool, token: parts[1]) {
    case .open(let l): link = l
    case .expired:
      return message(
        status: 410, title: "This setup link has expired",
        text: "Setup links work for a limited time. Ask the person who sent it to you for a new one.")
    case .revoked:
      return message(
        status: 410, title: "This setup link was withdrawn", text: "It no longer works. Ask the person who sent it to you for a new one.")
    case .unknown:
      return message(
        status: 404, title: "There is no setup page here", text: "Check that you copied the whole link, or ask for a new one.")
    }
    guard link.isEnterprise else {
      return message(
        status: 403, title: "Setup is not available",
        text: "Single sign-on and directory sync need the Enterprise plan, and this workspace is no longer on it.")
    }
    let rest = Array(parts.dropFirst(2))
    if rest.isEmpty { return read ? render(link, nil, try overview(link)) : notAllowed("GET, HEAD") }
    guard let step = SetupStep(rawValue: rest[0]) else { return notFound() }
    guard link.steps.contains(step) else {
      return render(
        link, nil,
        Content(
          title: "Not part of this link", status: 403,
          body: "<p>This setup link does not include the \(step.title.lowercased()) step. Ask the person who sent it if you need it.</p>"))
    }
    switch (rest.count, read) {
    case (1, true):
      return render(link, step, try page(step, link, query: r.query))
    case (1, false) where r.method == "POST":
      let form: FormData
      do { form = try FormData.parse(r) } catch {
        return render(link, step, try page(step, link, query: [], errors: [(error.field, error.message)], status: 400))
      }
      if let refusal = refuseCrossSite(r, link, form) { return refusal }
      return try post(step, link, form)
    case (2, true) where step == .sso && rest[1] == "test":
      return try startTest(link)
    case (1, false):
      return notAllowed("GET, HEAD, POST")
    case (2, false) where step == .sso && rest[1] == "test":
      return notAllowed("GET, HEAD")
    default:
      return notFound()
    }
  }

  // MARK: Cross-site requests (G3)

  /// The origin the browser shows for Roster's pages (ROSTER_PUBLIC_URL).
  var publicOrigin: String {
    guard let u = URLComponents(string: ctx.config.publicURL), let scheme = u.scheme, let host = u.host else { return ctx.config.publicURL }
    return scheme + "://" + host + (u.port.map { ":\($0)" } ?? "")
  }

  /// A form must come from Roster's own page: the browser's Sec-Fetch-Site
  /// and Origin (when sent) say so, and the link's form key must be in it.
  /// With `Referrer-Policy: no-referrer` a browser sends `Origin: null` on
  /// its own same-origin posts, so Sec-Fetch-Site decides when it is there.
  func refuseCrossSite(_ r: HTTPRequest, _ link: SetupLink, _ form: FormData) -> HTTPResponse? {
    var why: String?
    let origin = r.header("Origin")
    if let site = r.header("Sec-Fetch-Site") {
      if site != "same-origin" {
        why = "The form was sent from another site (\(site))."
      } else if let origin, origin != "null", origin != publicOrigin {
        why = "The form was sent from \(origin), not from \(publicOrigin) (ROSTER_PUBLIC_URL)."
      }
    } else if let origin, origin != publicOrigin {
      why = "The form was sent from \(origin), not from \(publicOrigin) (ROSTER_PUBLIC_URL)."
    }
    if why == nil, !constantTimeEqual(Array((form["form_key"] ?? "").utf8), Array(link.formKey.utf8)) {
      why = "The form did not come from this setup page."
    }
    guard let why else { return nil }
    ctx.logger.warning("setup form refused", ["link": .string(link.id), "why": .string(String(why.prefix(300)))])
    return message(status: 403, title: "This change was refused", text: why + " Nothing was changed. Open the setup link again and use its forms.")
  }

  // MARK: Pages

  struct Content {
    var title: String
    var status: Int = 200
    var body: HTML
  }

  func page(_ step: SetupStep, _ link: SetupLink, query: [(String, String)], errors: [(String?, String)] = [], status: Int = 200) throws -> Content {
    var form = PageKit.FormState()
    for e in errors { form.fail(e.0, e.1) }
    let q = Dictionary(query, uniquingKeysWith: { a, _ in a })
    var c: Content
    switch step {
    case .domains: c = try domainsPage(link, form: form, query: q)
    case .sso: c = try ssoPage(link, idp: q["idp"].flatMap(IdP.init(rawValue:)), form: form, query: q)
    case .directory: c = try directoryPage(link, idp: q["idp"].flatMap(IdP.init(rawValue:)), form: form, newToken: nil)
    case .roles: c = try rolesPage(link, form: form, query: q)
    }
    if !errors.isEmpty { c.status = status }
    return c
  }

  func post(_ step: SetupStep, _ link: SetupLink, _ form: FormData) throws -> HTTPResponse {
    switch step {
    case .domains: return try postDomains(link, form)
    case .sso: return try postSSO(link, form)
    case .directory: return try postDirectory(link, form)
    case .roles: return try postRoles(link, form)
    }
  }

  /// The page around a step: the steps with their state, the step, the
  /// link's limits.
  func render(_ link: SetupLink, _ current: SetupStep?, _ c: Content) -> HTTPResponse {
    let progress = (try? Progress.load(ctx.pool, workspaceId: link.workspaceId)) ?? Progress()
    var items: [HTML] = [
      "<li><a href=\"\(link.base)\"\(HTML.when(current == nil, " aria-current=\"page\""))><span>Overview</span></a></li>"
    ]
    for s in link.steps {
      let (label, kind) = progress.badge(s)
      items.append(
        "<li><a href=\"\(link.path(s))\"\(HTML.when(current == s, " aria-current=\"page\""))><span>\(s.title)</span><span class=\"badge \(kind)\">\(label)</span></a></li>"
      )
    }
    let html: HTML = """
      <!doctype html>
      <html lang="en">
      <head>
      <meta charset="utf-8">
      <meta name="viewport" content="width=device-width, initial-scale=1">
      <title>\(c.title) · \(link.workspaceName) · Roster setup</title>
      <link rel="stylesheet" href="/setup/assets/setup.css">
      <script src="/setup/assets/setup.js" defer></script>
      </head>
      <body>
      <a class="skip" href="#main">Skip to the page content</a>
      <header class="top"><div class="wrap"><span class="brand">Roster setup</span> <span class="for">Single sign-on and directory sync for <strong>\(link.workspaceName)</strong></span></div></header>
      <div class="wrap layout">
      <nav class="steps" aria-label="Setup steps"><ol>\(items)</ol></nav>
      <main id="main" tabindex="-1">
      <h1>\(c.title)</h1>
      \(c.body)
      </main>
      </div>
      <footer class="wrap"><p>This setup link works until \(PageKit.date(link.expiresAt)), only for \(link.workspaceName). Keep it private: anyone who has it can change these settings.</p></footer>
      </body>
      </html>

      """
    return WebPage.html(status: c.status, html.text)
  }

  /// A page outside any link (unknown, expired, refused): no navigation.
  func message(status: Int, title: String, text: String, traceId: String? = nil) -> HTTPResponse {
    let html: HTML = """
      <!doctype html>
      <html lang="en">
      <head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
      <title>\(title) · Roster setup</title><link rel="stylesheet" href="/setup/assets/setup.css"></head>
      <body>
      <header class="top"><div class="wrap"><span class="brand">Roster setup</span></div></header>
      <div class="wrap layout single"><main id="main"><h1>\(title)</h1><p>\(text)</p>\(traceId.map { "<p>Trace id: <code>\($0)</code></p>" as HTML })</main></div>
      </body>
      </html>

      """
    return WebPage.html(status: status, html.text)
  }

  func notFound() -> HTTPResponse {
    message(status: 404, title: "There is no setup page here", text: "Check that you copied the whole link, or ask for a new one.")
  }

  func notAllowed(_ allow: String) -> HTTPResponse {
    var r = message(status: 405, title: "Not allowed", text: "This address does not take that kind of request.")
    r.headers.append(("Allow", allow))
    return r
  }

  // MARK: Calls

  /// One JSON-RPC method in-process, for this link's workspace; a change
  /// acts as the link (G1).
  func call(_ link: SetupLink, _ method: String, _ params: [String: JSONValue] = [:], acting: Bool = false) -> Result<JSONValue, RPCError> {
    var p = params
    p["workspaceId"] = .string(link.workspaceId)
    if acting { p["actor"] = link.actor }
    var c = CallContext(requestID: "setup-" + Secrets.token(bits: 40))
    c.setupLinkId = link.id
    return ctx.host.dispatcher.call(method, p, context: c)
  }

  /// The form field an RPC error belongs to (by its `data.param`).
  static func field(_ e: RPCError, _ map: [String: String], otherwise: String? = nil) -> String? {
    if let param = e.data?["param"]?.stringValue, let f = map[param] { return f }
    return otherwise
  }

  func redirect(_ location: String) -> HTTPResponse { WebPage.redirect(location) }

  /// The hidden field every form carries (G3).
  func formKey(_ link: SetupLink) -> HTML { "<input type=\"hidden\" name=\"form_key\" value=\"\(link.formKey)\">" }
}

/// How far the workspace is, for the step list and the overview.
struct Progress {
  var verifiedDomains: Int64 = 0
  var pendingDomains: Int64 = 0
  var ssoConfigured = false
  var ssoTested = false
  var enforceSso = false
  var directoryOn = false
  var scimUsers: Int64 = 0
  var groups: Int64 = 0
  var mappedGroups: Int64 = 0

  static func load(_ pool: PGPool, workspaceId wid: String) throws -> Progress {
    let r = try pool.withConnection { conn in
      try conn.single(
        """
        SELECT (SELECT count(*) FROM domains WHERE workspace_id = w.id AND status = 'verified') AS verified,
               (SELECT count(*) FROM domains WHERE workspace_id = w.id AND status = 'pending') AS pending,
               w.sso_configured_at IS NOT NULL AS configured, w.sso_tested, w.enforce_sso,
               coalesce((SELECT enabled FROM directories WHERE workspace_id = w.id), false) AS directory,
               (SELECT count(*) FROM scim_users WHERE workspace_id = w.id) AS users,
               (SELECT count(*) FROM scim_groups WHERE workspace_id = w.id) AS groups,
               (SELECT count(*) FROM scim_groups WHERE workspace_id = w.id AND role IS NOT NULL) AS mapped
        FROM workspaces w WHERE w.id = \(wid)::uuid
        """, "the workspace")
    }
    return Progress(
      verifiedDomains: try r.int("verified"), pendingDomains: try r.int("pending"), ssoConfigured: try r.bool("configured"),
      ssoTested: try r.bool("sso_tested"), enforceSso: try r.bool("enforce_sso"), directoryOn: try r.bool("directory"), scimUsers: try r.int("users"),
      groups: try r.int("groups"), mappedGroups: try r.int("mapped"))
  }

  func badge(_ s: SetupStep) -> (String, String) {
    switch s {
    case .domains: return verifiedDomains > 0 ? ("Done", "done") : pendingDomains > 0 ? ("Waiting", "wait") : ("To do", "todo")
    case .sso: return ssoTested ? ("Done", "done") : ssoConfigured ? ("Not tested", "wait") : ("To do", "todo")
    case .directory: return directoryOn ? (scimUsers > 0 ? ("Done", "done") : ("On", "wait")) : ("To do", "todo")
    case .roles: return mappedGroups > 0 ? ("Done", "done") : groups > 0 ? ("To do", "todo") : ("Optional", "todo")
    }
  }
}

extension SetupPortal {
  /// The application errors of this module's methods (rpc.discover, docs/api.md).
  static let errorDocs: [String: [ErrorDoc]] = [
    "setup.createLink": [.conflict("plan_required")],
    "setup.revokeLinks": [.notFound("setup_link_not_found")],
    "setup.listLinks": [],
  ]
}
