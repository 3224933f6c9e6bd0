import CCrypto

/// Random secrets from libcrypto's CSPRNG.
public enum Secrets {
  public static func randomBytes(_ count: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    if count > 0, RAND_bytes(&out, Int32(count)) != 1 {
      // RAND_bytes fails only when the kernel cannot seed it; never hand out zeros.
      fatalError("the system random number generator failed")
    }
    return out
  }

  /// RFC 4648 base32 without padding, lowercase (DNS-friendly). 20 bytes → 32 characters = 160 bits.
  public static func base32(_ bytes: [UInt8]) -> String {
    let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
    var out: [UInt8] = []
    var buffer: UInt32 = 0
    var bits = 0
    for b in bytes {
      buffer = (buffer << 8) | UInt32(b)
      bits += 8
      while bits >= 5 {
        out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
        bits -= 5
      }
    }
    if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
    return String(decoding: out, as: UTF8.self)
  }

  /// A token with `bits` bits of entropy, base32-encoded.
  public static func token(bits: Int = 160) -> String { base32(randomBytes((bits + 7) / 8)) }

  /// A token with `bits` bits of entropy, base64url without padding — for URLs (codes, states).
  public static func urlToken(bits: Int = 256) -> String { Base64URL.encode(randomBytes((bits + 7) / 8)) }
}

/// RFC 4648 §5 base64url without padding (JWS, PKCE).
public enum Base64URL {
  public static func encode(_ bytes: [UInt8]) -> String {
    var s = Array(Base64.encode(bytes).utf8)
    while s.last == 0x3D { s.removeLast() }
    return String(decoding: s.map { $0 == 0x2B ? 0x2D : $0 == 0x2F ? 0x5F : $0 }, as: UTF8.self)
  }

  public static func decode(_ text: String) -> [UInt8]? {
    var s: [UInt8] = []
    s.reserveCapacity(text.utf8.count + 2)
    for c in text.utf8 {
      switch c {
      case 0x41...0x5A, 0x61...0x7A, 0x30...0x39: s.append(c)
      case 0x2D: s.append(0x2B)
      case 0x5F: s.append(0x2F)
      default: return nil
      }
    }
    switch s.count % 4 {
    case 2: s += [0x3D, 0x3D]
    case 3: s.append(0x3D)
    case 1: return nil
    default: break
    }
    return Base64.decode(s)
  }
}

/// Standard base64. Decoding skips whitespace (SAML wraps its lines) and
/// refuses anything else outside the alphabet.
public enum Base64 {
  static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

  public static func encode(_ bytes: [UInt8]) -> String {
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var i = 0
    while i + 3 <= bytes.count {
      let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
      out.append(alphabet[Int(n >> 18 & 63)])
      out.append(alphabet[Int(n >> 12 & 63)])
      out.append(alphabet[Int(n >> 6 & 63)])
      out.append(alphabet[Int(n & 63)])
      i += 3
    }
    switch bytes.count - i {
    case 1:
      let n = UInt32(bytes[i]) << 16
      out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], 0x3D, 0x3D]
    case 2:
      let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
      out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], 0x3D]
    default: break
    }
    return String(decoding: out, as: UTF8.self)
  }

  public static func decode(_ text: String) -> [UInt8]? { decode(Array(text.utf8)) }

  public static func decode(_ input: [UInt8]) -> [UInt8]? {
    var values: [UInt8] = []
    values.reserveCapacity(input.count)
    var padding = 0
    for c in input {
      switch c {
      case 0x20, 0x09, 0x0A, 0x0D: continue
      case 0x3D:
        padding += 1
        continue
      default: break
      }
      if padding > 0 { return nil }  // data after '='
      switch c {
      case 0x41...0x5A: values.append(c - 0x41)
      case 0x61...0x7A: values.append(c - 0x61 + 26)
      case 0x30...0x39: values.append(c - 0x30 + 52)
      case 0x2B: values.append(62)
      case 0x2F: values.append(63)
      default: return nil
      }
    }
    guard padding <= 2, (values.count + padding) % 4 == 0 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(values.count * 3 / 4)
    var i = 0
    while i + 4 <= values.count {
      let n = UInt32(values[i]) << 18 | UInt32(values[i + 1]) << 12 | UInt32(values[i + 2]) << 6 | UInt32(values[i + 3])
      out.append(UInt8(n >> 16 & 255))
      out.append(UInt8(n >> 8 & 255))
      out.append(UInt8(n & 255))
      i += 4
    }
    switch values.count - i {
    case 2:
      let n = UInt32(values[i]) << 18 | UInt32(values[i + 1]) << 12
      out.append(UInt8(n >> 16 & 255))
    case 3:
      let n = UInt32(values[i]) << 18 | UInt32(values[i + 1]) << 12 | UInt32(values[i + 2]) << 6
      out += [UInt8(n >> 16 & 255), UInt8(n >> 8 & 255)]
    case 1: return nil
    default: break
    }
    return out
  }
}
