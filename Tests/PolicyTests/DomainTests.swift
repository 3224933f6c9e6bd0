import Foundation
import Policy
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
    #expect(DomainName.canonicalEmail("not-an-email") == nil)
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

/// S1: SSO connection validation.
@Suite struct SSOConnectionTests {
  @Test func acceptsSAMLWithARealCertificate() throws {
    let c = try SSOConnection.validate([
      "protocol": "saml", "idpEntityId": "http://www.okta.com/exk1", "ssoUrl": "https://acme.okta.com/app/sso/saml",
      "certificatePem": .string(testIdPCertificatePEM),
    ])
    #expect(c["certificateExpiresAt"]?.stringValue?.hasPrefix("2126-") == true)
  }

  @Test func refusesAnExpiredCertificate() {
    let farFuture = Date(timeIntervalSince1970: 5_000_000_000)
    #expect {
      try SSOConnection.validate(
        ["protocol": "saml", "idpEntityId": "x", "ssoUrl": "https://idp.test/sso", "certificatePem": .string(testIdPCertificatePEM)],
        now: farFuture)
    } throws: { ($0 as? SSOConnection.Invalid)?.message.contains("expired") == true }
  }

  @Test(arguments: [
    ["protocol": "saml", "idpEntityId": "x", "ssoUrl": "https://idp.test/sso", "certificatePem": "not a pem"],
    ["protocol": "saml", "idpEntityId": "x", "ssoUrl": "https://idp.test/sso",
     "certificatePem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"],
    ["protocol": "saml", "idpEntityId": "x", "ssoUrl": "http://idp.test/sso", "certificatePem": .string(testIdPCertificatePEM)],
    ["protocol": "saml", "ssoUrl": "https://idp.test/sso", "certificatePem": .string(testIdPCertificatePEM)],
    ["protocol": "oidc", "issuer": "https://login.test/?x=1", "clientId": "abc"],
    ["protocol": "oidc", "issuer": "https://login.test", "clientId": ""],
    ["protocol": "oidc", "issuer": "https://login.test", "clientId": "abc", "secret": "x"],
    ["protocol": "ldap"],
  ] as [JSONValueWrapper])
  func refusesBadConnections(_ c: JSONValueWrapper) {
    #expect(throws: SSOConnection.Invalid.self) { try SSOConnection.validate(c.value) }
  }

  @Test func acceptsOIDC() throws {
    let c = try SSOConnection.validate(["protocol": "oidc", "issuer": "https://login.microsoftonline.com/t/v2.0", "clientId": "abc"])
    #expect(c["protocol"] == "oidc")
  }
}
