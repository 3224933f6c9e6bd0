import Foundation

/// Why a domain was refused (D2). `reason` is the stable RPC reason.
public struct DomainError: Error, Equatable, Sendable {
  public let reason: String
  public let message: String
  public init(_ reason: String, _ message: String) {
    self.reason = reason
    self.message = message
  }
}

/// Domain-name normalisation: lowercase, no trailing dot, IDNA labels to
/// punycode (`bücher.de` → `xn--bcher-kva.de`), then LDH and length rules.
public enum DomainName {
  public static func normalize(_ input: String) throws(DomainError) -> String {
    // Fast path for plain ASCII (nearly every address): no Foundation calls.
    if input.utf8.allSatisfy({ $0 < 0x80 }) { return try normalizeASCII(Array(input.utf8)) }
    // UTS 46 mapping first: full-width and other compatibility characters,
    // case, and the characters mapped to nothing.
    var s = UTS46.map(input.trimmingCharacters(in: .whitespaces))
    if s.isEmpty { throw DomainError("invalid_domain", "The domain is empty.") }
    if s.utf8.allSatisfy({ $0 < 0x80 }) { return try normalizeASCII(Array(s.utf8)) }
    if s.contains("://") || s.contains("/") || s.contains("@") || s.contains(":") || s.contains(" ") || s.contains("*") {
      throw DomainError("invalid_domain", "Expected a bare domain such as example.com, without scheme, path, port, '@' or wildcard.")
    }
    // IDNA dot variants (ideographic full stop etc.) separate labels too.
    s = s.replacingOccurrences(of: "\u{3002}", with: ".").replacingOccurrences(of: "\u{FF0E}", with: ".")
      .replacingOccurrences(of: "\u{FF61}", with: ".")
    if s.hasSuffix(".") { s.removeLast() }
    if s.isEmpty || s.hasPrefix(".") || s.contains("..") {
      throw DomainError("invalid_domain", "The domain has an empty label.")
    }
    var labels: [String] = []
    for raw in s.split(separator: ".", omittingEmptySubsequences: false) {
      let label = String(raw)
      let ascii: String
      if label.unicodeScalars.allSatisfy({ $0.isASCII }) {
        ascii = label
      } else {
        guard UTS46.validUnicodeLabel(label) else {
          throw DomainError("invalid_domain", "The label '\(label)' contains characters not allowed in domain names.")
        }
        guard let encoded = Punycode.encode(label) else { throw DomainError("invalid_domain", "The label '\(label)' cannot be encoded.") }
        ascii = "xn--" + encoded
      }
      try checkLabel(ascii)
      labels.append(ascii)
    }
    return try finish(labels)
  }

  static func normalizeASCII(_ input: [UInt8]) throws(DomainError) -> String {
    var b = input[...]
    while let f = b.first, f == 0x20 || f == 0x09 { b = b.dropFirst() }
    while let l = b.last, l == 0x20 || l == 0x09 { b = b.dropLast() }
    if b.isEmpty { throw DomainError("invalid_domain", "The domain is empty.") }
    for c in b where c == UInt8(ascii: ":") || c == UInt8(ascii: "/") || c == UInt8(ascii: "@") || c == 0x20 || c == UInt8(ascii: "*") {
      throw DomainError("invalid_domain", "Expected a bare domain such as example.com, without scheme, path, port, '@' or wildcard.")
    }
    var lowered = b.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 32 : $0 }
    if lowered.last == UInt8(ascii: ".") { lowered.removeLast() }
    if lowered.isEmpty || lowered.first == UInt8(ascii: ".") { throw DomainError("invalid_domain", "The domain has an empty label.") }
    var labels: [String] = []
    for raw in lowered.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
      if raw.isEmpty { throw DomainError("invalid_domain", "The domain has an empty label.") }
      let label = String(decoding: raw, as: UTF8.self)
      try checkLabel(label)
      labels.append(label)
    }
    return try finish(labels)
  }

  static func finish(_ labels: [String]) throws(DomainError) -> String {
    let domain = labels.joined(separator: ".")
    if domain.utf8.count > 253 { throw DomainError("invalid_domain", "The domain is longer than 253 characters.") }
    if labels.count < 2 {
      throw DomainError("invalid_domain", "'\(domain)' is a single label; a domain such as example.com is needed.")
    }
    if labels.allSatisfy({ $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }) || labels.last!.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
      throw DomainError("invalid_domain", "'\(domain)' looks like an IP address; a domain name is needed.")
    }
    return domain
  }

  static func checkLabel(_ label: String) throws(DomainError) {
    if label.isEmpty { throw DomainError("invalid_domain", "The domain has an empty label.") }
    if label.utf8.count > 63 { throw DomainError("invalid_domain", "The label '\(label.prefix(20))…' is longer than 63 characters.") }
    for c in label.utf8 {
      let ok = (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2D || c == 0x5F
      if !ok { throw DomainError("invalid_domain", "The label '\(label)' may only contain letters, digits and hyphens.") }
    }
    if label.hasPrefix("-") || label.hasSuffix("-") {
      throw DomainError("invalid_domain", "The label '\(label)' starts or ends with a hyphen.")
    }
    if label.contains("_") { throw DomainError("invalid_domain", "The label '\(label)' contains an underscore.") }
    let chars = Array(label.utf8)
    if chars.count >= 4, chars[2] == 0x2D, chars[3] == 0x2D, !label.hasPrefix("xn--") {
      throw DomainError("invalid_domain", "The label '\(label)' has hyphens in the third and fourth positions.")
    }
    // An A-label must decode to a valid U-label that encodes back to itself
    // (UTS 46 §4.1): a raw "xn--" label that is not valid IDNA is refused.
    if label.hasPrefix("xn--") {
      guard let decoded = Punycode.decode(String(label.dropFirst(4))), !decoded.unicodeScalars.allSatisfy(\.isASCII),
        UTS46.map(decoded) == decoded, UTS46.validUnicodeLabel(decoded), Punycode.encode(decoded).map({ "xn--" + $0 }) == label
      else {
        throw DomainError("invalid_domain", "The label '\(label)' is not valid IDNA (an xn-- label must encode a valid Unicode label).")
      }
    }
  }

  /// The domain part of an email address, normalised; nil if not an address.
  public static func ofEmail(_ email: String) -> String? {
    guard let at = email.lastIndex(of: "@") else { return nil }
    return try? normalize(String(email[email.index(after: at)...]))
  }

}
