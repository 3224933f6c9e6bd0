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
    var s = input.trimmingCharacters(in: .whitespaces)
    if s.isEmpty { throw DomainError("invalid_domain", "The domain is empty.") }
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
      let label = String(raw).precomposedStringWithCanonicalMapping.lowercased()
      let ascii: String
      if label.unicodeScalars.allSatisfy({ $0.isASCII }) {
        ascii = label
      } else {
        guard label.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == "-" || $0.properties.isDiacritic || $0.properties.generalCategory == .nonspacingMark || $0.properties.generalCategory == .spacingMark }) else {
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
  }

  /// The domain part of an email address, normalised; nil if not an address.
  public static func ofEmail(_ email: String) -> String? {
    guard let at = email.lastIndex(of: "@") else { return nil }
    return try? normalize(String(email[email.index(after: at)...]))
  }

  /// Lowercases an address and normalises its domain, for comparisons.
  public static func canonicalEmail(_ email: String) -> String? {
    guard let at = email.lastIndex(of: "@"), let domain = ofEmail(email) else { return nil }
    let local = email[..<at]
    guard !local.isEmpty else { return nil }
    return local.lowercased() + "@" + domain
  }
}

/// RFC 3492 Punycode encoder (what IDNA's "xn--" labels carry).
enum Punycode {
  static let base = 36, tmin = 1, tmax = 26, skew = 38, damp = 700, initialBias = 72, initialN = 128

  static func digit(_ d: Int) -> Character {
    Character(Unicode.Scalar(UInt8(d < 26 ? 0x61 + d : 0x30 + d - 26)))
  }

  static func adapt(_ delta: Int, _ numPoints: Int, _ first: Bool) -> Int {
    var delta = first ? delta / damp : delta / 2
    delta += delta / numPoints
    var k = 0
    while delta > ((base - tmin) * tmax) / 2 {
      delta /= base - tmin
      k += base
    }
    return k + (base - tmin + 1) * delta / (delta + skew)
  }

  static func encode(_ input: String) -> String? {
    let scalars = input.unicodeScalars.map { Int($0.value) }
    var output = String(input.unicodeScalars.filter { $0.isASCII }.map(Character.init))
    let basicCount = output.count
    var handled = basicCount
    if basicCount > 0 { output.append("-") }
    var n = initialN, delta = 0, bias = initialBias
    while handled < scalars.count {
      guard let m = scalars.filter({ $0 >= n }).min() else { return nil }
      let (prod, overflow) = (m - n).multipliedReportingOverflow(by: handled + 1)
      if overflow { return nil }
      delta += prod
      n = m
      for c in scalars {
        if c < n { delta += 1 }
        if c == n {
          var q = delta
          var k = base
          while true {
            let t = k <= bias ? tmin : (k >= bias + tmax ? tmax : k - bias)
            if q < t { break }
            output.append(digit(t + (q - t) % (base - t)))
            q = (q - t) / (base - t)
            k += base
          }
          output.append(digit(q))
          bias = adapt(delta, handled + 1, handled == basicCount)
          delta = 0
          handled += 1
        }
      }
      delta += 1
      n += 1
    }
    return output
  }
}

/// How emails are stored: the local part as given, the domain normalised
/// (lowercase, punycode), so domain comparisons in SQL are exact.
public enum EmailAddress {
  public static func storageForm(_ email: String) -> String {
    normalized(email) ?? String(trimmed(email))
  }

  /// The storage form of a valid address (non-empty local part, valid domain), else nil.
  public static func normalized(_ email: String) -> String? {
    let t = trimmed(email)
    guard let at = t.lastIndex(of: "@"), at != t.startIndex, let domain = try? DomainName.normalize(String(t[t.index(after: at)...])) else {
      return nil
    }
    return String(t[..<at]) + "@" + domain
  }

  static func trimmed(_ s: String) -> Substring {
    var t = Substring(s)
    while let f = t.first, f == " " || f == "\t" { t = t.dropFirst() }
    while let l = t.last, l == " " || l == "\t" { t = t.dropLast() }
    return t
  }
}
