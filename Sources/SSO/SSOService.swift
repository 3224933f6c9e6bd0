import Crypto
import Foundation
import JSON
import JSONRPC
import OIDC
import Postgres
import Provisioning
import RosterRuntime
import RosterStore
import SAML
import ServiceKit
import XMLSignature
import HTTP1
import Synchronization
import WebPages

/// Roster as SAML 2.0 service provider and OIDC relying party (P1–P10):
/// `sso.*` methods on provisioning.sock and the browser-facing `/sso/…`
/// paths on ROSTER_WEB_LISTEN.
public final class SSOService: Sendable {
  let ctx: ServiceContext
  let provisioning: ProvisioningService
  let idp: IdPClient
  let jwks: JWKSCache
  let connections: ConnectionCache
  /// Set by the guided setup: where a test sign-in's browser goes back to.
  package let setupReturn = Mutex<(@Sendable (_ linkId: String, _ traceId: String) -> HTTPResponse)?>(nil)

  /// A pending request lives 10 minutes (P1), a code 5 (P8); an IdP-initiated
  /// assertion is accepted up to 5 minutes after it was issued (P5).
  static let requestLifetime: TimeInterval = 600
  static let codeLifetime: TimeInterval = 300
  static let idpInitiatedMaxAge: TimeInterval = 300

  public init(host: ProcessHost, provisioning: ProvisioningService) {
    ctx = ServiceContext(host: host)
    self.provisioning = provisioning
    idp = IdPClient(allowHTTPLoopback: host.config.idpAllowHTTPLoopback)
    jwks = JWKSCache(client: idp)
    connections = ConnectionCache(config: host.pgConfig)
  }

  public func install() {
    XMLLibrary.initialize()
    checkExtraCAs()
    ctx.host.metrics.describe("roster_sso_attempts_total", type: "counter", help: "SSO sign-ins by protocol and outcome")
    ctx.host.dispatcher.register(settingsMethods() + flowMethods())
    ctx.host.dispatcher.document(errors: Self.errorDocs)
    let cleanup = WorkerLoop(name: "sso-cleanup", threads: 1, pollSeconds: 60, channel: nil, config: ctx.host.pgConfig, logger: ctx.logger)
    cleanup.start(makePass: { [self] in { try self.removeExpired() } }, nextDue: { 60 })
    ctx.host.onStop("sso cleanup") { cleanup.stop() }
    connections.start()
    ctx.host.onStop("sso connection cache") { [connections] in connections.stop() }
  }

  /// ROSTER_IDP_CA_FILE: FoundationNetworking on Linux (libcurl) trusts
  /// only the system store, so the extra CAs must be in it; say so at start
  /// when some are not, rather than failing on the first sign-in.
  func checkExtraCAs() {
    guard let file = ctx.config.idpCAFile, let text = try? String(contentsOfFile: file, encoding: .utf8) else { return }
    let wanted = (try? Certificate.parsePEM(text)) ?? []
    let systemText = (try? String(contentsOfFile: "/etc/ssl/certs/ca-certificates.crt", encoding: .utf8)) ?? ""
    let system = Set(((try? Certificate.parsePEM(systemText)) ?? []).map(\.sha256Fingerprint))
    let missing = wanted.filter { !system.contains($0.sha256Fingerprint) }
    if wanted.isEmpty {
      ctx.logger.warning("ROSTER_IDP_CA_FILE holds no PEM certificate", ["file": .string(file)])
    } else if !missing.isEmpty {
      ctx.logger.warning(
        "ROSTER_IDP_CA_FILE: certificates not in the system trust store; HTTPS to IdPs trusts only that store — add them (update-ca-certificates)",
        ["file": .string(file), "missing": .int(Int64(missing.count)), "subjects": .array(missing.map { .string($0.subject) })])
    }
  }

  var publicURL: String { ctx.config.publicURL }
  var oidcCallbackURL: String { publicURL + "/sso/oidc/callback" }
  func spEntityId(_ connectionId: String) -> String { publicURL + "/sso/saml/" + connectionId }
  func acsURL(_ connectionId: String) -> String { spEntityId(connectionId) + "/acs" }

  /// Drops what can no longer be used: requests, codes, replay records,
  /// and traces older than 30 days. Returns false (nothing more to do now).
  func removeExpired() throws -> Bool {
    try ctx.pool.transaction { tx in
      try tx.query("DELETE FROM sso_requests WHERE expires_at < now() - interval '1 hour'")
      try tx.query("DELETE FROM sso_codes WHERE expires_at < now() - interval '1 hour'")
      try tx.query("DELETE FROM sso_assertions WHERE expires_at < now()")
      try tx.query("DELETE FROM sso_traces WHERE at < now() - interval '30 days'")
    }
    return false
  }

  // MARK: Traces (P9)

  struct Attempt {
    var workspaceId: String?
    var connectionId: String?
    var protocolName: String?
    var email: String?
  }

  /// Records an attempt and returns its trace id (shown to the browser).
  @discardableResult
  func trace(_ a: Attempt, outcome: String, reason: String?, detail: String?) -> String {
    let id = "t-" + Secrets.token(bits: 80)
    ctx.host.metrics.increment("roster_sso_attempts_total", ["protocol": a.protocolName ?? "unknown", "outcome": outcome])
    do {
      try ctx.pool.query(
        """
        INSERT INTO sso_traces (trace_id, workspace_id, connection_id, protocol, outcome, reason, detail, email)
        VALUES (\(id), \(a.workspaceId)::uuid, \(a.connectionId)::uuid, \(a.protocolName), \(outcome), \(reason.map(Self.printable)),
                \(detail.map { Self.printable(String($0.prefix(1000))) }), \(a.email.map { Self.printable(String($0.prefix(320))) }))
        """)
    } catch {
      ctx.logger.warning("sso trace not recorded", ["error": .string(String(describing: error))])
    }
    // Never the response, the token, the code or a secret: ids and the reason only.
    ctx.logger.info(
      "sso", ["trace": .string(id), "outcome": .string(outcome), "reason": .orNull(reason), "workspace": .orNull(a.workspaceId), "protocol": .orNull(a.protocolName)])
    return id
  }

  // MARK: Pending requests

  struct PendingRequest {
    var id: String
    var workspaceId: String
    var connectionId: String
    var protocolName: String
    var redirectURI: String
    var appState: String?
    var codeChallenge: String?
    var nonce: String?
    var pkceVerifier: String?
    var setupLinkId: String?
    var expired: Bool
    var consumed: Bool

    init(_ r: PGRow) throws {
      id = try r.string("id")
      workspaceId = try r.string("workspace_id")
      connectionId = try r.string("connection_id")
      protocolName = try r.string("protocol")
      redirectURI = try r.string("redirect_uri")
      appState = r["app_state"]
      codeChallenge = r["code_challenge"]
      nonce = r["nonce"]
      pkceVerifier = r["pkce_verifier"]
      setupLinkId = r["setup_link_id"]
      expired = try r.bool("expired")
      consumed = r["consumed_at"] != nil
    }
  }

  static let requestColumns: SQL = """
    id, workspace_id, connection_id, protocol, redirect_uri, app_state, code_challenge, nonce, pkce_verifier, setup_link_id,
    consumed_at, expires_at <= now() AS expired
    """

  /// Uses a pending request once (atomically, across every copy of the
  /// process). A refusal still says which workspace the request was for
  /// (its trace belongs there), in `attempt`.
  func consumeRequest(
    _ id: String, connectionId: String? = nil, protocolName: String, attempt: inout Attempt
  ) throws -> Result<PendingRequest, SSOFailure> {
    let used = try ctx.pool.query(
      """
      UPDATE sso_requests SET consumed_at = now()
      WHERE id = \(id) AND protocol = \(protocolName) AND consumed_at IS NULL AND expires_at > now()
      RETURNING
      """ + " " + Self.requestColumns
    ).first
    if let used {
      let r = try PendingRequest(used)
      if let connectionId, r.connectionId != connectionId {
        return .failure(SSOFailure("unknown_request", "The response answers a sign-in started for another connection."))
      }
      return .success(r)
    }
    guard let row = try ctx.pool.query("SELECT " + Self.requestColumns + " FROM sso_requests WHERE id = \(id) AND protocol = \(protocolName)").first
    else { return .failure(SSOFailure("unknown_request", "The response answers no sign-in Roster started (or one that was cleaned up).")) }
    let r = try PendingRequest(row)
    if attempt.workspaceId == nil || attempt.workspaceId == r.workspaceId {
      attempt.workspaceId = r.workspaceId
      attempt.connectionId = r.connectionId
    }
    if r.consumed { return .failure(SSOFailure("replayed", "This sign-in was already completed once.")) }
    return .failure(SSOFailure("request_expired", "The sign-in was started more than 10 minutes ago; start again."))
  }

  // MARK: Codes (P8)

  /// After a validated response: the decision (P9), then a code for the app
  /// — or the refusal. Returns where the browser goes.
  /// A SAML assertion's replay record (P4), written with the code: an
  /// assertion ID already there refuses the sign-in and writes nothing.
  struct ReplayRecord {
    let connectionId: String
    let assertionId: String
    let validUntil: Date
  }

  func complete(
    attempt a: Attempt, workspace w: WorkspaceRow, request: PendingRequest?, initiatedBy: String, profile: JSONValue, email: String, name: String?,
    groups: [String], replay: ReplayRecord? = nil
  ) throws -> WebOutcome {
    var attempt = a
    attempt.email = email
    let decision: JSONValue
    do {
      decision = try provisioning.ssoSignIn(workspaceId: w.id, email: email, name: name, groups: groups)
    } catch let e as RPCError {
      return fail(attempt, request: request, SSOFailure(e.reason ?? "refused", e.message))
    }
    guard decision["allowed"] == true else {
      let reason = decision["reason"]?.stringValue ?? "refused"
      return fail(attempt, request: request, SSOFailure(reason, decision["message"]?.stringValue ?? "The sign-in was refused (\(reason))."))
    }
    let code = Secrets.urlToken(bits: 256)
    let traceId = "t-" + Secrets.token(bits: 80)
    let redirect = request?.redirectURI ?? ctx.config.redirectURIs[0]
    let audit: JSONValue = ["email": .string(email), "protocol": .orNull(a.protocolName), "initiatedBy": .string(initiatedBy), "trace": .string(traceId)]
    // The replay record, the code, its audit entry and its trace in one
    // statement: one round trip, one commit, all or nothing. With a replay
    // record that is already there, nothing is written.
    let first: SQL =
      replay.map {
        "WITH r AS (INSERT INTO sso_assertions (connection_id, assertion_id, expires_at) VALUES (\($0.connectionId)::uuid, \($0.assertionId), \($0.validUntil)) ON CONFLICT DO NOTHING RETURNING 1 AS ok)"
      } ?? "WITH r AS (SELECT 1 AS ok)"
    let written = try ctx.pool.withConnection { conn in
      try conn.single(
        first
          + """
          , c AS (
            INSERT INTO sso_codes (code_hash, workspace_id, connection_id, protocol, redirect_uri, code_challenge, initiated_by, profile, decision,
                                   trace_id, expires_at)
            SELECT \(SHA256.hex(code)), \(w.id)::uuid, \(a.connectionId)::uuid, \(a.protocolName), \(redirect), \(request?.codeChallenge),
                   \(initiatedBy), \(Self.printable(profile))::jsonb, \(decision)::jsonb, \(traceId), now() + make_interval(secs => \(Self.codeLifetime))
            FROM r
          ), t AS (
            INSERT INTO sso_traces (trace_id, workspace_id, connection_id, protocol, outcome, email)
            SELECT \(traceId), \(w.id)::uuid, \(a.connectionId)::uuid, \(a.protocolName), 'success', \(Self.printable(String(email.prefix(320))))
            FROM r
          ), l AS (
            \(sql: Journal.insertAudit(from: "r", workspaceId: w.id, .init(actor: .system("sso"), action: "sso.sign_in", targetType: "workspace", targetId: w.id, after: audit)))
          )
          SELECT count(*) AS n FROM r
          """)
    }
    guard try written.int("n") == 1 else {
      return fail(attempt, request: request, SSOFailure("replayed", "This assertion was already used; each is accepted once."))
    }
    ctx.host.metrics.increment("roster_sso_attempts_total", ["protocol": a.protocolName ?? "unknown", "outcome": "success"])
    ctx.logger.info("sso", ["trace": .string(traceId), "outcome": "success", "workspace": .string(w.id), "protocol": .orNull(a.protocolName)])
    if let setupLink = request?.setupLinkId { return .setupResult(linkId: setupLink, traceId: traceId) }
    var query: [(String, String)] = [("code", code)]
    if let state = request?.appState { query.append(("state", state)) }
    return .redirect(Self.appending(query, to: redirect))
  }

  /// A refusal: traced, then the P8 error redirect when the flow's redirect
  /// URI is known, else a page with the trace id.
  func fail(_ a: Attempt, request: PendingRequest?, _ f: SSOFailure) -> WebOutcome {
    let traceId = trace(a, outcome: "refused", reason: f.reason, detail: f.detail)
    if let setupLink = request?.setupLinkId { return .setupResult(linkId: setupLink, traceId: traceId) }
    guard let request else { return .refused(status: f.status, reason: f.reason, traceId: traceId) }
    var query = [("error", "access_denied"), ("error_description", "Sign-in refused (\(f.reason)); trace \(traceId).")]
    if let state = request.appState { query.append(("state", state)) }
    return .redirect(Self.appending(query, to: request.redirectURI))
  }

  /// Whether a value could be one of Roster's own request ids (RelayState,
  /// OIDC state): at most 100 characters of [A-Za-z0-9_-]. Anything else is
  /// refused before it reaches the database.
  static func isToken(_ s: String) -> Bool {
    !s.isEmpty && s.utf8.count <= 100
      && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }
  }

  /// Text from an IdP as the database can hold it (no NUL, no other C0 controls).
  static func printable(_ s: String) -> String {
    guard s.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" }) else { return s }
    var out = ""
    out.unicodeScalars.append(contentsOf: s.unicodeScalars.filter { $0.value >= 0x20 || $0 == "\t" })
    return out
  }

  /// A profile's strings made storable (jsonb refuses U+0000).
  static func printable(_ v: JSONValue) -> JSONValue {
    switch v {
    case .string(let s): return .string(printable(s))
    case .array(let a): return .array(a.map { printable($0) })
    case .object(let o):
      var out: [String: JSONValue] = [:]
      for (k, x) in o { out[printable(k)] = printable(x) }
      return .object(out)
    default: return v
    }
  }

  static func appending(_ query: [(String, String)], to url: String) -> String {
    let q = query.map { URLText.component($0.0) + "=" + URLText.component($0.1) }.joined(separator: "&")
    return url + (url.contains("?") ? "&" : "?") + q
  }
}

/// A refusal inside a flow: the trace reason, the admin's detail, the HTTP
/// status when there is no redirect to send the browser to.
struct SSOFailure: Error {
  let reason: String
  let detail: String
  let status: Int
  init(_ reason: String, _ detail: String, status: Int = 400) {
    self.reason = reason
    self.detail = detail
    self.status = status
  }
}

/// Where a browser-facing request ends.
enum WebOutcome {
  case redirect(String)
  case refused(status: Int, reason: String, traceId: String)
  /// A test sign-in from the guided setup: back to its page.
  case setupResult(linkId: String, traceId: String)
}

extension SSOService {
  /// The application errors of this module's methods (rpc.discover, docs/api.md).
  static let errorDocs: [String: [ErrorDoc]] = [
    "sso.configure": [
      .invalid("invalid_connection"), .conflict("plan_required"), .conflict("no_verified_domain"), .conflict("idp_unreachable"),
      .conflict("secret_key_required"), .conflict("concurrent_change"),
    ],
    "sso.update": [
      .invalid("invalid_connection"), .invalid("bypass_member_not_admin"), .invalid("too_many_bypass_members"), .conflict("plan_required"),
      .conflict("sso_not_configured"), .conflict("sso_untested"), .conflict("not_saml"),
    ],
    "sso.get": [],
    "sso.authorize": [
      .invalid("redirect_uri_not_allowed"), .invalid("invalid_code_challenge"), .invalid("workspace_or_email"), .invalid("invalid_email"),
      .notFound("workspace_not_found"), .conflict("no_sso_for_domain"), .conflict("sso_not_configured"),
    ],
    "sso.token": [
      .notFound("invalid_code"), .conflict("code_used"), .conflict("code_expired"), .conflict("redirect_uri_mismatch"), .conflict("pkce_mismatch"),
      .invalid("missing_param"),
    ],
    "sso.traces": [],
  ]
}
