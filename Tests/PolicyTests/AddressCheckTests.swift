import Addresses
import Foundation
import Testing

/// The byte-level address checks on the SCIM create path (#17) agree with
/// what they replaced: hostile and ordinary input alike.
@Suite struct AddressCheckTests {
  /// S10: the ASCII fast path of the comparison key is the Foundation path
  /// (NFC, full case folding) for every plain local part.
  @Test func asciiKeysMatchTheFullFolding() throws {
    var rng = SystemRandomNumberGenerator()
    let alphabet = Array("abcXYZ019!#$%&'*+-/=?^_`{|}~.".unicodeScalars)
    for _ in 0..<2000 {
      let local = String(String.UnicodeScalarView((0..<Int.random(in: 1...20, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }))
      let folded = local.precomposedStringWithCanonicalMapping.folding(options: .caseInsensitive, locale: nil).precomposedStringWithCanonicalMapping
      #expect(EmailAddress.key(local + "@Example.TEST") == folded + "@example.test", "\(local)")
    }
    #expect(EmailAddress.key("Ann.B+Tag@X.test") == "ann.b+tag@x.test")
    #expect(EmailAddress.key("\"ann\"@x.test") == "ann@x.test", "needless quotes still go through the full path")
    #expect(EmailAddress.key("ann b@x.test") == "ann b@x.test", "a space is not plain ASCII here: the full path decides")
  }

  /// JSON-RPC's `.email` parameters: what is refused stays refused.
  @Test(arguments: [
    ("ann@x.test", true), ("a@b.c", true), ("ann@x", false), ("ann@.x.test", false), ("ann@x.test..", false), ("@x.test", false),
    ("ann", false), ("<ann>@x.test", false), ("ann@x.test,bob@y.test", false), ("ann;@x.test", false), ("an n@x.test", false),
    ("ann\u{0}@x.test", false), ("ann\u{7F}@x.test", false), ("a@b@x.test", false), (String(repeating: "a", count: 65) + "@x.test", false),
    (String(repeating: "a", count: 64) + "@x.test", true), ("ann@" + String(repeating: "x", count: 250) + ".test", false),
    ("jürgen@bücher.de", true),
  ])
  func plausibleAddresses(_ address: String, _ plausible: Bool) {
    #expect(isPlausibleEmail(address) == plausible)
  }
}
