import CCrypto

/// Message digests from libcrypto.
public enum DigestAlgorithm: String, Sendable, CaseIterable {
  case sha1, sha256, sha384, sha512

  var md: OpaquePointer? {
    switch self {
    case .sha1: return EVP_sha1()
    case .sha256: return EVP_sha256()
    case .sha384: return EVP_sha384()
    case .sha512: return EVP_sha512()
    }
  }

  public var byteCount: Int {
    switch self {
    case .sha1: return 20
    case .sha256: return 32
    case .sha384: return 48
    case .sha512: return 64
    }
  }

  public func hash(_ data: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
    var len: UInt32 = 0
    let ok = data.withUnsafeBytes { raw in EVP_Digest(raw.baseAddress, raw.count, &out, &len, md, nil) }
    // EVP_Digest fails only when it cannot allocate; an empty digest then matches nothing.
    return ok == 1 ? Array(out.prefix(Int(len))) : []
  }
}

/// SHA-256, for hashing stored secrets (bearer tokens, single-use links).
public enum SHA256 {
  public static func hash(_ data: [UInt8]) -> [UInt8] { DigestAlgorithm.sha256.hash(data) }
  public static func hex(_ text: String) -> String { hexString(hash(Array(text.utf8))) }
}

public func hexString(_ bytes: [UInt8]) -> String {
  let digits = Array("0123456789abcdef".utf8)
  var out: [UInt8] = []
  out.reserveCapacity(bytes.count * 2)
  for b in bytes {
    out.append(digits[Int(b >> 4)])
    out.append(digits[Int(b & 0xF)])
  }
  return String(decoding: out, as: UTF8.self)
}

/// Equal without revealing where two secrets differ (CRYPTO_memcmp).
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
  guard a.count == b.count else { return false }
  if a.isEmpty { return true }
  return a.withUnsafeBytes { x in b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 } }
}
