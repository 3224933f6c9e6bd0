import Crypto
import Foundation
import XMLSignature

/// SAML 2.0 namespaces and identifiers.
public enum SAMLNS {
  public static let protocol_ = "urn:oasis:names:tc:SAML:2.0:protocol"
  public static let assertion = "urn:oasis:names:tc:SAML:2.0:assertion"
  public static let metadata = "urn:oasis:names:tc:SAML:2.0:metadata"
  public static let success = "urn:oasis:names:tc:SAML:2.0:status:Success"
  public static let bearer = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
  public static let emailFormat = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
  public static let postBinding = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
  public static let redirectBinding = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
}

/// What the service provider knows about one connection (P1–P3).
public struct SAMLConnection: Sendable {
  public var idpEntityId: String
  public var certificates: [Certificate]
  public var spEntityId: String
  public var acsURL: String
  public var allowSHA1: Bool

  public init(idpEntityId: String, certificates: [Certificate], spEntityId: String, acsURL: String, allowSHA1: Bool = false) {
    self.idpEntityId = idpEntityId
    self.certificates = certificates
    self.spEntityId = spEntityId
    self.acsURL = acsURL
    self.allowSHA1 = allowSHA1
  }
}

/// A refused response: a stable reason (shown in `sso.traces`) and a detail
/// for the admin. Details name what was wrong, never quote the assertion.
public struct SAMLRefusal: Error, Equatable, Sendable {
  public let reason: String
  public let detail: String
  public init(_ reason: String, _ detail: String) {
    self.reason = reason
    self.detail = detail
  }
}

/// An assertion that passed P2 and P3 (except what needs the database:
/// InResponseTo consumption, replay, IdP-initiated policy). Every value in
/// it was read from the canonical bytes whose signature verified.
public struct ValidatedAssertion: Sendable, Equatable {
  public var assertionId: String
  public var issueInstant: Date
  public var nameId: String
  public var nameIdFormat: String?
  /// Attribute name → values, as the IdP sent them.
  public var attributes: [String: [String]]
  /// The AuthnRequest this answers (nil: IdP-initiated).
  public var inResponseTo: String?
  /// Until when the assertion could be replayed (P4 keeps its ID until then).
  public var validUntil: Date
  public var sessionIndex: String?
  /// Which configured certificate verified it.
  public var certificateIndex: Int
}

/// P2–P3 as a pure function of bytes, connection and clock.
public enum SAMLResponseValidator {
  public static let maxBytes = 256 * 1024
  /// Clock skew allowed on every time check (P3).
  public static let skew: TimeInterval = 180

  public static func validate(xml: [UInt8], connection c: SAMLConnection, now: Date) throws(SAMLRefusal) -> ValidatedAssertion {
    guard xml.count <= maxBytes else { throw SAMLRefusal("too_large", "The SAML response is larger than 256 KiB.") }
    let doc: XMLDoc
    do {
      doc = try XMLDoc(parsing: xml)
    } catch .doctype {
      throw SAMLRefusal("doctype_refused", "The response contains a DOCTYPE; entity declarations are never accepted.")
    } catch {
      throw SAMLRefusal("malformed_xml", "The SAMLResponse is not well-formed XML.")
    }
    guard !doc.hasUnexpectedNodes else {
      throw SAMLRefusal("malformed_xml", "The response contains processing instructions or entity references.")
    }
    guard let root = doc.root, root.is("Response", SAMLNS.protocol_) else {
      throw SAMLRefusal("not_a_response", "The document is not a SAML 2.0 protocol Response.")
    }
    // The IdP's own status first (read unsigned: it can only refuse).
    let status = root.child("Status", SAMLNS.protocol_)?.child("StatusCode", SAMLNS.protocol_)
    guard status?.attribute("Value") == SAMLNS.success else {
      let second = status?.child("StatusCode", SAMLNS.protocol_)?.attribute("Value").map { " / " + $0 } ?? ""
      let message = root.child("Status", SAMLNS.protocol_)?.child("StatusMessage", SAMLNS.protocol_)?.trimmedText ?? ""
      throw SAMLRefusal(
        "idp_status",
        "The IdP answered \(status?.attribute("Value") ?? "without a status")\(second)\(message.isEmpty ? "" : ": " + String(message.prefix(200)))")
    }
    let all = doc.allElements()
    if all.contains(where: { $0.is("EncryptedAssertion", SAMLNS.assertion) }) {
      throw SAMLRefusal("encrypted_assertion_unsupported", "Encrypted assertions are not supported; turn assertion encryption off in the IdP.")
    }
    let assertions = all.filter { $0.is("Assertion", SAMLNS.assertion) }
    guard assertions.count == 1, let assertion = assertions.first else {
      throw SAMLRefusal("assertion_count", "The response must hold exactly one Assertion; it holds \(assertions.count).")
    }
    guard assertion.parent.map({ $0 == root }) == true else {
      throw SAMLRefusal("assertion_misplaced", "The Assertion is not a direct child of the Response.")
    }
    // Signatures only where they mean something: on the Response, on the Assertion.
    let signatures = all.filter { $0.is("Signature", DSig.ns) }
    let onResponse = root.children("Signature", DSig.ns)
    let onAssertion = assertion.children("Signature", DSig.ns)
    guard onResponse.count <= 1, onAssertion.count <= 1, signatures.count == onResponse.count + onAssertion.count else {
      throw SAMLRefusal("signature_misplaced", "Signatures may appear once on the Response and once on the Assertion, nowhere else.")
    }
    guard !signatures.isEmpty else {
      throw SAMLRefusal("signature_missing", "Neither the Response nor the Assertion is signed; sign the assertion (or the response) in the IdP.")
    }
    var responseCanonical: [UInt8]?
    var assertionCanonical: [UInt8]?
    var certificateIndex = 0
    for (sig, signed) in [(onResponse.first, root), (onAssertion.first, assertion)] {
      guard let sig else { continue }
      do {
        let v = try EnvelopedSignature(signature: sig, signed: signed).verify(certificates: c.certificates, allowSHA1: c.allowSHA1)
        certificateIndex = v.certificateIndex
        if signed == root { responseCanonical = v.canonical } else { assertionCanonical = v.canonical }
      } catch {
        throw refusal(error)
      }
    }
    // Read everything from the verified bytes.
    let verifiedAssertionDoc: XMLDoc
    let verifiedResponse: XMLNode?
    let responseDoc: XMLDoc?
    do {
      if let bytes = assertionCanonical {
        verifiedAssertionDoc = try XMLDoc(parsing: bytes)
        if let r = responseCanonical {
          responseDoc = try XMLDoc(parsing: r)
          verifiedResponse = responseDoc?.root
        } else {
          responseDoc = nil
          verifiedResponse = nil
        }
      } else if let r = responseCanonical {
        verifiedAssertionDoc = try XMLDoc(parsing: r)
        responseDoc = nil
        verifiedResponse = verifiedAssertionDoc.root
      } else {
        throw SAMLRefusal("signature_missing", "No signature covers the Assertion.")
      }
    } catch let e as SAMLRefusal {
      throw e
    } catch {
      throw SAMLRefusal("canonicalization_failed", "The signed part could not be read back.")
    }
    let a: XMLNode
    if assertionCanonical != nil {
      guard let r = verifiedAssertionDoc.root, r.is("Assertion", SAMLNS.assertion) else {
        throw SAMLRefusal("canonicalization_failed", "The signed Assertion could not be read back.")
      }
      a = r
    } else {
      guard let r = verifiedAssertionDoc.root, let child = r.children("Assertion", SAMLNS.assertion).first else {
        throw SAMLRefusal("canonicalization_failed", "The signed Response holds no Assertion.")
      }
      a = child
    }
    _ = responseDoc  // keeps the verified Response document alive while `verifiedResponse` is used

    // P3.
    if let destination = root.attribute("Destination"), destination != c.acsURL {
      throw SAMLRefusal("destination_mismatch", "The response's Destination is \(destination.prefix(300)), not this ACS URL (\(c.acsURL)).")
    }
    if let responseIssuer = (verifiedResponse ?? root).child("Issuer", SAMLNS.assertion)?.trimmedText, responseIssuer != c.idpEntityId {
      throw SAMLRefusal("issuer_mismatch", "The response's Issuer is \(responseIssuer.prefix(300)), not the configured IdP entity id.")
    }
    guard a.attribute("Version") == "2.0" else { throw SAMLRefusal("malformed_assertion", "The Assertion is not SAML 2.0.") }
    guard let assertionId = a.attribute("ID"), !assertionId.isEmpty else { throw SAMLRefusal("malformed_assertion", "The Assertion has no ID.") }
    guard let issuer = a.child("Issuer", SAMLNS.assertion)?.trimmedText, issuer == c.idpEntityId else {
      throw SAMLRefusal(
        "issuer_mismatch",
        "The assertion's Issuer is \(a.child("Issuer", SAMLNS.assertion)?.trimmedText.prefix(300) ?? "missing"), not the configured IdP entity id (\(c.idpEntityId)).")
    }
    guard let issueInstant = a.attribute("IssueInstant").flatMap(XSDateTime.parse) else {
      throw SAMLRefusal("malformed_assertion", "The Assertion's IssueInstant is missing or not a dateTime.")
    }
    // Conditions: times and audience (exact match, no prefixes).
    guard let conditions = a.child("Conditions", SAMLNS.assertion) else {
      throw SAMLRefusal("audience_mismatch", "The assertion has no Conditions (and so no AudienceRestriction).")
    }
    if let nb = conditions.attribute("NotBefore") {
      guard let t = XSDateTime.parse(nb) else { throw SAMLRefusal("malformed_assertion", "Conditions NotBefore is not a dateTime.") }
      if t > now.addingTimeInterval(skew) { throw SAMLRefusal("not_yet_valid", "The assertion is not valid before \(nb); check the IdP's clock.") }
    }
    var validUntil = now.addingTimeInterval(skew)
    if let na = conditions.attribute("NotOnOrAfter") {
      guard let t = XSDateTime.parse(na) else { throw SAMLRefusal("malformed_assertion", "Conditions NotOnOrAfter is not a dateTime.") }
      if t <= now.addingTimeInterval(-skew) { throw SAMLRefusal("expired", "The assertion expired at \(na).") }
      validUntil = max(validUntil, t.addingTimeInterval(skew))
    }
    let restrictions = conditions.children("AudienceRestriction", SAMLNS.assertion)
    guard !restrictions.isEmpty else { throw SAMLRefusal("audience_mismatch", "The assertion has no AudienceRestriction.") }
    for r in restrictions {
      let audiences = r.children("Audience", SAMLNS.assertion).map(\.trimmedText)
      guard audiences.contains(c.spEntityId) else {
        throw SAMLRefusal(
          "audience_mismatch",
          "The assertion is for \(audiences.map { String($0.prefix(200)) }.joined(separator: ", ")), not this SP entity id (\(c.spEntityId)).")
      }
    }
    // Subject: the NameID and a bearer confirmation for this ACS.
    guard let subject = a.child("Subject", SAMLNS.assertion) else { throw SAMLRefusal("malformed_assertion", "The assertion has no Subject.") }
    let nameIdNode = subject.child("NameID", SAMLNS.assertion)
    let bearers = subject.children("SubjectConfirmation", SAMLNS.assertion).filter { $0.attribute("Method") == SAMLNS.bearer }
    guard !bearers.isEmpty else { throw SAMLRefusal("malformed_assertion", "The assertion has no bearer SubjectConfirmation.") }
    var confirmed: XMLNode?
    var firstProblem: SAMLRefusal?
    for b in bearers {
      guard let data = b.child("SubjectConfirmationData", SAMLNS.assertion) else {
        firstProblem = firstProblem ?? SAMLRefusal("recipient_mismatch", "The bearer confirmation has no SubjectConfirmationData.")
        continue
      }
      guard data.attribute("Recipient") == c.acsURL else {
        firstProblem =
          firstProblem
          ?? SAMLRefusal("recipient_mismatch", "The Recipient is \(data.attribute("Recipient")?.prefix(300) ?? "missing"), not this ACS URL (\(c.acsURL)).")
        continue
      }
      guard let na = data.attribute("NotOnOrAfter").flatMap(XSDateTime.parse) else {
        firstProblem = firstProblem ?? SAMLRefusal("malformed_assertion", "The bearer confirmation has no NotOnOrAfter.")
        continue
      }
      guard na > now.addingTimeInterval(-skew) else {
        firstProblem = firstProblem ?? SAMLRefusal("expired", "The bearer confirmation expired at \(data.attribute("NotOnOrAfter") ?? "").")
        continue
      }
      if let nb = data.attribute("NotBefore").flatMap(XSDateTime.parse), nb > now.addingTimeInterval(skew) {
        firstProblem = firstProblem ?? SAMLRefusal("not_yet_valid", "The bearer confirmation is not valid yet.")
        continue
      }
      validUntil = max(validUntil, na.addingTimeInterval(skew))
      confirmed = data
      break
    }
    guard let confirmation = confirmed else { throw firstProblem ?? SAMLRefusal("recipient_mismatch", "No bearer confirmation matches.") }
    // InResponseTo: from signed bytes only; an unsigned Response claiming
    // another request than the signed assertion is refused.
    let signedInResponseTo = confirmation.attribute("InResponseTo") ?? verifiedResponse?.attribute("InResponseTo")
    if let claimed = root.attribute("InResponseTo"), let signedValue = signedInResponseTo, claimed != signedValue {
      throw SAMLRefusal("in_response_to_mismatch", "The Response and the Assertion answer different requests.")
    }
    if signedInResponseTo == nil, root.attribute("InResponseTo") != nil {
      throw SAMLRefusal("in_response_to_mismatch", "The Response names a request the signed assertion does not.")
    }
    var attributes: [String: [String]] = [:]
    for statement in a.children("AttributeStatement", SAMLNS.assertion) {
      for attr in statement.children("Attribute", SAMLNS.assertion) {
        guard let name = attr.attribute("Name") else { continue }
        attributes[name, default: []] += attr.children("AttributeValue", SAMLNS.assertion).map(\.trimmedText)
      }
    }
    let sessionIndex = a.child("AuthnStatement", SAMLNS.assertion)?.attribute("SessionIndex")
    return ValidatedAssertion(
      assertionId: assertionId, issueInstant: issueInstant, nameId: nameIdNode?.trimmedText ?? "", nameIdFormat: nameIdNode?.attribute("Format"),
      attributes: attributes, inResponseTo: signedInResponseTo, validUntil: validUntil, sessionIndex: sessionIndex,
      certificateIndex: certificateIndex)
  }

  static func refusal(_ e: SignatureFailure) -> SAMLRefusal {
    switch e {
    case .malformed(let d): return SAMLRefusal("signature_malformed", "The signature is malformed: \(d).")
    case .algorithmRefused(let d): return SAMLRefusal("algorithm_refused", "The signature uses an algorithm Roster refuses: \(d).")
    case .referenceInvalid(let d): return SAMLRefusal("reference_invalid", "The signature's reference is invalid: \(d).")
    case .digestMismatch: return SAMLRefusal("digest_mismatch", "The signed content was changed after signing.")
    case .signatureInvalid: return SAMLRefusal("signature_invalid", "The signature does not verify with the configured certificates.")
    case .certificateUnknown:
      return SAMLRefusal(
        "certificate_unknown", "The response was signed with a certificate that is not configured for this connection (did the IdP rotate it?).")
    case .canonicalization: return SAMLRefusal("canonicalization_failed", "The signed content could not be canonicalized.")
    }
  }
}

/// xs:dateTime as SAML uses it (UTC "Z" or an offset, optional fraction).
public enum XSDateTime {
  public static func parse(_ s: String) -> Date? {
    let b = Array(s.utf8)
    guard b.count >= 20, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54, b[13] == 0x3A, b[16] == 0x3A else { return nil }
    func num(_ r: Range<Int>) -> Int? {
      var v = 0
      for i in r {
        guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
        v = v * 10 + Int(b[i] - 0x30)
      }
      return v
    }
    guard let year = num(0..<4), let month = num(5..<7), let day = num(8..<10), let hour = num(11..<13), let minute = num(14..<16),
      let second = num(17..<19), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
    else { return nil }
    var i = 19
    var fraction = 0.0
    if i < b.count, b[i] == 0x2E {
      i += 1
      var scale = 0.1
      let start = i
      while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 {
        fraction += Double(b[i] - 0x30) * scale
        scale /= 10
        i += 1
      }
      if i == start { return nil }
    }
    var offset = 0
    guard i < b.count else { return nil }
    if b[i] == 0x5A {
      i += 1
    } else if b[i] == 0x2B || b[i] == 0x2D, i + 6 == b.count, b[i + 3] == 0x3A, let oh = num((i + 1)..<(i + 3)), let om = num((i + 4)..<(i + 6)) {
      offset = (oh * 3600 + om * 60) * (b[i] == 0x2B ? 1 : -1)
      i += 6
    } else {
      return nil
    }
    guard i == b.count else { return nil }
    var t = tm()
    t.tm_year = Int32(year - 1900)
    t.tm_mon = Int32(month - 1)
    t.tm_mday = Int32(day)
    t.tm_hour = Int32(hour)
    t.tm_min = Int32(minute)
    t.tm_sec = Int32(second)
    let epoch = timegm(&t)
    return Date(timeIntervalSince1970: TimeInterval(epoch - offset) + fraction)
  }

  public static func format(_ d: Date) -> String {
    var t = time_t(d.timeIntervalSince1970.rounded(.down))
    var tmv = tm()
    gmtime_r(&t, &tmv)
    return String(
      format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1, Int(tmv.tm_mday), Int(tmv.tm_hour),
      Int(tmv.tm_min), Int(tmv.tm_sec))
  }
}
