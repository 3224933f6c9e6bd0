import Foundation
import JSON
import RosterTestSupport
import SSO
import Testing

/// S1: what sso.configure accepts as a connection.
@Suite struct ConnectionInputTests {
  @Test func acceptsSAMLWithARealCertificate() throws {
    let c = try ConnectionInput.parse([
      "protocol": "saml", "idpEntityId": "http://www.okta.com/exk1", "ssoUrl": "https://acme.okta.com/app/sso/saml",
      "certificatePem": .string(testIdPCertificatePEM),
    ])
    guard case .saml(let entity, _, let certs, let sha1) = c else { Issue.record("not SAML"); return }
    #expect(entity == "http://www.okta.com/exk1")
    #expect(certs.count == 1 && !sha1)
    #expect(certs.first?.notAfter.map { $0 > Date(timeIntervalSince1970: 4_000_000_000) } == true, "valid until 2126")
  }

  @Test func refusesAnExpiredCertificate() {
    let farFuture = Date(timeIntervalSince1970: 5_000_000_000)
    #expect {
      try ConnectionInput.parse(
        ["protocol": "saml", "idpEntityId": "x", "ssoUrl": "https://idp.test/sso", "certificatePem": .string(testIdPCertificatePEM)], now: farFuture)
    } throws: { ($0 as? ConnectionInvalid)?.message.contains("expired") == true }
  }

  @Test(arguments: [
    ["protocol": "saml", "idpEntityId": "x", "ssoUrl": "https://idp.test/sso", "certificatePem": "not a pem"],
    ["protocol": "saml", "idpEntityId": "x", "ssoUrl": "https://idp.test/sso", "certificatePem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"],
    ["protocol": "saml", "idpEntityId": "x", "ssoUrl": "http://idp.test/sso", "certificatePem": .string(testIdPCertificatePEM)],
    ["protocol": "saml", "ssoUrl": "https://idp.test/sso", "certificatePem": .string(testIdPCertificatePEM)],
    ["protocol": "saml", "metadataXml": "<not xml"],
    ["protocol": "saml", "metadataXml": "<!DOCTYPE x [<!ENTITY e \"x\">]><x/>"],
    ["protocol": "saml", "metadataXml": "<EntityDescriptor xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"x\"/>"],
    ["protocol": "saml", "metadataUrl": "http://metadata.test/idp"],
    ["protocol": "oidc", "issuer": "https://login.test/?x=1", "clientId": "abc"],
    ["protocol": "oidc", "issuer": "https://login.test", "clientId": ""],
    ["protocol": "oidc", "issuer": "https://login.test", "clientId": "abc", "secret": "x"],
    ["protocol": "oidc", "issuer": "http://login.test", "clientId": "abc"],
    ["protocol": "ldap"],
  ] as [JSONValueWrapper])
  func refusesBadConnections(_ c: JSONValueWrapper) {
    #expect(throws: ConnectionInvalid.self) { try ConnectionInput.parse(c.value) }
  }

  @Test func acceptsOIDCAndMetadata() throws {
    guard case .oidc(let issuer, let client, let secret) = try ConnectionInput.parse(
      ["protocol": "oidc", "issuer": "https://login.microsoftonline.com/t/v2.0/", "clientId": "abc", "clientSecret": "s"])
    else { Issue.record("not OIDC"); return }
    #expect(issuer == "https://login.microsoftonline.com/t/v2.0" && client == "abc" && secret == "s")
    let b64 = testIdPCertificatePEM.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
    let xml = """
      <md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.test/e">
        <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
          <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>\(b64)</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
          <md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
          <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.test/post"/>
          <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.test/redirect"/>
        </md:IDPSSODescriptor>
      </md:EntityDescriptor>
      """
    guard case .saml(let entity, let url, let certs, _) = try ConnectionInput.parse(["protocol": "saml", "metadataXml": .string(xml)]) else {
      Issue.record("not SAML")
      return
    }
    #expect(entity == "https://idp.test/e" && url == "https://idp.test/redirect" && certs.count == 1, "the signing certificate only")
  }
}
