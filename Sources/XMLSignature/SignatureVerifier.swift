import Crypto

/// XML-DSig namespaces and algorithm identifiers.
public enum DSig {
  public static let ns = "http://www.w3.org/2000/09/xmldsig#"
  public static let excC14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
  public static let enveloped = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

  static let digests: [String: DigestAlgorithm] = [
    "http://www.w3.org/2000/09/xmldsig#sha1": .sha1,
    "http://www.w3.org/2001/04/xmlenc#sha256": .sha256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": .sha384,
    "http://www.w3.org/2001/04/xmlenc#sha512": .sha512,
  ]

  static let signatures: [String: (SignatureScheme, DigestAlgorithm)] = [
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": (.rsaPKCS1, .sha1),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": (.rsaPKCS1, .sha256),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": (.rsaPKCS1, .sha384),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": (.rsaPKCS1, .sha512),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1": (.ecdsaRaw, .sha1),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": (.ecdsaRaw, .sha256),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": (.ecdsaRaw, .sha384),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": (.ecdsaRaw, .sha512),
  ]
}

/// Why a signature was not accepted. Each maps to a trace reason an admin
/// can act on.
public enum SignatureFailure: Error, Equatable, Sendable {
  /// The Signature element is not the one shape we accept (one SignedInfo,
  /// one Reference, known transforms, …).
  case malformed(String)
  /// SHA-1 where the connection does not allow it, HMAC, or anything unknown.
  case algorithmRefused(String)
  /// The Reference does not point at the element that holds the signature,
  /// or the ID it names is not unique in the document.
  case referenceInvalid(String)
  /// The digest of the referenced element does not match.
  case digestMismatch
  /// The signature does not verify with any configured certificate; when
  /// the message carries a certificate that is not one of them, that is
  /// said separately (`certificateUnknown`) — it is still never used.
  case signatureInvalid
  case certificateUnknown
  /// Canonicalisation failed (fails closed).
  case canonicalization
}

/// Verifies one enveloped XML signature over the element that contains it,
/// with the configured keys only (KeyInfo in the message is never used to
/// verify). Returns the canonical bytes of the signed element — the only
/// bytes callers may read values from.
public struct EnvelopedSignature {
  public let signature: XMLNode
  public let signed: XMLNode

  public init(signature: XMLNode, signed: XMLNode) {
    self.signature = signature
    self.signed = signed
  }

  public struct Verified {
    /// Exclusive C14N of the signed element without the Signature.
    public let canonical: [UInt8]
    /// Which of the given certificates verified it.
    public let certificateIndex: Int
  }

  public func verify(certificates: [Certificate], allowSHA1: Bool, idAttributes: Set<String> = ["ID"]) throws(SignatureFailure) -> Verified {
    let parts = signature.children
    let signedInfos = signature.children("SignedInfo", DSig.ns)
    guard signedInfos.count == 1, let signedInfo = signedInfos.first else { throw .malformed("a Signature needs exactly one SignedInfo") }
    guard signature.children("SignatureValue", DSig.ns).count == 1, let valueNode = signature.child("SignatureValue", DSig.ns) else {
      throw .malformed("a Signature needs exactly one SignatureValue")
    }
    guard parts.allSatisfy({ $0.namespaceURI == DSig.ns && ["SignedInfo", "SignatureValue", "KeyInfo"].contains($0.localName) }) else {
      throw .malformed("unexpected content in the Signature")
    }
    // SignedInfo: CanonicalizationMethod, SignatureMethod, exactly one Reference.
    let info = signedInfo.children
    guard info.count == 3, info[0].is("CanonicalizationMethod", DSig.ns), info[1].is("SignatureMethod", DSig.ns),
      info[2].is("Reference", DSig.ns)
    else { throw .malformed("SignedInfo must hold CanonicalizationMethod, SignatureMethod and exactly one Reference") }
    let c14n = info[0]
    guard c14n.attribute("Algorithm") == DSig.excC14N else {
      throw .algorithmRefused("canonicalization \(c14n.attribute("Algorithm") ?? "none") (only exclusive C14N without comments)")
    }
    let signedInfoPrefixes = Self.prefixList(c14n)
    guard let methodURI = info[1].attribute("Algorithm"), let (scheme, hash) = DSig.signatures[methodURI] else {
      throw .algorithmRefused("signature method \(info[1].attribute("Algorithm") ?? "none")")
    }
    if hash == .sha1 && !allowSHA1 { throw .algorithmRefused("SHA-1 signatures are not allowed for this connection") }

    // The Reference: "#" + the signed element's ID, an ID no other element has.
    let reference = info[2]
    guard let id = signed.attribute("ID"), !id.isEmpty else { throw .referenceInvalid("the signed element has no ID") }
    guard reference.attribute("URI") == "#" + id else { throw .referenceInvalid("the Reference does not point at the element that holds the signature") }
    let sameID = signed.owner.allElements().filter { e in e.attributes.contains { idAttributes.contains($0.name) && $0.value == id } }
    guard sameID.count == 1 else { throw .referenceInvalid("the ID \(id.prefix(80)) appears \(sameID.count) times in the document") }
    let refParts = reference.children
    guard refParts.count == 3, refParts[0].is("Transforms", DSig.ns), refParts[1].is("DigestMethod", DSig.ns),
      refParts[2].is("DigestValue", DSig.ns)
    else { throw .malformed("a Reference must hold Transforms, DigestMethod and DigestValue") }
    var enveloped = false
    var exclusive = false
    var referencePrefixes: [String] = []
    for t in refParts[0].children {
      guard t.is("Transform", DSig.ns) else { throw .malformed("unexpected element in Transforms") }
      switch t.attribute("Algorithm") {
      case DSig.enveloped?: enveloped = true
      case DSig.excC14N?:
        exclusive = true
        referencePrefixes = Self.prefixList(t)
      default: throw .algorithmRefused("transform \(t.attribute("Algorithm") ?? "none")")
      }
    }
    guard enveloped, exclusive else { throw .malformed("the Reference must use the enveloped-signature and exclusive C14N transforms") }
    guard let digestURI = refParts[1].attribute("Algorithm"), let digest = DSig.digests[digestURI] else {
      throw .algorithmRefused("digest \(refParts[1].attribute("Algorithm") ?? "none")")
    }
    if digest == .sha1 && !allowSHA1 { throw .algorithmRefused("SHA-1 digests are not allowed for this connection") }
    guard let expected = Base64.decode(refParts[2].text), expected.count == digest.byteCount else {
      throw .malformed("the DigestValue is not valid base64 of the right length")
    }
    guard let signatureBytes = Base64.decode(valueNode.text), !signatureBytes.isEmpty else { throw .malformed("the SignatureValue is not valid base64") }

    // Digest of the referenced element, then the signature over SignedInfo.
    let canonical: [UInt8]
    let canonicalInfo: [UInt8]
    do {
      canonical = try ExclusiveC14N.canonicalize(signed, excluding: signature, inclusivePrefixes: referencePrefixes)
      canonicalInfo = try ExclusiveC14N.canonicalize(signedInfo, inclusivePrefixes: signedInfoPrefixes)
    } catch {
      throw .canonicalization
    }
    guard constantTimeEqual(digest.hash(canonical), expected) else { throw .digestMismatch }
    for (i, cert) in certificates.enumerated() {
      if let key = cert.publicKey, key.verify(signatureBytes, over: canonicalInfo, digest: hash, scheme: scheme) {
        return Verified(canonical: canonical, certificateIndex: i)
      }
    }
    // Say whether the message came with a certificate we do not know (an
    // attacker's, or the IdP rotated): it is never used either way.
    let ours = Set(certificates.map(\.sha256Fingerprint))
    let embedded = signature.child("KeyInfo", DSig.ns)?.descendants.filter { $0.is("X509Certificate", DSig.ns) } ?? []
    for e in embedded {
      if let c = try? Certificate(base64: e.text), !ours.contains(c.sha256Fingerprint) { throw .certificateUnknown }
    }
    throw .signatureInvalid
  }

  /// The PrefixList of an InclusiveNamespaces child (exc-c14n parameter).
  static func prefixList(_ method: XMLNode) -> [String] {
    guard let inc = method.children.first(where: { $0.localName == "InclusiveNamespaces" && $0.namespaceURI == DSig.excC14N }),
      let list = inc.attribute("PrefixList")
    else { return [] }
    return list.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map { $0 == "#default" ? "" : String($0) }
  }
}
