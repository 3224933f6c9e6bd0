@testable import Addresses
import Foundation
@testable import Policy
import RosterTestSupport
import Testing

/// D2: normalisation and validation of domains.
@Suite struct DomainNameTests {
  @Test(arguments: [
    ("Example.COM", "example.com"), ("example.com.", "example.com"), ("  acme.io ", "acme.io"),
    ("bücher.de", "xn--bcher-kva.de"), ("MÜNCHEN.de", "xn--mnchen-3ya.de"), ("xn--bcher-kva.de", "xn--bcher-kva.de"),
    ("例え.jp", "xn--r8jz45g.jp"), ("sub.domain.example.org", "sub.domain.example.org"), ("a-b.co", "a-b.co"),
  ])
  func normalizes(_ input: String, _ expected: String) throws {
    #expect(try DomainName.normalize(input) == expected)
  }

  @Test(arguments: [
    "", "localhost", "192.168.1.1", "http://example.com", "example.com/path", "user@example.com", "exa mple.com", "*.example.com",
    "-bad.com", "bad-.com", "a..b.com", ".example.com", "under_score.com", "ab--cd.com", "example.com:443",
    String(repeating: "a", count: 64) + ".com", (0..<60).map { _ in "abcd" }.joined(separator: ".") + ".com",
  ])
  func refuses(_ input: String) {
    #expect(throws: DomainError.self) { try DomainName.normalize(input) }
  }

  @Test func punycodeMatchesRFC3492Samples() throws {
    // RFC 3492 §7.1 (B) Chinese (simplified), lowercased label.
    #expect(try DomainName.normalize("他们为什么不说中文.com") == "xn--ihqwcrb4cv8a8dqg056pqjye.com")
  }

  @Test func emailHelpers() {
    #expect(DomainName.ofEmail("Jane@Bücher.DE") == "xn--bcher-kva.de")
    #expect(EmailAddress.storageForm("Jane.Doe@ACME.com") == "Jane.Doe@acme.com")
    #expect(EmailAddress.key("not-an-email") == nil)
  }

  /// S10: one person per address, compared as people and mail systems see it.
  @Test(arguments: [
    ("jürgen@seca.com", "JÜRGEN@SECA.COM"),  // Unicode upper case
    ("jürgen@seca.com", "ju\u{0308}rgen@seca.com"),  // decomposed (NFD)
    ("pre1@seca.com", "\"pre1\"@seca.com"),  // needless quotes
    ("jane@seca.com", "jane@ｓｅｃａ.com"),  // full-width domain (UTS 46)
    ("jane@seca.com", "Jane@SECA.com."),
    ("strasse@seca.com", "STRASSE@seca.com"),
    ("straße@seca.com", "STRASSE@seca.com"),  // full case folding: ß is ss
    ("jane@xn--bcher-kva.de", "JANE@BÜCHER.de"),
    ("jane@xn--bcher-kva.de", "jane@xn--bcher-kva.de"),
  ])
  func s10SpellingsOfOneAddressShareAKey(_ a: String, _ b: String) throws {
    let ka = try #require(EmailAddress.key(a))
    #expect(ka == EmailAddress.key(b))
  }

  @Test func s10DifferentAddressesKeepDifferentKeys() throws {
    #expect(EmailAddress.key("jane@seca.com") != EmailAddress.key("jane@seca.co"))
    #expect(EmailAddress.key("\"pre 1\"@seca.com") != EmailAddress.key("pre1@seca.com"), "quotes that are needed stay")
    #expect(EmailAddress.key("\"a..b\"@seca.com") != EmailAddress.key("a.b@seca.com"))
    #expect(EmailAddress.key("jane@seca.com") == "jane@seca.com")
    // Shown as first given: the local part as typed, the domain normalised.
    #expect(EmailAddress.storageForm("JÜRGEN@ｓｅｃａ.com") == "JÜRGEN@seca.com")
  }

  @Test(arguments: ["jane@xn--zz.com", "jane@xn--abc-.com", "jane@xn--ls8h-.com", "jane@xn--a.com", "jane@xn--bcher-kva-.de", "jane@xn--d1acpjx3f.xn--p1ai-"])
  func s10InvalidRawALabelsAreRefused(_ address: String) {
    #expect(EmailAddress.key(address) == nil, "\(address)")
  }

  @Test func uts46MapsCompatibilityCharacters() throws {
    #expect(try DomainName.normalize("ｓｅｃａ.com") == "seca.com")
    #expect(try DomainName.normalize("ＡＣＭＥ．ＣＯＭ") == "acme.com")
    #expect(try DomainName.normalize("Bu\u{0308}cher.de") == "xn--bcher-kva.de")
    #expect(try DomainName.normalize("soft\u{00AD}hyphen.com") == "softhyphen.com")
    #expect(throws: DomainError.self) { try DomainName.normalize("a☃b.com") }
  }

  @Test func punycodeRoundTrips() throws {
    for label in ["bücher", "他们为什么不说中文", "ü", "mañana", "ελληνικά"] {
      let encoded = try #require(Punycode.encode(label))
      #expect(Punycode.decode(encoded) == label)
    }
    #expect(Punycode.decode("zz!") == nil)
    #expect(Punycode.decode("99999999999999999") == nil)
  }
}

@Suite struct DomainListTests {
  static let lists: DomainLists = try! DomainLists.load(from: DomainLists.locate()!)

  @Test(arguments: ["gmail.com", "yahoo.com", "outlook.com", "mailinator.com", "hey.com", "pm.me", "mail.gmail.com", "GMAIL.com."])
  func refusesPublicMailDomains(_ d: String) {
    #expect { try Self.lists.validateClaimable(d) } throws: { ($0 as? DomainError)?.reason == "public_domain" }
  }

  @Test(arguments: ["co.uk", "github.io", "com.au", "appspot.com", "s3.amazonaws.com"])
  func refusesPublicSuffixes(_ d: String) {
    #expect { try Self.lists.validateClaimable(d) } throws: { ($0 as? DomainError)?.reason == "public_domain" }
  }

  @Test(arguments: ["acme.com", "acme.co.uk", "example.github.io", "eng.acme.com", "bücher.de"])
  func acceptsOrganisationDomains(_ d: String) throws {
    _ = try Self.lists.validateClaimable(d)
  }

  @Test func invalidDomainsKeepTheirOwnReason() {
    #expect { try Self.lists.validateClaimable("10.0.0.1") } throws: { ($0 as? DomainError)?.reason == "invalid_domain" }
  }
}
