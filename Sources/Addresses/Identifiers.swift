// The checks every module makes on identifiers it is handed: ids and
// addresses. Pure (no I/O), so JSON-RPC parameter validation, SCIM and the
// sign-in flows all agree on what an id or an address is.

/// `8-4-4-4-12` hex digits, any case.
public func isUUID(_ s: String) -> Bool {
  let u = Array(s.utf8)
  guard u.count == 36 else { return false }
  for (i, c) in u.enumerated() {
    if i == 8 || i == 13 || i == 18 || i == 23 {
      if c != UInt8(ascii: "-") { return false }
    } else if !((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)) {
      return false
    }
  }
  return true
}

/// A pragmatic address check: one `@`, a non-empty local part without spaces or
/// control characters, a domain with a dot (for parameter validation; the
/// domain's own rules are `EmailAddress.normalized`'s).
public func isPlausibleEmail(_ s: String) -> Bool {
  // On UTF-8 bytes: this runs for every address parameter and SCIM create.
  let u = Array(s.utf8)
  guard u.count <= 254, let at = u.lastIndex(of: UInt8(ascii: "@")) else { return false }
  let local = u[..<at]
  let domain = u[(at + 1)...]
  guard !local.isEmpty, local.count <= 64, domain.contains(UInt8(ascii: ".")), domain.first != UInt8(ascii: "."),
    !domain.reversed().starts(with: [UInt8(ascii: "."), UInt8(ascii: ".")])
  else { return false }
  for b in u where b <= 0x20 || b == UInt8(ascii: "<") || b == UInt8(ascii: ">") || b == UInt8(ascii: ",") || b == UInt8(ascii: ";") || b == 0x7F {
    return false
  }
  return !local.contains(UInt8(ascii: "@"))
}
