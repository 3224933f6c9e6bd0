import CCrypto
import Foundation

/// A public key held by libcrypto (EVP_PKEY). Immutable after creation;
/// OpenSSL allows concurrent verifications with one key, hence Sendable.
public final class PublicKey: @unchecked Sendable {
  let pkey: OpaquePointer

  init(owning pkey: OpaquePointer) { self.pkey = pkey }
  deinit { EVP_PKEY_free(pkey) }

  public enum Kind: Sendable, Equatable { case rsa, ec, other }

  public var kind: Kind {
    switch EVP_PKEY_get_base_id(pkey) {
    case EVP_PKEY_RSA: return .rsa
    case EVP_PKEY_EC: return .ec
    default: return .other
    }
  }

  /// Key size in bits (RSA modulus, EC field).
  public var bits: Int { Int(EVP_PKEY_get_bits(pkey)) }

  /// Verifies `signature` over `data`. `Padding.pss` is RSASSA-PSS with a
  /// salt as long as the digest (RFC 7518 PS256); `ecdsaRaw` takes the r‖s
  /// form XML-DSig and JWS use and converts it to DER for OpenSSL.
  public func verify(_ signature: [UInt8], over data: [UInt8], digest: DigestAlgorithm, scheme: SignatureScheme) -> Bool {
    var sig = signature
    switch (scheme, kind) {
    case (.rsaPKCS1, .rsa), (.rsaPSS, .rsa): break
    case (.ecdsaRaw, .ec):
      guard let der = Self.ecdsaRawToDER(signature) else { return false }
      sig = der
    default: return false  // the key does not match the algorithm
    }
    guard let ctx = EVP_MD_CTX_new() else { return false }
    defer { EVP_MD_CTX_free(ctx) }
    var pctx: OpaquePointer?
    guard EVP_DigestVerifyInit(ctx, &pctx, digest.md, nil, pkey) == 1 else { return false }
    if scheme == .rsaPSS {
      guard let pctx, EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0,
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0
      else { return false }
    }
    let rc = sig.withUnsafeBytes { s in
      data.withUnsafeBytes { d in
        EVP_DigestVerify(ctx, s.baseAddress?.assumingMemoryBound(to: UInt8.self), s.count, d.baseAddress?.assumingMemoryBound(to: UInt8.self), d.count)
      }
    }
    ERR_clear_error()
    return rc == 1
  }

  /// r‖s (equal halves) → DER ECDSA-Sig-Value.
  static func ecdsaRawToDER(_ raw: [UInt8]) -> [UInt8]? {
    guard raw.count >= 2, raw.count % 2 == 0, raw.count <= 264 else { return nil }
    let half = raw.count / 2
    guard let sig = ECDSA_SIG_new() else { return nil }
    defer { ECDSA_SIG_free(sig) }
    let r = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress, Int32(half), nil) }
    let s = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress! + half, Int32(half), nil) }
    guard let r, let s else {
      BN_free(r)
      BN_free(s)
      return nil
    }
    guard ECDSA_SIG_set0(sig, r, s) == 1 else {
      BN_free(r)
      BN_free(s)
      return nil
    }
    var out: UnsafeMutablePointer<UInt8>?
    let len = i2d_ECDSA_SIG(sig, &out)
    guard len > 0, let out else { return nil }
    defer { roster_OPENSSL_free(out) }
    return Array(UnsafeBufferPointer(start: out, count: Int(len)))
  }

  // MARK: JWK

  public enum JWKError: Error, Equatable { case unsupported(String), malformed(String) }

  /// An RSA key from its modulus and exponent (big-endian bytes).
  public static func rsa(modulus n: [UInt8], exponent e: [UInt8]) throws(JWKError) -> PublicKey {
    guard !n.isEmpty, !e.isEmpty, n.count <= 2048, e.count <= 16 else { throw .malformed("RSA modulus or exponent missing or too long") }
    return try fromParams(type: "RSA", [.bignum(OSSL_PKEY_PARAM_RSA_N, n), .bignum(OSSL_PKEY_PARAM_RSA_E, e)])
  }

  /// An EC key on P-256, P-384 or P-521 from its affine coordinates.
  public static func ec(curve: String, x: [UInt8], y: [UInt8]) throws(JWKError) -> PublicKey {
    let groups = ["P-256": ("prime256v1", 32), "P-384": ("secp384r1", 48), "P-521": ("secp521r1", 66)]
    guard let (group, size) = groups[curve] else { throw .unsupported("curve \(curve)") }
    guard x.count == size, y.count == size else { throw .malformed("EC coordinates of the wrong length") }
    return try fromParams(
      type: "EC", [.utf8(OSSL_PKEY_PARAM_GROUP_NAME, Array(group.utf8) + [0]), .octets(OSSL_PKEY_PARAM_PUB_KEY, [4] + x + y)])
  }

  enum Param {
    case bignum(String, [UInt8])
    case utf8(String, [UInt8])
    case octets(String, [UInt8])
  }

  /// OSSL_PARAM_BLD keeps pointers to what it is given until
  /// OSSL_PARAM_BLD_to_param copies it: everything pushed here lives in
  /// buffers owned by this function until then.
  static func fromParams(type: String, _ params: [Param]) throws(JWKError) -> PublicKey {
    guard let bld = OSSL_PARAM_BLD_new() else { throw .malformed("out of memory") }
    defer { OSSL_PARAM_BLD_free(bld) }
    var bignums: [OpaquePointer?] = []
    var buffers: [UnsafeMutableRawPointer] = []
    defer {
      bignums.forEach { BN_free($0) }
      buffers.forEach { free($0) }
    }
    // Parameter names too: the builder keeps the key pointer, not a copy.
    func name(_ s: String) -> UnsafeMutablePointer<CChar>? {
      let p = strdup(s)
      if let p { buffers.append(UnsafeMutableRawPointer(p)) }
      return p
    }
    for p in params {
      switch p {
      case .bignum(let key, let bytes):
        let bn = bytes.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress, Int32(bytes.count), nil) }
        bignums.append(bn)
        guard bn != nil, OSSL_PARAM_BLD_push_BN(bld, name(key), bn) == 1 else { throw .malformed("the key parameters are invalid") }
      case .utf8(let rawKey, let bytes), .octets(let rawKey, let bytes):
        let key = name(rawKey)
        guard let buf = malloc(bytes.count) else { throw .malformed("out of memory") }
        buffers.append(buf)
        bytes.withUnsafeBytes { buf.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        let rc: Int32
        if case .utf8 = p {
          rc = OSSL_PARAM_BLD_push_utf8_string(bld, key, buf.assumingMemoryBound(to: CChar.self), 0)
        } else {
          rc = OSSL_PARAM_BLD_push_octet_string(bld, key, buf, bytes.count)
        }
        guard rc == 1 else { throw .malformed("the key parameters are invalid") }
      }
    }
    guard let built = OSSL_PARAM_BLD_to_param(bld) else { throw .malformed("the key parameters are invalid") }
    defer { OSSL_PARAM_free(built) }
    guard let ctx = EVP_PKEY_CTX_new_from_name(nil, type, nil) else { throw .unsupported(type) }
    defer { EVP_PKEY_CTX_free(ctx) }
    var pkey: OpaquePointer?
    guard EVP_PKEY_fromdata_init(ctx) == 1, EVP_PKEY_fromdata(ctx, &pkey, roster_EVP_PKEY_PUBLIC_KEY(), built) == 1, let pkey else {
      ERR_clear_error()
      throw .malformed("libcrypto refused the key")
    }
    return PublicKey(owning: pkey)
  }
}

public enum SignatureScheme: Sendable, Equatable {
  case rsaPKCS1, rsaPSS, ecdsaRaw
}

/// An X.509 certificate (the IdP's signing certificate). Only its public key
/// and validity are used: trust comes from the admin configuring it.
public final class Certificate: @unchecked Sendable {
  let x509: OpaquePointer
  public let der: [UInt8]

  public enum ParseError: Error, Equatable { case notPEM, notDER(String) }

  public init(der: [UInt8]) throws(ParseError) {
    var p: UnsafePointer<UInt8>? = nil
    let x: OpaquePointer? = der.withUnsafeBufferPointer { buf in
      p = buf.baseAddress
      return d2i_X509(nil, &p, buf.count)
    }
    ERR_clear_error()
    guard let x else { throw .notDER("not a DER X.509 certificate") }
    x509 = x
    self.der = der
  }

  deinit { X509_free(x509) }

  /// Every certificate in a PEM text (a bundle may hold several).
  public static func parsePEM(_ text: String) throws(ParseError) -> [Certificate] {
    var out: [Certificate] = []
    var rest = Substring(text)
    while let begin = rest.range(of: "-----BEGIN CERTIFICATE-----") {
      guard let end = rest.range(of: "-----END CERTIFICATE-----", range: begin.upperBound..<rest.endIndex) else { throw .notPEM }
      guard let der = Base64.decode(String(rest[begin.upperBound..<end.lowerBound])), !der.isEmpty else {
        throw .notDER("the certificate's base64 is not valid")
      }
      out.append(try Certificate(der: der))
      rest = rest[end.upperBound...]
    }
    if out.isEmpty { throw .notPEM }
    return out
  }

  /// From base64 DER as it appears in metadata (`<ds:X509Certificate>`).
  public convenience init(base64: String) throws(ParseError) {
    guard let der = Base64.decode(base64), !der.isEmpty else { throw .notDER("the certificate's base64 is not valid") }
    try self.init(der: der)
  }

  public var pem: String {
    let b64 = Base64.encode(der)
    var lines: [Substring] = []
    var i = b64.startIndex
    while i < b64.endIndex {
      let j = b64.index(i, offsetBy: 64, limitedBy: b64.endIndex) ?? b64.endIndex
      lines.append(b64[i..<j])
      i = j
    }
    return "-----BEGIN CERTIFICATE-----\n" + lines.joined(separator: "\n") + "\n-----END CERTIFICATE-----\n"
  }

  public var sha256Fingerprint: String { hexString(SHA256.hash(der)) }

  public var notAfter: Date? { Self.date(X509_get0_notAfter(x509)) }
  public var notBefore: Date? { Self.date(X509_get0_notBefore(x509)) }

  static func date(_ t: UnsafePointer<ASN1_TIME>?) -> Date? {
    guard let t else { return nil }
    var tmv = tm()
    guard ASN1_TIME_to_tm(t, &tmv) == 1 else { return nil }
    return Date(timeIntervalSince1970: TimeInterval(timegm(&tmv)))
  }

  public var publicKey: PublicKey? {
    guard let k = X509_get_pubkey(x509) else { return nil }  // a new reference, freed by PublicKey
    return PublicKey(owning: k)
  }

  /// The subject as one line (for admins comparing with their IdP).
  public var subject: String {
    guard let name = X509_get_subject_name(x509), let bio = BIO_new(BIO_s_mem()) else { return "" }
    defer { BIO_free(bio) }
    _ = X509_NAME_print_ex(bio, name, 0, roster_XN_FLAG_RFC2253())
    var ptr: UnsafeMutablePointer<CChar>?
    let n = roster_BIO_get_mem_data(bio, &ptr)
    guard n > 0, let ptr else { return "" }
    return String(decoding: UnsafeRawBufferPointer(start: ptr, count: n), as: UTF8.self)
  }
}

/// AES-256-GCM for secrets at rest (OIDC client secrets, P10): a random
/// 12-byte nonce, the ciphertext and the 16-byte tag, in that order.
public enum AESGCM {
  public enum Failure: Error, Equatable { case badKey, tampered }

  public static func seal(_ plaintext: [UInt8], key: [UInt8], associated: [UInt8] = []) throws(Failure) -> [UInt8] {
    guard key.count == 32 else { throw .badKey }
    let nonce = Secrets.randomBytes(12)
    guard let ctx = EVP_CIPHER_CTX_new() else { throw .badKey }
    defer { EVP_CIPHER_CTX_free(ctx) }
    var out = [UInt8](repeating: 0, count: plaintext.count + 16)
    var len: Int32 = 0
    var total = 0
    guard EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce) == 1 else { throw .badKey }
    if !associated.isEmpty, EVP_EncryptUpdate(ctx, nil, &len, associated, Int32(associated.count)) != 1 { throw .badKey }
    if !plaintext.isEmpty {
      guard EVP_EncryptUpdate(ctx, &out, &len, plaintext, Int32(plaintext.count)) == 1 else { throw .badKey }
      total = Int(len)
    }
    let final = out.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx, $0.baseAddress! + total, &len) }
    guard final == 1 else { throw .badKey }
    total += Int(len)
    var tag = [UInt8](repeating: 0, count: 16)
    guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1 else { throw .badKey }
    return nonce + out.prefix(total) + tag
  }

  public static func open(_ sealed: [UInt8], key: [UInt8], associated: [UInt8] = []) throws(Failure) -> [UInt8] {
    guard key.count == 32 else { throw .badKey }
    guard sealed.count >= 28 else { throw .tampered }
    let nonce = Array(sealed[0..<12])
    let body = Array(sealed[12..<(sealed.count - 16)])
    var tag = Array(sealed.suffix(16))
    guard let ctx = EVP_CIPHER_CTX_new() else { throw .badKey }
    defer { EVP_CIPHER_CTX_free(ctx) }
    var out = [UInt8](repeating: 0, count: body.count + 16)
    var len: Int32 = 0
    var total = 0
    guard EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce) == 1 else { throw .badKey }
    if !associated.isEmpty, EVP_DecryptUpdate(ctx, nil, &len, associated, Int32(associated.count)) != 1 { throw .tampered }
    if !body.isEmpty {
      guard EVP_DecryptUpdate(ctx, &out, &len, body, Int32(body.count)) == 1 else { throw .tampered }
      total = Int(len)
    }
    guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1 else { throw .tampered }
    let final = out.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress! + total, &len) }
    ERR_clear_error()
    guard final == 1 else { throw .tampered }
    total += Int(len)
    return Array(out.prefix(total))
  }
}
