import Foundation
import JSON

/// S1: validation of an SSO connection. Returns the stored form.
public enum SSOConnection {
  public struct Invalid: Error, Equatable {
    public let field: String
    public let message: String
  }

  public static func validate(_ value: JSONValue, now: Date = Date()) throws(Invalid) -> JSONValue {
    guard let o = value.objectValue else { throw Invalid(field: "connection", message: "'connection' must be an object.") }
    guard let proto = o["protocol"]?.stringValue else {
      throw Invalid(field: "connection.protocol", message: "'connection.protocol' must be \"saml\" or \"oidc\".")
    }
    func allowOnly(_ keys: [String]) throws(Invalid) {
      for k in o.keys where !keys.contains(k) {
        throw Invalid(field: "connection.\(k)", message: "Unknown field 'connection.\(k)' for protocol \(proto); expected \(keys.joined(separator: ", ")).")
      }
    }
    func text(_ key: String, max: Int) throws(Invalid) -> String {
      guard let s = o[key]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines), !s.isEmpty else {
        throw Invalid(field: "connection.\(key)", message: "'connection.\(key)' is required.")
      }
      guard s.utf8.count <= max, !s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
        throw Invalid(field: "connection.\(key)", message: "'connection.\(key)' must be at most \(max) printable characters.")
      }
      return s
    }
    switch proto {
    case "saml":
      try allowOnly(["protocol", "idpEntityId", "ssoUrl", "certificatePem"])
      let entity = try text("idpEntityId", max: 1024)
      if entity.contains(" ") { throw Invalid(field: "connection.idpEntityId", message: "'connection.idpEntityId' must not contain spaces.") }
      let url = try text("ssoUrl", max: 2048)
      try checkURL(url, field: "connection.ssoUrl", allowQuery: true)
      guard let pem = o["certificatePem"]?.stringValue else {
        throw Invalid(field: "connection.certificatePem", message: "'connection.certificatePem' is required.")
      }
      let cert = try Certificate.parsePEM(pem)
      if let notAfter = cert.notAfter, notAfter < now {
        throw Invalid(
          field: "connection.certificatePem",
          message: "The IdP certificate expired on \(ISO8601DateFormatter().string(from: notAfter)); download the current one from the IdP.")
      }
      return [
        "protocol": "saml", "idpEntityId": .string(entity), "ssoUrl": .string(url), "certificatePem": .string(cert.normalizedPEM),
        "certificateExpiresAt": cert.notAfter.map { .string(ISO8601DateFormatter().string(from: $0)) } ?? .null,
      ]
    case "oidc":
      try allowOnly(["protocol", "issuer", "clientId"])
      let issuer = try text("issuer", max: 2048)
      try checkURL(issuer, field: "connection.issuer", allowQuery: false)
      let clientId = try text("clientId", max: 255)
      return ["protocol": "oidc", "issuer": .string(issuer), "clientId": .string(clientId)]
    default:
      throw Invalid(field: "connection.protocol", message: "'connection.protocol' must be \"saml\" or \"oidc\", got '\(proto.prefix(40))'.")
    }
  }

  static func checkURL(_ s: String, field: String, allowQuery: Bool) throws(Invalid) {
    guard let u = URLComponents(string: s), let scheme = u.scheme?.lowercased(), let host = u.host, !host.isEmpty else {
      throw Invalid(field: field, message: "'\(field)' must be an absolute https URL.")
    }
    let local = host == "localhost" || host == "127.0.0.1"
    guard scheme == "https" || (scheme == "http" && local) else {
      throw Invalid(field: field, message: "'\(field)' must use https.")
    }
    if u.user != nil || u.password != nil { throw Invalid(field: field, message: "'\(field)' must not contain credentials.") }
    if !allowQuery && (u.query != nil || u.fragment != nil) {
      throw Invalid(field: field, message: "'\(field)' must not have a query or fragment.")
    }
  }
}

/// Just enough X.509 to check a PEM certificate is well-formed DER and read its validity.
public struct Certificate {
  public let der: [UInt8]
  public let notAfter: Date?

  public var normalizedPEM: String {
    let b64 = Data(der).base64EncodedString()
    var lines: [String] = []
    var i = b64.startIndex
    while i < b64.endIndex {
      let j = b64.index(i, offsetBy: 64, limitedBy: b64.endIndex) ?? b64.endIndex
      lines.append(String(b64[i..<j]))
      i = j
    }
    return "-----BEGIN CERTIFICATE-----\n" + lines.joined(separator: "\n") + "\n-----END CERTIFICATE-----\n"
  }

  public static func parsePEM(_ pem: String) throws(SSOConnection.Invalid) -> Certificate {
    func fail(_ m: String) -> SSOConnection.Invalid { SSOConnection.Invalid(field: "connection.certificatePem", message: m) }
    guard let begin = pem.range(of: "-----BEGIN CERTIFICATE-----"), let end = pem.range(of: "-----END CERTIFICATE-----"),
      begin.upperBound <= end.lowerBound
    else { throw fail("'connection.certificatePem' must be a PEM certificate (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----).") }
    let body = pem[begin.upperBound..<end.lowerBound].filter { !$0.isWhitespace }
    guard let data = Data(base64Encoded: String(body)), !data.isEmpty else {
      throw fail("The certificate's base64 content is not valid.")
    }
    let der = [UInt8](data)
    var r = DERReader(bytes: der)
    guard let (tag, content) = r.next(), tag == 0x30, r.atEnd else { throw fail("The certificate is not a DER SEQUENCE.") }
    var cert = DERReader(bytes: Array(der[content]))
    guard let (tbsTag, tbsRange) = cert.next(), tbsTag == 0x30 else { throw fail("The certificate has no tbsCertificate.") }
    guard let (algTag, _) = cert.next(), algTag == 0x30, let (sigTag, _) = cert.next(), sigTag == 0x03, cert.atEnd else {
      throw fail("The certificate's signature fields are malformed.")
    }
    var tbs = DERReader(bytes: Array(cert.bytes[tbsRange]))
    var notAfter: Date?
    if tbs.peekTag() == 0xA0 { _ = tbs.next() }  // explicit version
    guard tbs.next()?.0 == 0x02, tbs.next()?.0 == 0x30, tbs.next()?.0 == 0x30, let (vTag, vRange) = tbs.next(), vTag == 0x30 else {
      throw fail("The certificate's fields are malformed.")
    }
    var validity = DERReader(bytes: Array(tbs.bytes[vRange]))
    _ = validity.next()
    if let (tTag, tRange) = validity.next() {
      notAfter = DERReader.time(tag: tTag, bytes: Array(validity.bytes[tRange]))
    }
    return Certificate(der: der, notAfter: notAfter)
  }
}

struct DERReader {
  let bytes: [UInt8]
  var i = 0

  var atEnd: Bool { i == bytes.count }

  func peekTag() -> UInt8? { i < bytes.count ? bytes[i] : nil }

  /// The next element's tag and content range.
  mutating func next() -> (UInt8, Range<Int>)? {
    guard i + 2 <= bytes.count else { return nil }
    let tag = bytes[i]
    var len = Int(bytes[i + 1])
    var j = i + 2
    if len & 0x80 != 0 {
      let n = len & 0x7F
      guard n >= 1, n <= 4, j + n <= bytes.count else { return nil }
      len = 0
      for k in 0..<n { len = len << 8 | Int(bytes[j + k]) }
      j += n
    }
    guard len >= 0, j + len <= bytes.count else { return nil }
    i = j + len
    return (tag, j..<(j + len))
  }

  static func time(tag: UInt8, bytes: [UInt8]) -> Date? {
    let s = String(decoding: bytes, as: UTF8.self)
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "UTC")
    f.dateFormat = tag == 0x17 ? "yyMMddHHmmss'Z'" : "yyyyMMddHHmmss'Z'"
    return f.date(from: s)
  }
}
