import Crypto
import Foundation
import JSON

/// A refused OIDC response: a stable reason (`sso.traces`) and a detail.
public struct OIDCRefusal: Error, Equatable, Sendable {
  public let reason: String
  public let detail: String
  public init(_ reason: String, _ detail: String) {
    self.reason = reason
    self.detail = detail
  }
}

/// A key from the issuer's JWKS.
public struct JWK: Sendable {
  public var kid: String?
  public var alg: String?
  public var use: String?
  public var key: PublicKey
}

public struct JWKSet: Sendable {
  public var keys: [JWK]

  public init(keys: [JWK]) { self.keys = keys }

  /// Parses a JWKS document. Keys of other types or unusable parameters are
  /// skipped (an issuer may publish encryption keys too); none usable is an error.
  public static func parse(_ json: JSONValue) throws(OIDCRefusal) -> JWKSet {
    guard let list = json["keys"]?.arrayValue else { throw OIDCRefusal("jwks_invalid", "The issuer's JWKS has no 'keys' array.") }
    var keys: [JWK] = []
    for k in list.prefix(100) {
      guard k["use"]?.stringValue ?? "sig" == "sig" else { continue }
      let kid = k["kid"]?.stringValue
      let alg = k["alg"]?.stringValue
      switch k["kty"]?.stringValue {
      case "RSA":
        guard let n = k["n"]?.stringValue.flatMap(Base64URL.decode), let e = k["e"]?.stringValue.flatMap(Base64URL.decode),
          let key = try? PublicKey.rsa(modulus: n, exponent: e), key.bits >= 2048
        else { continue }
        keys.append(JWK(kid: kid, alg: alg, use: "sig", key: key))
      case "EC":
        guard let crv = k["crv"]?.stringValue, let x = k["x"]?.stringValue.flatMap(Base64URL.decode),
          let y = k["y"]?.stringValue.flatMap(Base64URL.decode), let key = try? PublicKey.ec(curve: crv, x: x, y: y)
        else { continue }
        keys.append(JWK(kid: kid, alg: alg, use: "sig", key: key))
      default: continue
      }
    }
    guard !keys.isEmpty else { throw OIDCRefusal("jwks_invalid", "The issuer's JWKS has no usable signing key (RSA ≥ 2048 bits or EC).") }
    return JWKSet(keys: keys)
  }
}

/// The claims Roster uses from a validated ID token.
public struct IDTokenClaims: Sendable, Equatable {
  public var subject: String
  public var email: String
  public var name: String?
  public var givenName: String?
  public var familyName: String?
  public var groups: [String]
  public var issuer: String
  public var all: JSONValue
}

/// What a valid ID token must say (P7).
public struct IDTokenRules: Sendable {
  /// The issuer exactly, or Entra's multi-tenant template with `{tenantid}`
  /// (filled from the token's `tid` claim, which must be a GUID).
  public var issuer: String
  public var clientId: String
  public var nonce: String
  public var now: Date
  public var skew: TimeInterval = 180

  public init(issuer: String, clientId: String, nonce: String, now: Date) {
    self.issuer = issuer
    self.clientId = clientId
    self.nonce = nonce
    self.now = now
  }
}

public enum IDTokenValidator {
  /// Accepted JWS algorithms; `none`, HS*, and everything else are refused.
  public static let algorithms: [String: (SignatureScheme, DigestAlgorithm, PublicKey.Kind)] = [
    "RS256": (.rsaPKCS1, .sha256, .rsa), "PS256": (.rsaPSS, .sha256, .rsa), "ES256": (.ecdsaRaw, .sha256, .ec),
  ]

  public struct Header: Sendable {
    public var alg: String
    public var kid: String?
  }

  /// The token's header (to pick the key); a malformed token is refused.
  public static func header(_ token: String) throws(OIDCRefusal) -> Header {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard token.utf8.count <= 16_384, parts.count == 3, let h = Base64URL.decode(String(parts[0])),
      let json = try? JSONParser.parse(h, maxDepth: 8), let alg = json["alg"]?.stringValue
    else { throw OIDCRefusal("token_malformed", "The ID token is not a compact JWS.") }
    if let crit = json["crit"], !crit.isNull { throw OIDCRefusal("token_malformed", "The ID token has critical header parameters Roster does not understand.") }
    return Header(alg: alg, kid: json["kid"]?.stringValue)
  }

  /// Verifies signature and claims. `jku`, `x5u` and `jwk` headers are
  /// never used: keys come only from the issuer's JWKS.
  public static func validate(_ token: String, keys: JWKSet, rules r: IDTokenRules) throws(OIDCRefusal) -> IDTokenClaims {
    let head = try header(token)
    guard let (scheme, digest, kind) = algorithms[head.alg] else {
      throw OIDCRefusal("algorithm_refused", "The ID token is signed with \(head.alg.prefix(20)); only RS256, PS256 and ES256 are accepted.")
    }
    let candidates = keys.keys.filter { k in
      (head.kid == nil || k.kid == head.kid) && k.key.kind == kind && (k.alg == nil || k.alg == head.alg)
    }
    guard !candidates.isEmpty else {
      throw OIDCRefusal("kid_unknown", "No key in the issuer's JWKS matches the token (kid \(head.kid?.prefix(80) ?? "none"), \(head.alg)).")
    }
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard let signature = Base64URL.decode(String(parts[2])), let payloadBytes = Base64URL.decode(String(parts[1])) else {
      throw OIDCRefusal("token_malformed", "The ID token's payload or signature is not base64url.")
    }
    let signingInput = Array((parts[0] + "." + parts[1]).utf8)
    guard candidates.contains(where: { $0.key.verify(signature, over: signingInput, digest: digest, scheme: scheme) }) else {
      throw OIDCRefusal("signature_invalid", "The ID token's signature does not verify with the issuer's keys.")
    }
    guard let claims = try? JSONParser.parse(payloadBytes, maxDepth: 16), claims.objectValue != nil else {
      throw OIDCRefusal("token_malformed", "The ID token's payload is not a JSON object.")
    }
    // iss: exact, or Entra's {tenantid} template with the token's own tid.
    guard let iss = claims["iss"]?.stringValue else { throw OIDCRefusal("issuer_mismatch", "The ID token has no issuer.") }
    var expectedIssuer = r.issuer
    if r.issuer.contains("{tenantid}") {
      guard let tid = claims["tid"]?.stringValue, isGUID(tid) else {
        throw OIDCRefusal("issuer_mismatch", "The ID token has no tenant id (tid) to fill the issuer template.")
      }
      expectedIssuer = r.issuer.replacingOccurrences(of: "{tenantid}", with: tid)
    }
    guard iss == expectedIssuer else { throw OIDCRefusal("issuer_mismatch", "The ID token's issuer is \(iss.prefix(300)), not \(expectedIssuer).") }
    let audiences: [String]
    switch claims["aud"] {
    case .string(let s)?: audiences = [s]
    case .array(let a)?: audiences = a.compactMap(\.stringValue)
    default: audiences = []
    }
    guard audiences.contains(r.clientId) else { throw OIDCRefusal("audience_mismatch", "The ID token is not for this client id.") }
    if let azp = claims["azp"]?.stringValue {
      guard azp == r.clientId else { throw OIDCRefusal("azp_mismatch", "The ID token's authorized party (azp) is another client.") }
    } else if audiences.count > 1 {
      throw OIDCRefusal("azp_mismatch", "The ID token has several audiences and no authorized party (azp).")
    }
    guard let exp = claims["exp"]?.doubleValue else { throw OIDCRefusal("token_malformed", "The ID token has no expiry (exp).") }
    guard exp > r.now.timeIntervalSince1970 - r.skew else { throw OIDCRefusal("expired", "The ID token expired.") }
    guard let iat = claims["iat"]?.doubleValue else { throw OIDCRefusal("token_malformed", "The ID token has no issue time (iat).") }
    guard iat <= r.now.timeIntervalSince1970 + r.skew else { throw OIDCRefusal("not_yet_valid", "The ID token was issued in the future; check the IdP's clock.") }
    if let nbf = claims["nbf"]?.doubleValue, nbf > r.now.timeIntervalSince1970 + r.skew {
      throw OIDCRefusal("not_yet_valid", "The ID token is not valid yet (nbf).")
    }
    guard let nonce = claims["nonce"]?.stringValue, constantTimeEqual(Array(nonce.utf8), Array(r.nonce.utf8)) else {
      throw OIDCRefusal("nonce_mismatch", "The ID token's nonce does not match this sign-in.")
    }
    guard let sub = claims["sub"]?.stringValue, !sub.isEmpty else { throw OIDCRefusal("token_malformed", "The ID token has no subject (sub).") }
    guard let email = claims["email"]?.stringValue, !email.isEmpty else {
      throw OIDCRefusal("no_email", "The ID token has no email claim; add the email claim (and the email scope) in the IdP.")
    }
    switch claims["email_verified"] {
    case .bool(false)?, .string("false")?:
      throw OIDCRefusal("email_unverified", "The IdP says this email address is not verified.")
    default: break
    }
    let groups = (claims["groups"]?.arrayValue ?? []).compactMap(\.stringValue)
    return IDTokenClaims(
      subject: sub, email: email, name: claims["name"]?.stringValue, givenName: claims["given_name"]?.stringValue,
      familyName: claims["family_name"]?.stringValue, groups: groups, issuer: iss, all: claims)
  }

  static func isGUID(_ s: String) -> Bool {
    let b = Array(s.utf8)
    guard b.count == 36 else { return false }
    for (i, c) in b.enumerated() {
      if [8, 13, 18, 23].contains(i) { if c != 0x2D { return false } } else if !((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)) { return false }
    }
    return true
  }
}

/// The parts of an OpenID Provider's discovery document Roster uses.
public struct OIDCProviderMetadata: Sendable, Equatable {
  public var issuer: String
  public var authorizationEndpoint: String
  public var tokenEndpoint: String
  public var jwksURI: String
  public var tokenAuthMethods: [String]

  public static func parse(_ json: JSONValue, expectedIssuer: String) throws(OIDCRefusal) -> OIDCProviderMetadata {
    func url(_ key: String) throws(OIDCRefusal) -> String {
      guard let s = json[key]?.stringValue, let u = URLComponents(string: s), u.scheme == "https" || u.scheme == "http", u.host != nil else {
        throw OIDCRefusal("discovery_invalid", "The discovery document has no valid '\(key)'.")
      }
      return s
    }
    let issuer = try url("issuer")
    // Entra publishes its multi-tenant issuer as a template; otherwise the
    // document must name the issuer it was fetched for (OpenID Discovery §4.3).
    guard issuer == expectedIssuer || issuer.contains("{tenantid}") else {
      throw OIDCRefusal("discovery_invalid", "The discovery document names the issuer \(issuer.prefix(300)), not \(expectedIssuer).")
    }
    return OIDCProviderMetadata(
      issuer: issuer, authorizationEndpoint: try url("authorization_endpoint"), tokenEndpoint: try url("token_endpoint"),
      jwksURI: try url("jwks_uri"),
      tokenAuthMethods: (json["token_endpoint_auth_methods_supported"]?.arrayValue ?? []).compactMap(\.stringValue))
  }

  public var json: JSONValue {
    [
      "issuer": .string(issuer), "authorization_endpoint": .string(authorizationEndpoint), "token_endpoint": .string(tokenEndpoint),
      "jwks_uri": .string(jwksURI), "token_endpoint_auth_methods_supported": .array(tokenAuthMethods.map { .string($0) }),
    ]
  }
}

/// PKCE (RFC 7636) S256.
public enum PKCE {
  public static func challenge(for verifier: String) -> String { Base64URL.encode(SHA256.hash(Array(verifier.utf8))) }

  /// A verifier is 43–128 characters of [A-Za-z0-9-._~].
  public static func isValidVerifier(_ v: String) -> Bool {
    (43...128).contains(v.utf8.count)
      && v.utf8.allSatisfy { ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || [0x2D, 0x2E, 0x5F, 0x7E].contains($0) }
  }

  /// An S256 challenge is 43 base64url characters (a SHA-256).
  public static func isValidChallenge(_ c: String) -> Bool { c.utf8.count == 43 && Base64URL.decode(c)?.count == 32 }
}
