import Foundation

/// UTS 46 processing of domain names, approximated with the standard
/// library: the compatibility mapping (NFKC — full-width letters, ligatures,
/// superscripts), full case folding, the IDNA dot variants, and the
/// characters UTS 46 maps to nothing. What remains must be letters, marks,
/// digits and hyphens; anything else is refused rather than guessed at.
public enum UTS46 {
  /// Code points UTS 46 maps to nothing (soft hyphen, joiners' cousins,
  /// variation selectors, byte-order mark).
  static func isIgnored(_ v: UInt32) -> Bool {
    v == 0xAD || v == 0x34F || (0x180B...0x180F).contains(v) || v == 0x200B || v == 0x2060 || v == 0xFEFF
      || (0xFE00...0xFE0F).contains(v) || (0x1BCA0...0x1BCA3).contains(v) || (0xE0100...0xE01EF).contains(v)
  }

  public static func map(_ s: String) -> String {
    if s.utf8.allSatisfy({ $0 < 0x80 }) { return s.lowercased() }
    var kept = ""
    kept.unicodeScalars.append(contentsOf: s.unicodeScalars.filter { !isIgnored($0.value) })
    let mapped = kept.precomposedStringWithCompatibilityMapping.folding(options: .caseInsensitive, locale: nil)
      .precomposedStringWithCompatibilityMapping
    return mapped.replacingOccurrences(of: "\u{3002}", with: ".").replacingOccurrences(of: "\u{FF61}", with: ".")
  }

  /// A Unicode label: letters, combining marks, digits and hyphens, not
  /// starting with a combining mark, in NFC.
  public static func validUnicodeLabel(_ label: String) -> Bool {
    guard let first = label.unicodeScalars.first, label.precomposedStringWithCanonicalMapping == label else { return false }
    let mark: (Unicode.Scalar) -> Bool = {
      let c = $0.properties.generalCategory
      return c == .nonspacingMark || c == .spacingMark || c == .enclosingMark
    }
    if mark(first) { return false }
    return label.unicodeScalars.allSatisfy { s in
      s == "-" || s.properties.isAlphabetic || s.properties.numericType == .decimal || mark(s)
        || (s.isASCII && (s.properties.isLowercase || ("0"..."9").contains(Character(s))))
    }
  }
}

/// Email addresses as people and mail systems see them (S10).
///
/// - Shown as first given: the local part as typed, the domain normalised
///   (UTS 46, lowercase, punycode) — `storageForm`.
/// - Compared by `key`: the local part without needless quotes, in Unicode
///   NFC and case-folded (`JÜRGEN`, `ju\u{308}rgen` and `jürgen` are one
///   person; `"pre1"` is `pre1`), `@`, the normalised domain. One person per
///   key; the database holds it in a unique column.
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

  /// The comparison key (S10), or nil when the address is not valid.
  public static func key(_ email: String) -> String? {
    let t = trimmed(email)
    guard let at = t.lastIndex(of: "@"), at != t.startIndex, let domain = try? DomainName.normalize(String(t[t.index(after: at)...])) else {
      return nil
    }
    guard let local = canonicalLocalPart(String(t[..<at])) else { return nil }
    return local + "@" + domain
  }

  /// RFC 5322 `atext` (RFC 6532: any non-ASCII character too).
  static func isAtext(_ s: Unicode.Scalar) -> Bool {
    if !s.isASCII { return s.value > 0x9F }
    switch s {
    case "a"..."z", "A"..."Z", "0"..."9": return true
    default: return "!#$%&'*+-/=?^_`{|}~".unicodeScalars.contains(s)
    }
  }

  static func isDotAtom(_ s: String) -> Bool {
    guard !s.isEmpty, !s.hasPrefix("."), !s.hasSuffix("."), !s.contains("..") else { return false }
    return s.unicodeScalars.allSatisfy { $0 == "." || isAtext($0) }
  }

  /// Quotes removed where they are not needed; NFC; full case folding.
  static func canonicalLocalPart(_ raw: String) -> String? {
    // Plain ASCII without quotes (nearly every address): NFC changes nothing
    // and case folding is lower-casing, so skip Foundation.
    let bytes = raw.utf8
    if !bytes.isEmpty, bytes.allSatisfy({ $0 >= 0x21 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
      return String(decoding: bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }, as: UTF8.self)
    }
    var local = raw
    if local.count >= 2, local.hasPrefix("\""), local.hasSuffix("\"") {
      var inner = ""
      var escaped = false
      for ch in local.dropFirst().dropLast() {
        if escaped {
          inner.append(ch)
          escaped = false
        } else if ch == "\\" {
          escaped = true
        } else {
          inner.append(ch)
        }
      }
      if escaped { return nil }
      if isDotAtom(inner) {
        local = inner
      } else {
        local = "\"" + inner.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
      }
    }
    guard !local.isEmpty, !local.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return nil }
    return local.precomposedStringWithCanonicalMapping.folding(options: .caseInsensitive, locale: nil).precomposedStringWithCanonicalMapping
  }

  static func trimmed(_ s: String) -> Substring {
    var t = Substring(s)
    while let f = t.first, f == " " || f == "\t" { t = t.dropFirst() }
    while let l = t.last, l == " " || l == "\t" { t = t.dropLast() }
    return t
  }
}
