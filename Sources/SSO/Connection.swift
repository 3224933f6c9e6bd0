import Crypto
import Foundation
import JSON
import OIDC
import SAML

/// A workspace's SSO connection as stored (`workspaces.sso_connection`),
/// without secrets: the OIDC client secret is encrypted in its own column.
public enum StoredConnection: Sendable {
  case saml(SAMLSettings)
  case oidc(OIDCSettings)

  public struct SAMLSettings: Sendable {
    public var idpEntityId: String
    public var ssoURL: String
    public var certificates: [Certificate]
    public var allowSHA1: Bool
  }

  public struct OIDCSettings: Sendable {
    /// The issuer the admin configured (discovery is fetched from it).
    public var issuer: String
    /// The issuer ID tokens must carry (Entra's `{tenantid}` template allowed).
    public var tokenIssuer: String
    public var clientId: String
    public var hasClientSecret: Bool
    public var provider: OIDCProviderMetadata
  }

  public var protocolName: String {
    switch self {
    case .saml: return "saml"
    case .oidc: return "oidc"
    }
  }

  /// Reads the stored JSON (also the version-1 shape with one `certificatePem`).
  public init?(_ json: JSONValue) {
    switch json["protocol"]?.stringValue {
    case "saml":
      guard let entity = json["idpEntityId"]?.stringValue, let url = json["ssoUrl"]?.stringValue else { return nil }
      var pems = (json["certificatesPem"]?.arrayValue ?? []).compactMap(\.stringValue)
      if let one = json["certificatePem"]?.stringValue { pems.append(one) }
      let certs = pems.flatMap { (try? Certificate.parsePEM($0)) ?? [] }
      guard !certs.isEmpty else { return nil }
      self = .saml(SAMLSettings(idpEntityId: entity, ssoURL: url, certificates: certs, allowSHA1: json["allowSha1"]?.boolValue ?? false))
    case "oidc":
      guard let issuer = json["issuer"]?.stringValue, let clientId = json["clientId"]?.stringValue, let d = json["discovery"],
        let provider = try? OIDCProviderMetadata.parse(d, expectedIssuer: d["issuer"]?.stringValue ?? "")
      else { return nil }
      self = .oidc(
        OIDCSettings(
          issuer: issuer, tokenIssuer: provider.issuer, clientId: clientId, hasClientSecret: json["hasClientSecret"]?.boolValue ?? false,
          provider: provider))
    default:
      return nil
    }
  }

  public var json: JSONValue {
    switch self {
    case .saml(let s):
      return [
        "protocol": "saml", "idpEntityId": .string(s.idpEntityId), "ssoUrl": .string(s.ssoURL),
        "certificatesPem": .array(s.certificates.map { .string($0.pem) }), "allowSha1": .bool(s.allowSHA1),
      ]
    case .oidc(let o):
      return [
        "protocol": "oidc", "issuer": .string(o.issuer), "clientId": .string(o.clientId), "hasClientSecret": .bool(o.hasClientSecret),
        "discovery": o.provider.json,
      ]
    }
  }

  /// The IdP certificates as shown to admins (S1: `certificates: [{sha256, notAfter}]`).
  public var certificatesJSON: JSONValue {
    guard case .saml(let s) = self else { return [] }
    return .array(
      s.certificates.map {
        ["sha256": .string($0.sha256Fingerprint), "notAfter": .orNull($0.notAfter.map(Self.rfc3339)), "subject": .string($0.subject)]
      })
  }

  static func rfc3339(_ d: Date) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime]
    return f.string(from: d)
  }
}

/// What `sso.configure` was given, validated (S1). Fetching (OIDC discovery,
/// a metadata URL) happens in `ConnectionInput.resolve`.
public struct ConnectionInvalid: Error, Equatable, Sendable {
  public let field: String
  public let message: String
  public let reason: String
  public init(_ field: String, _ message: String, reason: String = "invalid_connection") {
    self.field = field
    self.message = message
    self.reason = reason
  }
}

public enum ConnectionInput: Sendable {
  case saml(entityId: String, ssoURL: String, certificates: [Certificate], allowSHA1: Bool)
  case samlMetadataURL(String, allowSHA1: Bool)
  case oidc(issuer: String, clientId: String, clientSecret: String?)

  public static func parse(_ value: JSONValue, now: Date = Date(), allowHTTPLoopback: Bool = false) throws(ConnectionInvalid) -> ConnectionInput {
    guard let o = value.objectValue else { throw ConnectionInvalid("connection", "'connection' must be an object.") }
    guard let proto = o["protocol"]?.stringValue else {
      throw ConnectionInvalid("connection.protocol", "'connection.protocol' must be \"saml\" or \"oidc\".")
    }
    func allowOnly(_ keys: [String]) throws(ConnectionInvalid) {
      for k in o.keys.sorted() where !keys.contains(k) {
        throw ConnectionInvalid("connection.\(k)", "Unknown field 'connection.\(k)' for protocol \(proto); expected \(keys.joined(separator: ", ")).")
      }
    }
    func text(_ key: String, max: Int) throws(ConnectionInvalid) -> String {
      guard let s = o[key]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines), !s.isEmpty else {
        throw ConnectionInvalid("connection.\(key)", "'connection.\(key)' is required.")
      }
      guard s.utf8.count <= max, !s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
        throw ConnectionInvalid("connection.\(key)", "'connection.\(key)' must be at most \(max) printable characters.")
      }
      return s
    }
    let sha1 = o["allowSha1"]?.boolValue ?? false
    if let v = o["allowSha1"], v.boolValue == nil { throw ConnectionInvalid("connection.allowSha1", "'connection.allowSha1' must be true or false.") }
    switch proto {
    case "saml":
      if o["metadataXml"] != nil {
        try allowOnly(["protocol", "metadataXml", "allowSha1"])
        guard let xml = o["metadataXml"]?.stringValue, !xml.isEmpty else {
          throw ConnectionInvalid("connection.metadataXml", "'connection.metadataXml' must be the IdP's metadata XML.")
        }
        let m: IdPMetadata
        do { m = try IdPMetadata.parse(xml) } catch { throw ConnectionInvalid("connection.metadataXml", error.message) }
        // The SSO URL is where browsers go, never fetched by Roster: plain
        // http on loopback stays allowed there (a local development IdP).
        try checkURL(m.ssoURL, field: "connection.metadataXml", allowQuery: true, allowHTTPLoopback: true)
        try checkCertificates(m.certificates, field: "connection.metadataXml", now: now)
        return .saml(entityId: m.entityId, ssoURL: m.ssoURL, certificates: m.certificates, allowSHA1: sha1)
      }
      if o["metadataUrl"] != nil {
        try allowOnly(["protocol", "metadataUrl", "allowSha1"])
        let url = try text("metadataUrl", max: 2048)
        try checkURL(url, field: "connection.metadataUrl", allowQuery: true, allowHTTPLoopback: allowHTTPLoopback)
        return .samlMetadataURL(url, allowSHA1: sha1)
      }
      try allowOnly(["protocol", "idpEntityId", "ssoUrl", "certificatePem", "certificatesPem", "allowSha1"])
      let entity = try text("idpEntityId", max: 1024)
      if entity.contains(" ") { throw ConnectionInvalid("connection.idpEntityId", "'connection.idpEntityId' must not contain spaces.") }
      let url = try text("ssoUrl", max: 2048)
      try checkURL(url, field: "connection.ssoUrl", allowQuery: true, allowHTTPLoopback: true)
      var pems: [(String, String)] = []
      if let one = o["certificatePem"] {
        guard let s = one.stringValue else { throw ConnectionInvalid("connection.certificatePem", "'connection.certificatePem' must be a PEM string.") }
        pems.append(("connection.certificatePem", s))
      }
      if let many = o["certificatesPem"] {
        guard let list = many.arrayValue, !list.isEmpty, list.count <= 10 else {
          throw ConnectionInvalid("connection.certificatesPem", "'connection.certificatesPem' must be a list of 1 to 10 PEM certificates.")
        }
        for (i, v) in list.enumerated() {
          guard let s = v.stringValue else { throw ConnectionInvalid("connection.certificatesPem[\(i)]", "Each certificate must be a PEM string.") }
          pems.append(("connection.certificatesPem[\(i)]", s))
        }
      }
      guard !pems.isEmpty else {
        throw ConnectionInvalid("connection.certificatePem", "'connection.certificatePem' (or 'certificatesPem', or 'metadataXml') is required.")
      }
      var certs: [Certificate] = []
      for (field, pem) in pems {
        do {
          certs += try Certificate.parsePEM(pem)
        } catch {
          throw ConnectionInvalid(field, "'\(field)' must be a PEM certificate (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----) with valid content.")
        }
        try checkCertificates(certs, field: field, now: now)
      }
      return .saml(entityId: entity, ssoURL: url, certificates: dedupe(certs), allowSHA1: sha1)
    case "oidc":
      try allowOnly(["protocol", "issuer", "clientId", "clientSecret"])
      let issuer = try text("issuer", max: 2048)
      try checkURL(issuer, field: "connection.issuer", allowQuery: false, allowHTTPLoopback: allowHTTPLoopback)
      let clientId = try text("clientId", max: 255)
      var secret: String?
      if let s = o["clientSecret"] {
        guard let v = s.stringValue, !v.isEmpty, v.utf8.count <= 1024 else {
          throw ConnectionInvalid("connection.clientSecret", "'connection.clientSecret' must be a non-empty string of at most 1024 bytes.")
        }
        secret = v
      }
      return .oidc(issuer: issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer, clientId: clientId, clientSecret: secret)
    default:
      throw ConnectionInvalid("connection.protocol", "'connection.protocol' must be \"saml\" or \"oidc\", got '\(proto.prefix(40))'.")
    }
  }

  /// Certificates for `sso.update` (a rotation: same IdP, new certificates).
  public static func certificates(_ value: JSONValue, now: Date = Date()) throws(ConnectionInvalid) -> [Certificate] {
    guard let list = value.arrayValue, !list.isEmpty, list.count <= 10 else {
      throw ConnectionInvalid("certificatesPem", "'certificatesPem' must be a list of 1 to 10 PEM certificates.")
    }
    var certs: [Certificate] = []
    for (i, v) in list.enumerated() {
      guard let pem = v.stringValue, let c = try? Certificate.parsePEM(pem) else {
        throw ConnectionInvalid("certificatesPem[\(i)]", "'certificatesPem[\(i)]' is not a PEM certificate.")
      }
      certs += c
    }
    try checkCertificates(certs, field: "certificatesPem", now: now)
    return dedupe(certs)
  }

  static func dedupe(_ certs: [Certificate]) -> [Certificate] {
    var seen = Set<String>()
    return certs.filter { seen.insert($0.sha256Fingerprint).inserted }
  }

  static func checkCertificates(_ certs: [Certificate], field: String, now: Date) throws(ConnectionInvalid) {
    for c in certs {
      if let notAfter = c.notAfter, notAfter < now {
        throw ConnectionInvalid(
          field, "The IdP certificate \(c.sha256Fingerprint.prefix(16))… expired on \(StoredConnection.rfc3339(notAfter)); download the current one from the IdP.")
      }
      guard let key = c.publicKey, key.kind == .rsa ? key.bits >= 2048 : key.kind == .ec else {
        throw ConnectionInvalid(field, "The IdP certificate's key must be RSA (2048 bits or more) or ECDSA.")
      }
    }
  }

  /// https, or plain http to loopback when the operator allowed it.
  public static func checkURL(_ s: String, field: String, allowQuery: Bool, allowHTTPLoopback: Bool) throws(ConnectionInvalid) {
    guard let u = URLComponents(string: s), let scheme = u.scheme?.lowercased(), let host = u.host, !host.isEmpty else {
      throw ConnectionInvalid(field, "'\(field)' must be an absolute https URL.")
    }
    let loopback = host == "localhost" || host == "127.0.0.1" || host == "::1" || host == "[::1]"
    guard scheme == "https" || (scheme == "http" && loopback && allowHTTPLoopback) else {
      throw ConnectionInvalid(field, "'\(field)' must use https.")
    }
    if u.user != nil || u.password != nil { throw ConnectionInvalid(field, "'\(field)' must not contain credentials.") }
    if u.fragment != nil || (!allowQuery && u.query != nil) {
      throw ConnectionInvalid(field, "'\(field)' must not have a \(allowQuery ? "fragment" : "query or fragment").")
    }
  }
}
