import Addresses
import JSONRPC
import Crypto
import Foundation
import HTTP1
import JSON
import OIDC
import Postgres
import RosterStore
import Synchronization

/// The issuers' signing keys, fetched when first needed and again (at most
/// once a minute per issuer) when a token names a key id we do not have.
final class JWKSCache: Sendable {
  let client: IdPClient
  struct Entry {
    var keys: JWKSet
    var fetched: ContinuousClock.Instant
  }
  let entries = Mutex<[String: Entry]>([:])
  static let maxAge: Duration = .seconds(3600)
  static let refetchAfter: Duration = .seconds(60)

  init(client: IdPClient) { self.client = client }

  func keys(_ uri: String, refresh: Bool = false) throws(OIDCRefusal) -> JWKSet {
    let now = ContinuousClock.now
    if let e = entries.withLock({ $0[uri] }) {
      let age = now - e.fetched
      if !refresh && age < Self.maxAge { return e.keys }
      if refresh && age < Self.refetchAfter { return e.keys }  // rate-limited
    }
    let answer: IdPClient.Response
    do { answer = try client.get(uri) } catch { throw OIDCRefusal("idp_unreachable", "The issuer's JWKS could not be fetched: \(error.message).") }
    guard answer.status == 200, let json = answer.json else {
      throw OIDCRefusal("idp_unreachable", "The issuer's JWKS answered HTTP \(answer.status), not a JSON document.")
    }
    let set = try JWKSet.parse(json)
    entries.withLock { $0[uri] = Entry(keys: set, fetched: now) }
    return set
  }
}

extension SSOService {
  /// GET /sso/oidc/callback (P7, then P8–P9).
  func oidcCallback(_ r: HTTPRequest) throws -> WebOutcome {
    var attempt = Attempt(workspaceId: nil, connectionId: nil, protocolName: "oidc", email: nil)
    let q = r.query
    func param(_ n: String) -> String? { q.first { $0.0 == n }?.1 }
    guard let state = param("state"), SSOService.isToken(state) else {
      return fail(attempt, request: nil, SSOFailure("malformed_request", "The callback has no state Roster could have issued."))
    }
    let request: PendingRequest
    switch try consumeRequest(state, protocolName: "oidc", attempt: &attempt) {
    case .success(let p): request = p
    case .failure(let f): return fail(attempt, request: nil, f)
    }
    attempt.workspaceId = request.workspaceId
    attempt.connectionId = request.connectionId
    guard let w = try ctx.pool.transaction({ tx in try WorkspaceRow.load(tx, request.workspaceId) }), w.ssoConnectionId == request.connectionId,
      case .oidc(let o)? = StoredConnection(w.ssoConnection), w.ssoConfigured
    else {
      return fail(attempt, request: request, SSOFailure("connection_changed", "The workspace's connection changed while the sign-in was under way."))
    }
    if let error = param("error") {
      let description = param("error_description").map { ": " + String($0.prefix(300)) } ?? ""
      return fail(attempt, request: request, SSOFailure("idp_error", "The IdP answered \(error.prefix(100))\(description)"))
    }
    // RFC 9207: the issuer that answered, when it says.
    if let iss = param("iss"), !Self.issuerMatches(iss, o.tokenIssuer) {
      return fail(attempt, request: request, SSOFailure("issuer_mismatch", "The callback came from issuer \(iss.prefix(200)), not \(o.tokenIssuer)."))
    }
    guard let code = param("code"), !code.isEmpty, code.utf8.count <= 4096 else {
      return fail(attempt, request: request, SSOFailure("malformed_request", "The callback has no code."))
    }
    guard let nonce = request.nonce, let verifier = request.pkceVerifier else {
      return fail(attempt, request: request, SSOFailure("malformed_request", "The sign-in lost its nonce."))
    }
    // The code exchange (client_secret_basic, _post, or PKCE alone).
    var form = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", oidcCallbackURL), ("code_verifier", verifier)]
    var basic: (String, String)?
    if o.hasClientSecret {
      guard let key = ctx.config.secretKey, let sealed = try clientSecret(w.id),
        let secret = try? AESGCM.open(sealed, key: key, associated: Array(request.connectionId.utf8))
      else {
        return fail(attempt, request: request, SSOFailure("secret_unavailable", "The client secret cannot be decrypted: check ROSTER_SECRET_KEY."))
      }
      let text = String(decoding: secret, as: UTF8.self)
      if o.provider.tokenAuthMethods.isEmpty || o.provider.tokenAuthMethods.contains("client_secret_basic") {
        basic = (o.clientId, text)
      } else {
        form += [("client_id", o.clientId), ("client_secret", text)]
      }
    } else {
      form.append(("client_id", o.clientId))
    }
    let answer: IdPClient.Response
    do {
      answer = try idp.postForm(o.provider.tokenEndpoint, form, basic: basic.map { (user: $0.0, password: $0.1) })
    } catch {
      return fail(attempt, request: request, SSOFailure("idp_unreachable", "The token endpoint did not answer: \(error.message)."))
    }
    guard answer.status == 200, let tokens = answer.json, let idToken = tokens["id_token"]?.stringValue else {
      let error = answer.json?["error"]?.stringValue ?? "HTTP \(answer.status)"
      return fail(attempt, request: request, SSOFailure("token_exchange_failed", "The token endpoint refused the code: \(error.prefix(200))."))
    }
    let rules = IDTokenRules(issuer: o.tokenIssuer, clientId: o.clientId, nonce: nonce, now: Date())
    let claims: IDTokenClaims
    do {
      do {
        claims = try IDTokenValidator.validate(idToken, keys: try jwks.keys(o.provider.jwksURI), rules: rules)
      } catch where error.reason == "kid_unknown" {
        // A rotated key: the JWKS once more (rate-limited), then give up.
        claims = try IDTokenValidator.validate(idToken, keys: try jwks.keys(o.provider.jwksURI, refresh: true), rules: rules)
      }
    } catch {
      return fail(attempt, request: request, SSOFailure(error.reason, error.detail))
    }
    attempt.email = claims.email
    let name = claims.name ?? [claims.givenName, claims.familyName].compactMap { $0 }.joined(separator: " ")
    let profile: JSONValue = [
      "idpUserId": .string(claims.subject), "email": .string(claims.email), "name": .string(name), "givenName": .orNull(claims.givenName),
      "familyName": .orNull(claims.familyName), "groups": .array(claims.groups.map { .string($0) }), "attributes": claims.all,
    ]
    return try complete(
      attempt: attempt, workspace: w, request: request, initiatedBy: "app", profile: profile, email: claims.email,
      name: name.isEmpty ? nil : name, groups: claims.groups)
  }

  func clientSecret(_ workspaceId: String) throws -> [UInt8]? {
    guard let hex = try ctx.pool.query("SELECT encode(sso_client_secret, 'hex') AS s FROM workspaces WHERE id = \(workspaceId)::uuid").first?["s"]
    else { return nil }
    var bytes: [UInt8] = []
    var it = hex.utf8.makeIterator()
    while let a = it.next(), let b = it.next() {
      guard let v = UInt8(String(decoding: [a, b], as: UTF8.self), radix: 16) else { return nil }
      bytes.append(v)
    }
    return bytes
  }

  /// The issuer exactly, or Entra's `{tenantid}` template with a GUID in its place.
  static func issuerMatches(_ iss: String, _ expected: String) -> Bool {
    guard expected.contains("{tenantid}") else { return iss == expected }
    let parts = expected.components(separatedBy: "{tenantid}")
    guard parts.count == 2, iss.hasPrefix(parts[0]), iss.hasSuffix(parts[1]), iss.count == parts[0].count + 36 + parts[1].count else { return false }
    let tid = iss.dropFirst(parts[0].count).dropLast(parts[1].count)
    return isUUID(String(tid))
  }
}
