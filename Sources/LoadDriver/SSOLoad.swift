import Crypto
import Foundation
import JSON

/// The identity providers the load signs people in through, and what the
/// processes were started with. Both IdPs are real peers on loopback
/// (`Tests/Support/peers`): `saml_load_idp.py` (signxml-signed responses to
/// Roster's AuthnRequests) and `oidc_provider.py` (discovery, JWKS, token
/// endpoint, RS256 ID tokens). The processes need
/// `ROSTER_IDP_ALLOW_HTTP_LOOPBACK=true` and a `ROSTER_SECRET_KEY`.
public struct SSOPeers: Sendable {
  public var samlIdPPort: UInt16
  public var oidcProviderPort: UInt16
  /// The processes' ROSTER_PUBLIC_URL: ACS and callback URLs start with it.
  public var publicURL: String
  /// The SMTP relay's mail folder (one file per message): the domain
  /// verification link is read from the email, as an admin reads it.
  public var mailDir: String

  public init(samlIdPPort: UInt16, oidcProviderPort: UInt16, publicURL: String, mailDir: String) {
    self.samlIdPPort = samlIdPPort
    self.oidcProviderPort = oidcProviderPort
    self.publicURL = publicURL
    self.mailDir = mailDir
  }

  /// ROSTER_SSO_REDIRECT_URIS' default: the app's callback.
  public var redirectURI: String { publicURL + "/sso/callback" }
}

/// The SSO side of the load: the main workspace signs in through SAML (its
/// SCIM users, active and removed), a second workspace through OIDC (new
/// people join just in time).
public struct SSOWorkspaces: Sendable {
  public let peers: SSOPeers
  /// The main workspace's SAML connection (its ACS URL ends with it).
  public let samlConnectionId: String
  public let oidcWorkspaceId: String
  public let oidcOwnerEmail: String
  public let oidcDomain: String
  /// The OIDC client secret Roster holds (encrypted): it must reach no log.
  public let oidcClientSecret: String

  /// Verifies `domain` for the workspace the way an admin does it by email:
  /// domain.add, the link from the email, domain.confirm.
  static func verifyByEmail(_ rpc: RPCClient, _ peers: SSOPeers, workspaceId: String, domain: String, actor: JSONValue) throws {
    let to = "it@\(domain)"
    _ = try rpc.call("domain.add", ["workspaceId": .string(workspaceId), "domain": .string(domain), "method": "email", "email": .string(to), "actor": actor])
      .value("domain.add")
    // The outbox keeps no link once the email is sent (secret fields are
    // scrubbed), so read the delivered email, quoted-printable decoded.
    var token: String?
    for _ in 0..<300 where token == nil {
      for file in (try? FileManager.default.contentsOfDirectory(atPath: peers.mailDir)) ?? [] where !file.hasPrefix(".") {
        guard let data = FileManager.default.contents(atPath: peers.mailDir + "/" + file) else { continue }
        let text = Self.decodeQuotedPrintable(String(decoding: data, as: UTF8.self))
        guard text.contains("To: \(to)"), let r = text.range(of: "/domains/confirm?token=") else { continue }
        token = String(text[r.upperBound...].prefix { $0.isLetter || $0.isNumber })
        break
      }
      if token == nil { usleep(100_000) }
    }
    guard let token, !token.isEmpty else { throw LoadError("no verification email for \(domain) in \(peers.mailDir)") }
    let d = try rpc.call("domain.confirm", ["token": .string(token)]).value("domain.confirm")
    guard d["status"] == "verified" else { throw LoadError("\(domain) not verified: \(d)") }
  }

  /// Soft line breaks removed, =XX decoded (RFC 2045 §6.7).
  static func decodeQuotedPrintable(_ s: String) -> String {
    let bytes = Array(s.replacingOccurrences(of: "=\r\n", with: "").replacingOccurrences(of: "=\n", with: "").utf8)
    var out: [UInt8] = []
    var i = 0
    while i < bytes.count {
      if bytes[i] == 0x3D, i + 2 < bytes.count, let v = UInt8(String(decoding: bytes[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
        out.append(v)
        i += 3
      } else {
        out.append(bytes[i])
        i += 1
      }
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// SAML on the main workspace (before its members exist, so none of them
  /// needs the S4 first SSO sign-in), then the OIDC workspace.
  static func configureSAML(_ rpc: RPCClient, _ peers: SSOPeers, workspaceId: String, domain: String, actor: JSONValue) throws -> String {
    try verifyByEmail(rpc, peers, workspaceId: workspaceId, domain: domain, actor: actor)
    let idp = try HTTPClient(port: peers.samlIdPPort, token: nil)
    let (status, body) = try idp.request("GET", "/config")
    guard status == 200, let config = try? JSONParser.parse(body) else { throw LoadError("the SAML IdP's /config answered \(status)") }
    let connection: JSONValue = [
      "protocol": "saml", "idpEntityId": config["entityId"] ?? .null, "ssoUrl": config["ssoUrl"] ?? .null, "certificatePem": config["certificatePem"] ?? .null,
    ]
    let settings = try rpc.call("sso.configure", ["workspaceId": .string(workspaceId), "connection": connection, "actor": actor])
      .value("sso.configure (SAML)")
    // The SP values the IdP is given: …/sso/saml/{connectionId}/acs
    let acsURL = settings["sp"]?["acsUrl"]?.stringValue ?? ""
    let parts = acsURL.split(separator: "/")
    guard parts.count >= 3, parts.last == "acs" else { throw LoadError("sso.configure gave no ACS URL: \(acsURL)") }
    return String(parts[parts.count - 2])
  }

  static func configureOIDC(_ rpc: RPCClient, _ peers: SSOPeers, tag: String) throws -> (workspaceId: String, owner: String, domain: String, secret: String) {
    let domain = "o-\(tag).load.test"
    let owner = "owner@\(domain)"
    let w = try rpc.call("workspace.create", ["name": .string("Load OIDC \(tag)"), "plan": "enterprise", "owner": ["email": .string(owner), "name": "Owner"]])
      .value("workspace.create")
    let wid = w["workspaceId"]!.stringValue!
    let actor: JSONValue = ["memberId": w["ownerMemberId"]!]
    try verifyByEmail(rpc, peers, workspaceId: wid, domain: domain, actor: actor)
    let secret = Secrets.urlToken(bits: 192)
    let provider = try HTTPClient(port: peers.oidcProviderPort, token: nil)
    let (status, _) = try provider.request(
      "POST", "/control", body: JSONWriter.bytes(["client": ["id": "roster-load", "secret": .string(secret)]]), contentType: "application/json")
    guard status == 200 else { throw LoadError("the OIDC provider's /control answered \(status)") }
    let connection: JSONValue = [
      "protocol": "oidc", "issuer": .string("http://127.0.0.1:\(peers.oidcProviderPort)"), "clientId": "roster-load", "clientSecret": .string(secret),
    ]
    _ = try rpc.call("sso.configure", ["workspaceId": .string(wid), "connection": connection, "actor": actor]).value("sso.configure (OIDC)")
    return (wid, owner, domain, secret)
  }
}

/// What one SSO flow came to, before the app redeems the code.
enum FlowResult {
  /// The browser reached the app with a code.
  case code(String, verifier: String)
  /// The browser reached the app with `error=access_denied`.
  case refused(String)
  /// Something that must not happen (recorded as an error already).
  case wrong
}

extension MixedLoad {
  /// The browser's side of one sign-in, from `sso.authorize` to the app's
  /// redirect URI. Any step that finds a process or the database away starts
  /// the flow again from the beginning, as a person would.
  func ssoFlow(
    _ c: Client, _ op: String, _ rpc: RPCClient, _ web: HTTPPool, _ idp: PeerHTTP, sso: SSOWorkspaces, workspaceId: String, email: String,
    replayTo replayWeb: HTTPPool?
  ) -> FlowResult? {
    let peers = sso.peers
    return measured(c, op) { () -> Result<FlowResult, Unavailable> in
      let verifier = Secrets.urlToken(bits: 256)
      let state = Secrets.urlToken(bits: 128)
      let authorize: JSONValue = [
        "workspaceId": .string(workspaceId), "redirectUri": .string(peers.redirectURI), "state": .string(state),
        "codeChallenge": .string(Base64URL.encode(SHA256.hash(Array(verifier.utf8)))), "codeChallengeMethod": "S256", "loginHint": .string(email),
      ]
      let url: String
      switch rpc.call("sso.authorize", authorize) {
      case .unavailable(let why): return .failure(Unavailable(why: why))
      case .refused(let code, let reason, let message):
        error(c, op, "sso.authorize: \(code) \(reason) \(message)")
        return .success(.wrong)
      case .ok(let a): url = a["url"]?.stringValue ?? ""
      }
      // At the IdP.
      guard let idpTarget = Self.pathAndQuery(url) else {
        error(c, op, "sso.authorize gave \(url)")
        return .success(.wrong)
      }
      guard let (idpStatus, idpBody, idpLocation) = idp.get(idpTarget) else {
        error(c, op, "the IdP did not answer")
        return .success(.wrong)
      }
      // Back at Roster: the ACS (SAML, HTTP-POST) or the callback (OIDC, a redirect).
      let back: HTTPPool.RawOutcome
      var replayForm: [UInt8]?
      var replayPath = ""
      if op == "sso.saml" {
        guard idpStatus == 200, let form = try? JSONParser.parse(idpBody), let acs = form["acsUrl"]?.stringValue, acs.hasPrefix(peers.publicURL),
          let response = form["SAMLResponse"]?.stringValue
        else {
          error(c, op, "the SAML IdP answered \(idpStatus): \(String(decoding: idpBody.prefix(200), as: UTF8.self))")
          return .success(.wrong)
        }
        // P1: the AuthnRequest names the workspace's own connection's ACS.
        guard acs == peers.publicURL + "/sso/saml/\(sso.samlConnectionId)/acs" else {
          error(c, op, "the AuthnRequest's ACS URL is \(acs), not the connection's")
          return .success(.wrong)
        }
        let body = Array(("SAMLResponse=" + Self.formEncode(response) + "&RelayState=" + Self.formEncode(form["RelayState"]?.stringValue ?? "")).utf8)
        replayPath = String(acs.dropFirst(peers.publicURL.count))
        replayForm = body
        back = web.send("POST", replayPath, body: body, contentType: "application/x-www-form-urlencoded")
      } else {
        guard idpStatus == 302, let callback = idpLocation, callback.hasPrefix(peers.publicURL) else {
          error(c, op, "the OIDC provider answered \(idpStatus) to \(idpLocation ?? "nowhere")")
          return .success(.wrong)
        }
        back = web.send("GET", String(callback.dropFirst(peers.publicURL.count)))
      }
      let location: String
      switch back {
      case .unavailable(let why):
        // The sign-in may have completed before the answer was lost.
        c.sso.flowsInDoubt += 1
        return .failure(Unavailable(why: why))
      case .answered(303, _, let l?) where l.hasPrefix(peers.redirectURI + "?"): location = l
      case .answered(let s, let body, let l):
        error(c, op, "Roster answered \(s) \(l ?? "") \(Self.pageSummary(body))")
        return .success(.wrong)
      }
      let query = URLComponents(string: location)?.queryItems ?? []
      guard query.first(where: { $0.name == "state" })?.value == state else {
        error(c, op, "the redirect does not carry the flow's state: \(location)")
        return .success(.wrong)
      }
      if let code = query.first(where: { $0.name == "code" })?.value {
        c.sso.codesReceived += 1
        // P4: the same response again, at another copy, gives nothing.
        if let replayWeb, let replayForm, Int.random(in: 0..<4, using: &c.rng) == 0 {
          c.sso.replays += 1
          if case .answered(let s, _, let l) = replayWeb.send("POST", replayPath, body: replayForm, contentType: "application/x-www-form-urlencoded"),
            s == 303, let l, l.contains("code=")
          {
            error(c, op, "a replayed SAMLResponse got a second code")
          }
        }
        return .success(.code(code, verifier: verifier))
      }
      return .success(.refused(query.first(where: { $0.name == "error_description" })?.value ?? query.first(where: { $0.name == "error" })?.value ?? "?"))
    }
  }

  /// The app redeems the code (P8); a reply lost after the redemption makes
  /// the retry find it used, which is counted, not failed. Now and then the
  /// code is redeemed a second time, which must be refused.
  func redeem(_ c: Client, _ rpc: RPCClient, code: String, verifier: String, sso: SSOWorkspaces) -> JSONValue? {
    var retried = false
    let params: JSONValue = ["code": .string(code), "codeVerifier": .string(verifier), "redirectUri": .string(sso.peers.redirectURI)]
    let got: JSONValue?? = measured(
      c, "sso.token",
      { () -> Result<JSONValue?, Unavailable> in
        switch rpc.call("sso.token", params) {
        case .unavailable(let why): return .failure(Unavailable(why: why))
        case .ok(let t): return .success(t)
        case .refused(_, "code_used", _) where retried:
          c.sso.redemptionsInDoubt += 1
          return .success(nil)
        case .refused(let code, let reason, let message):
          error(c, "sso.token", "\(code) \(reason) \(message)")
          return .success(nil)
        }
      }, onRetry: { retried = true })
    guard let t = got ?? nil else { return nil }
    if Int.random(in: 0..<5, using: &c.rng) == 0 {
      c.sso.codesReused += 1
      switch rpc.call("sso.token", params) {
      case .ok: error(c, "sso.token", "a code was redeemed twice")
      case .refused(_, "code_used", _): c.sso.reuseRefused += 1
      case .refused(let code, let reason, _): error(c, "sso.token", "a second redemption was refused with \(code) \(reason), not code_used")
      case .unavailable: break
      }
    }
    return t
  }

  /// SP-initiated SAML for one of this client's SCIM users: an active one
  /// must get in, a removed one must not (S7, C3), even though the IdP vouches.
  func samlSignIn(_ c: Client, _ rpc: RPCClient, _ web: HTTPPool, _ replayWeb: HTTPPool, _ idp: PeerHTTP, sso: SSOWorkspaces) {
    let removed = c.users.indices.filter { !c.users[$0].active }
    let pickRemoved = !removed.isEmpty && Int.random(in: 0..<5, using: &c.rng) == 0
    let candidates = pickRemoved ? removed : c.users.indices.filter { c.users[$0].active }
    guard let i = candidates.randomElement(using: &c.rng) else { return }
    let u = c.users[i]
    guard let result = ssoFlow(c, "sso.saml", rpc, web, idp, sso: sso, workspaceId: workspace.id, email: u.userName, replayTo: replayWeb) else { return }
    switch result {
    case .wrong: return
    case .refused(let why):
      if u.active { error(c, "sso.saml", "\(u.userName) is active but was refused: \(why)") } else { c.sso.refusedRemoved += 1 }
    case .code(let code, let verifier):
      if !u.active { error(c, "sso.saml", "\(u.userName) was removed but got a code") }
      guard let t = redeem(c, rpc, code: code, verifier: verifier, sso: sso) else { return }
      c.sso.signIns += 1
      let granted = t["decision"]?["workspaces"]?.arrayValue?.compactMap { $0["workspaceId"]?.stringValue } ?? []
      if t["decision"]?["allowed"] != true || !granted.contains(workspace.id) || t["workspaceId"]?.stringValue != workspace.id
        || t["profile"]?["email"]?.stringValue?.lowercased() != u.userName.lowercased()
      {
        error(c, "sso.token", "\(u.userName): unexpected SAML sign-in \(t)")
      }
    }
  }

  /// OIDC sign-in to the second workspace: mostly new people (S5: they join
  /// just in time), sometimes someone who already did.
  func oidcSignIn(_ c: Client, _ rpc: RPCClient, _ web: HTTPPool, _ idp: PeerHTTP, sso: SSOWorkspaces, index: Int, serial: Int) {
    let email = c.sso.oidcPeople.isEmpty || Bool.random(using: &c.rng) ? "o\(index)-\(serial)@\(sso.oidcDomain)" : c.sso.oidcPeople.randomElement(using: &c.rng)!
    c.sso.oidcAttempted.insert(email)
    guard case .code(let code, let verifier)? = ssoFlow(c, "sso.oidc", rpc, web, idp, sso: sso, workspaceId: sso.oidcWorkspaceId, email: email, replayTo: nil)
    else {
      return
    }
    guard let t = redeem(c, rpc, code: code, verifier: verifier, sso: sso) else { return }
    c.sso.signIns += 1
    c.sso.oidcPeople.insert(email)
    let granted = t["decision"]?["workspaces"]?.arrayValue?.compactMap { $0["workspaceId"]?.stringValue } ?? []
    if t["decision"]?["allowed"] != true || !granted.contains(sso.oidcWorkspaceId) || t["profile"]?["email"]?.stringValue != email {
      error(c, "sso.token", "\(email): unexpected OIDC sign-in \(t)")
    }
  }

  static func pathAndQuery(_ url: String) -> String? {
    guard let c = URLComponents(string: url), c.host == "127.0.0.1" else { return nil }
    return c.percentEncodedPath + (c.percentEncodedQuery.map { "?" + $0 } ?? "")
  }

  /// A page's title and trace id, for an error line.
  static func pageSummary(_ body: [UInt8]) -> String {
    let text = String(decoding: body.prefix(4096), as: UTF8.self)
    func between(_ a: String, _ b: String) -> String? {
      guard let r = text.range(of: a), let e = text.range(of: b, range: r.upperBound..<text.endIndex) else { return nil }
      return String(text[r.upperBound..<e.lowerBound])
    }
    return [between("<title>", "</title>"), between("<code>", "</code>").map { "trace \($0)" }].compactMap { $0 }.joined(separator: ", ")
  }

  static func formEncode(_ s: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return s.addingPercentEncoding(withAllowedCharacters: allowed)!
  }
}

/// HTTP to one of the IdP peers on loopback, reconnecting when the peer
/// closed (they speak HTTP/1.0 or close idle connections).
final class PeerHTTP: @unchecked Sendable {
  let port: UInt16
  var client: HTTPClient?

  init(port: UInt16) { self.port = port }

  func get(_ target: String) -> (Int, [UInt8], String?)? {
    for _ in 0..<2 {
      do {
        if client == nil { client = try HTTPClient(port: port, token: nil) }
        let (s, b) = try client!.request("GET", target)
        return (s, b, client!.location)
      } catch {
        client = nil
      }
    }
    return nil
  }
}
