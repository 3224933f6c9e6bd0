import Addresses
import Crypto
import Foundation
import JSON
import JSONRPC
import OIDC
import Policy
import Postgres
import RosterStore
import SAML
import ServiceKit

extension SSOService {
  func flowMethods() -> [MethodSpec] {
    [
      MethodSpec(
        "sso.authorize",
        summary:
          "Where to send the browser to sign in through a workspace's SSO connection: the IdP URL with a SAML AuthnRequest or an OIDC authorization request. Give workspaceId, or email to find the workspace whose verified domain claims it.",
        params: [
          ParamSpec("redirectUri", .string(maxLength: 2048), "one of ROSTER_SSO_REDIRECT_URIS (exact match)"),
          ParamSpec("state", .string(maxLength: 1024), "the app's state, returned with the code"),
          ParamSpec("codeChallenge", .string(maxLength: 128), "PKCE: base64url(SHA-256(codeVerifier))"),
          ParamSpec("codeChallengeMethod", .enumeration(["S256"])), .optional("workspaceId", .uuid), .optional("email", .email),
          .optional("loginHint", .string(maxLength: 320), "passed to the IdP as login_hint"),
        ], result: "{url, workspaceId, protocol, expiresAt}"
      ) { p, _ in try self.authorize(p) },
      MethodSpec(
        "sso.token",
        summary:
          "Redeems a one-time code (once, within 5 minutes, with the same redirectUri and the PKCE codeVerifier) for the verified profile and the sign-in decision.",
        params: [
          ParamSpec("code", .string(maxLength: 200)), .optional("codeVerifier", .string(maxLength: 128), "required unless initiatedBy is idp"),
          ParamSpec("redirectUri", .string(maxLength: 2048)),
        ], result: "{profile, workspaceId, connectionId, protocol, initiatedBy, decision}"
      ) { p, _ in try self.token(p) },
      MethodSpec(
        "sso.traces", summary: "Recent SSO attempts of a workspace, newest first, with the reason of each refusal.",
        params: [.workspaceId, .limit], result: "{traces}"
      ) { p, _ in try self.traces(p) },
    ]
  }

  func authorize(_ p: Params) throws -> JSONValue {
    let redirectURI = try p.string("redirectUri")
    guard ctx.config.redirectURIs.contains(redirectURI) else {
      throw RPCError.invalidParam(
        "redirectUri", "'redirectUri' is not one of the redirect URIs this Roster allows (ROSTER_SSO_REDIRECT_URIS, exact match).",
        reason: "redirect_uri_not_allowed")
    }
    let challenge = try p.string("codeChallenge")
    guard PKCE.isValidChallenge(challenge) else {
      throw RPCError.invalidParam("codeChallenge", "'codeChallenge' must be base64url(SHA-256(codeVerifier)): 43 characters.", reason: "invalid_code_challenge")
    }
    let state = try p.string("state")
    guard !state.isEmpty else { throw RPCError.invalidParam("state", "'state' must not be empty.") }
    let byId = p.optionalID("workspaceId")
    let byEmail = p.optionalString("email")
    guard (byId == nil) != (byEmail == nil) else {
      throw RPCError.invalidParams("Give exactly one of 'workspaceId' and 'email'.", reason: "workspace_or_email")
    }
    var wid = byId
    if let byEmail {
      guard let domain = DomainName.ofEmail(byEmail) else {
        throw RPCError.invalidParam("email", "'email' has an invalid domain.", reason: "invalid_email")
      }
      wid = try ctx.pool.query(
        """
        SELECT w.id FROM domains d JOIN workspaces w ON w.id = d.workspace_id
        WHERE d.domain = \(domain) AND d.status = 'verified' AND w.plan = 'enterprise' AND w.sso_configured_at IS NOT NULL
        """
      ).first?["id"]
      guard wid != nil else {
        throw RPCError.conflict("no_sso_for_domain", "No workspace with SSO claims \(domain).")
      }
    }
    guard let wid, let w = try ctx.pool.transaction({ tx in try WorkspaceRow.load(tx, wid) }) else { throw RPCError.workspaceNotFound() }
    guard w.ssoConfigured, let connectionId = w.ssoConnectionId, let connection = StoredConnection(w.ssoConnection) else {
      throw RPCError.conflict("sso_not_configured", "Workspace \(w.name) has no active SSO connection.")
    }
    let loginHint = p.optionalString("loginHint") ?? byEmail
    let started = try start(
      workspace: w, connectionId: connectionId, connection: connection, redirectURI: redirectURI, appState: state, codeChallenge: challenge,
      loginHint: loginHint, setupLinkId: nil)
    return [
      "url": .string(started.url), "workspaceId": .string(w.id), "protocol": .string(connection.protocolName),
      "expiresAt": .string(StoredConnection.rfc3339(started.expires)),
    ]
  }

  /// Stores the pending request and builds the IdP URL (P1, P7). Also used
  /// by the guided setup's test sign-in.
  package func start(
    workspace w: WorkspaceRow, connectionId: String, connection: StoredConnection, redirectURI: String, appState: String?, codeChallenge: String?,
    loginHint: String?, setupLinkId: String?
  ) throws -> (url: String, expires: Date) {
    let expires = Date().addingTimeInterval(Self.requestLifetime)
    switch connection {
    case .saml(let s):
      // An XML ID (NCName): a letter first, then 160 random bits.
      let id = "_" + hexString(Secrets.randomBytes(20))
      let request = AuthnRequest(
        id: id, issueInstant: Date(), destination: s.ssoURL, acsURL: acsURL(connectionId), spEntityId: spEntityId(connectionId))
      guard let url = request.redirectURL(ssoURL: s.ssoURL, relayState: id, extra: loginHint.map { [("login_hint", $0)] } ?? []) else {
        throw RPCError.unavailable("The AuthnRequest could not be encoded.")
      }
      try insertRequest(
        id: id, w: w, connectionId: connectionId, protocolName: "saml", redirectURI: redirectURI, appState: appState, codeChallenge: codeChallenge,
        nonce: nil, verifier: nil, setupLinkId: setupLinkId, expires: expires)
      return (url, expires)
    case .oidc(let o):
      let state = Secrets.urlToken(bits: 256)
      let nonce = Secrets.urlToken(bits: 256)
      let verifier = Secrets.urlToken(bits: 384)
      var query: [(String, String)] = [
        ("response_type", "code"), ("client_id", o.clientId), ("redirect_uri", oidcCallbackURL), ("scope", "openid email profile"),
        ("state", state), ("nonce", nonce), ("code_challenge", PKCE.challenge(for: verifier)), ("code_challenge_method", "S256"),
      ]
      if let loginHint { query.append(("login_hint", loginHint)) }
      try insertRequest(
        id: state, w: w, connectionId: connectionId, protocolName: "oidc", redirectURI: redirectURI, appState: appState,
        codeChallenge: codeChallenge, nonce: nonce, verifier: verifier, setupLinkId: setupLinkId, expires: expires)
      return (Self.appending(query, to: o.provider.authorizationEndpoint), expires)
    }
  }

  func insertRequest(
    id: String, w: WorkspaceRow, connectionId: String, protocolName: String, redirectURI: String, appState: String?, codeChallenge: String?,
    nonce: String?, verifier: String?, setupLinkId: String?, expires: Date
  ) throws {
    try ctx.pool.transaction { tx in
      try tx.query(
        """
        INSERT INTO sso_requests (id, workspace_id, connection_id, protocol, redirect_uri, app_state, code_challenge, nonce, pkce_verifier,
                                  setup_link_id, expires_at)
        VALUES (\(id), \(w.id)::uuid, \(connectionId)::uuid, \(protocolName), \(redirectURI), \(appState), \(codeChallenge), \(nonce), \(verifier),
                \(setupLinkId)::uuid, \(expires))
        """)
    }
  }

  func token(_ p: Params) throws -> JSONValue {
    let code = try p.string("code")
    let redirectURI = try p.string("redirectUri")
    let hash = SHA256.hex(code)
    // Redeemed once, atomically, across every copy of the process.
    guard
      let row = try ctx.pool.query(
        """
        UPDATE sso_codes SET redeemed_at = now() WHERE code_hash = \(hash) AND redeemed_at IS NULL AND expires_at > now()
        RETURNING workspace_id, connection_id, protocol, redirect_uri, code_challenge, initiated_by, profile, decision, trace_id
        """
      ).first
    else {
      let known = try ctx.pool.query("SELECT workspace_id, redeemed_at IS NOT NULL AS used, trace_id FROM sso_codes WHERE code_hash = \(hash)").first
      if let known, known["used"] == "t" {
        // A second use is refused and audited (P8): it may be a stolen code.
        try ctx.pool.transaction { tx in
          try AuditLog.record(
            tx, workspaceId: known["workspace_id"], actor: .system("sso"), action: "sso.code_reused", targetType: "sso_code",
            targetId: known["trace_id"])
        }
        throw RPCError.conflict("code_used", "This code was already redeemed; start the sign-in again.")
      }
      if known != nil { throw RPCError.conflict("code_expired", "This code expired (codes live 5 minutes); start the sign-in again.") }
      throw RPCError.notFound("Code", reason: "invalid_code")
    }
    guard try row.string("redirect_uri") == redirectURI else {
      throw RPCError.conflict("redirect_uri_mismatch", "'redirectUri' is not the one the sign-in was started with.")
    }
    if let challenge = row["code_challenge"] {
      guard let verifier = p.optionalString("codeVerifier") else {
        throw RPCError.invalidParam("codeVerifier", "This code needs the PKCE 'codeVerifier' of the sign-in.", reason: "missing_param")
      }
      guard PKCE.isValidVerifier(verifier), constantTimeEqual(Array(PKCE.challenge(for: verifier).utf8), Array(challenge.utf8)) else {
        throw RPCError.conflict("pkce_mismatch", "'codeVerifier' does not match the code challenge of the sign-in.")
      }
    }
    return [
      "profile": try row.json("profile"), "workspaceId": .string(try row.string("workspace_id")),
      "connectionId": .string(try row.string("connection_id")), "protocol": .string(try row.string("protocol")),
      "initiatedBy": .string(try row.string("initiated_by")), "decision": try row.json("decision"), "traceId": .string(try row.string("trace_id")),
    ]
  }

  func traces(_ p: Params) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    guard try ctx.pool.query("SELECT 1 FROM workspaces WHERE id = \(wid)::uuid").first != nil else { throw RPCError.workspaceNotFound() }
    let rows = try ctx.pool.query(
      """
      SELECT trace_id, at, outcome, reason, detail, email, protocol FROM sso_traces WHERE workspace_id = \(wid)::uuid
      ORDER BY at DESC LIMIT \(p.limit(default: 50))
      """
    ).rows
    return [
      "traces": .array(
        try rows.map {
          [
            "traceId": .string(try $0.string("trace_id")), "at": .orNull($0.time("at")), "outcome": .string(try $0.string("outcome")),
            "reason": .orNull($0["reason"]), "detail": .orNull($0["detail"]), "email": .orNull($0["email"]), "protocol": .orNull($0["protocol"]),
          ]
        })
    ]
  }
}
