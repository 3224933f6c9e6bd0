import Crypto
import Foundation
import XMLSignature

/// What Roster reads from an IdP's metadata (S1 `metadataXml`): the entity
/// id, the HTTP-Redirect SSO URL and every signing certificate (several at
/// once during a rotation).
public struct IdPMetadata: Sendable {
  public var entityId: String
  public var ssoURL: String
  public var certificates: [Certificate]

  public struct Invalid: Error, Equatable {
    public let message: String
    public init(_ m: String) { message = m }
  }

  public static let maxBytes = 1 << 20

  public static func parse(_ xml: String) throws(Invalid) -> IdPMetadata {
    let bytes = Array(xml.utf8)
    guard bytes.count <= maxBytes else { throw Invalid("The metadata is larger than 1 MiB.") }
    let doc: XMLDoc
    do {
      doc = try XMLDoc(parsing: bytes)
    } catch .doctype {
      throw Invalid("The metadata contains a DOCTYPE, which is never accepted.")
    } catch {
      throw Invalid("The metadata is not well-formed XML.")
    }
    guard let root = doc.root else { throw Invalid("The metadata is empty.") }
    // An EntityDescriptor, or an EntitiesDescriptor holding exactly one IdP.
    var candidates: [XMLNode] = []
    if root.is("EntityDescriptor", SAMLNS.metadata) {
      candidates = [root]
    } else if root.is("EntitiesDescriptor", SAMLNS.metadata) {
      candidates = root.descendants.filter { $0.is("EntityDescriptor", SAMLNS.metadata) }
    } else {
      throw Invalid("The metadata's root is not a SAML 2.0 EntityDescriptor.")
    }
    let idps = candidates.compactMap { e -> (XMLNode, XMLNode)? in e.child("IDPSSODescriptor", SAMLNS.metadata).map { (e, $0) } }
    guard idps.count == 1, let (entity, idp) = idps.first else {
      throw Invalid(idps.isEmpty ? "The metadata describes no identity provider (IDPSSODescriptor)." : "The metadata describes several identity providers; paste one.")
    }
    guard let entityId = entity.attribute("entityID"), !entityId.isEmpty else { throw Invalid("The EntityDescriptor has no entityID.") }
    let sso = idp.children("SingleSignOnService", SAMLNS.metadata)
    guard let redirect = sso.first(where: { $0.attribute("Binding") == SAMLNS.redirectBinding })?.attribute("Location"), !redirect.isEmpty else {
      throw Invalid("The IdP offers no SingleSignOnService with the HTTP-Redirect binding.")
    }
    var certs: [Certificate] = []
    for key in idp.children("KeyDescriptor", SAMLNS.metadata) where key.attribute("use") == nil || key.attribute("use") == "signing" {
      for x in key.descendants where x.is("X509Certificate", DSig.ns) {
        do {
          certs.append(try Certificate(base64: x.text))
        } catch {
          throw Invalid("A signing certificate in the metadata is not a valid X.509 certificate.")
        }
      }
    }
    guard !certs.isEmpty else { throw Invalid("The metadata has no signing certificate (KeyDescriptor use=\"signing\").") }
    var seen = Set<String>()
    certs = certs.filter { seen.insert($0.sha256Fingerprint).inserted }
    return IdPMetadata(entityId: entityId, ssoURL: redirect, certificates: certs)
  }
}

/// P1: the SP metadata served at /sso/saml/{connectionId}/metadata.
public enum SPMetadata {
  public static func xml(entityId: String, acsURL: String) -> String {
    """
    <?xml version="1.0" encoding="UTF-8"?>
    <md:EntityDescriptor xmlns:md="\(SAMLNS.metadata)" entityID="\(XMLText.escape(entityId))">
      <md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" protocolSupportEnumeration="\(SAMLNS.protocol_)">
        <md:NameIDFormat>\(SAMLNS.emailFormat)</md:NameIDFormat>
        <md:AssertionConsumerService Binding="\(SAMLNS.postBinding)" Location="\(XMLText.escape(acsURL))" index="0" isDefault="true"/>
      </md:SPSSODescriptor>
    </md:EntityDescriptor>

    """
  }
}

/// P6: the profile in an assertion, from the attribute names Okta, Entra and
/// Google send.
public struct SAMLProfile: Sendable, Equatable {
  public var email: String?
  public var givenName: String?
  public var familyName: String?
  public var name: String?
  public var groups: [String]

  static let claims = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
  /// Shibboleth's and pysaml2's names (urn:mace:dir:attribute-def:…).
  static let mace = "urn:mace:dir:attribute-def:"
  static let emailNames = ["email", "mail", "emailaddress", "emailAddress", claims + "emailaddress", "urn:oid:0.9.2342.19200300.100.1.3", mace + "mail"]
  static let givenNames = ["givenName", "firstName", "given_name", claims + "givenname", "urn:oid:2.5.4.42", mace + "givenName"]
  static let familyNames = ["familyName", "lastName", "surname", "sn", "family_name", claims + "surname", "urn:oid:2.5.4.4", mace + "sn"]
  static let displayNames = ["displayName", "name", "http://schemas.microsoft.com/identity/claims/displayname", claims + "name", mace + "displayName", "urn:oid:2.16.840.1.113730.3.1.241"]
  static let groupNames = ["groups", "memberOf", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups", "Group", "group"]

  public init(_ a: ValidatedAssertion) {
    func first(_ names: [String]) -> String? {
      for n in names { if let v = a.attributes[n]?.first(where: { !$0.isEmpty }) { return v } }
      return nil
    }
    let nameIsEmail = a.nameIdFormat == SAMLNS.emailFormat && !a.nameId.isEmpty
    email = nameIsEmail ? a.nameId : first(Self.emailNames)
    givenName = first(Self.givenNames)
    familyName = first(Self.familyNames)
    name = first(Self.displayNames) ?? ([givenName, familyName].compactMap { $0 }.joined(separator: " ").nilIfEmpty)
    var g: [String] = []
    for n in Self.groupNames { g += a.attributes[n] ?? [] }
    var seen = Set<String>()
    groups = g.filter { !$0.isEmpty && seen.insert($0).inserted }
  }
}

extension String {
  var nilIfEmpty: String? { isEmpty ? nil : self }
}
