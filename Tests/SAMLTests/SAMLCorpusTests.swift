import Crypto
import Foundation
import JSON
import RosterTestSupport
import SAML
import Testing
import XMLSignature

/// Keys and a freshly signed corpus from an independent signer (signxml),
/// shared by the SAML unit tests.
final class SAMLCorpus: Sendable {
  static let shared: SAMLCorpus = {
    do { return try SAMLCorpus() } catch { fatalError("cannot build the SAML corpus: \(error)") }
  }()

  let dir: String
  let now: Date
  let connection: SAMLConnection
  let cases: [(name: String, file: String, reason: String)]
  static let spEntityId = "https://app.example.test/sso/saml/0190c9a4-0000-7000-8000-000000000001"
  static let acsURL = spEntityId + "/acs"
  static let idpEntityId = "https://idp.example.test/metadata"

  init() throws {
    dir = try TestFiles.makeTempDirectory(prefix: "roster-saml")
    let forge = TestFiles.repositoryRoot + "/Tests/Support/peers/saml_forge.py"
    try TestProcess.run([TestFiles.python, forge, "keys", dir + "/keys"])
    now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
    let config: JSONValue = [
      "idpEntityId": .string(Self.idpEntityId), "spEntityId": .string(Self.spEntityId), "acsUrl": .string(Self.acsURL),
      "email": "alice@acme.test", "inResponseTo": "_request1", "now": .int(Int64(now.timeIntervalSince1970)),
      "idpKey": .string(dir + "/keys/idp.key"), "idpCert": .string(dir + "/keys/idp.crt"), "ecKey": .string(dir + "/keys/ec.key"),
      "ecCert": .string(dir + "/keys/ec.crt"), "attackerKey": .string(dir + "/keys/attacker.key"),
      "attackerCert": .string(dir + "/keys/attacker.crt"),
    ]
    try Data(JSONWriter.bytes(config)).write(to: URL(fileURLWithPath: dir + "/config.json"))
    try TestProcess.run([TestFiles.python, forge, dir + "/config.json", dir + "/corpus"])
    let manifest = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/corpus/manifest.json"))), maxDepth: 10)
    cases = (manifest.arrayValue ?? []).map { ($0["name"]!.stringValue!, $0["file"]!.stringValue!, $0["reason"]!.stringValue!) }
    let certs = try Certificate.parsePEM(String(contentsOfFile: dir + "/keys/idp.crt", encoding: .utf8))
      + Certificate.parsePEM(String(contentsOfFile: dir + "/keys/ec.crt", encoding: .utf8))
    connection = SAMLConnection(idpEntityId: Self.idpEntityId, certificates: certs, spEntityId: Self.spEntityId, acsURL: Self.acsURL)
  }

  func bytes(_ name: String) throws -> [UInt8] {
    guard let c = cases.first(where: { $0.name == name }) else { throw TestError("no case \(name)") }
    return Array(try Data(contentsOf: URL(fileURLWithPath: c.file)))
  }
}

/// P2–P3 against a real, independently signed corpus: what must be accepted
/// is, and every attack is refused with its reason.
@Suite struct SAMLCorpusTests {
  static var caseNames: [String] { SAMLCorpus.shared.cases.map(\.name) }

  @Test(arguments: SAMLCorpusTests.caseNames)
  func eachCaseGetsItsVerdict(_ name: String) throws {
    let corpus = SAMLCorpus.shared
    let expected = try #require(corpus.cases.first { $0.name == name }).reason
    let xml = try corpus.bytes(name)
    do {
      let v = try SAMLResponseValidator.validate(xml: xml, connection: corpus.connection, now: corpus.now)
      #expect(expected.hasPrefix("ok"), "\(name) was accepted, expected \(expected)")
      if expected.hasPrefix("ok:") {
        #expect(v.nameId == String(expected.dropFirst(3)), "values come from the verified canonical bytes")
      } else if expected == "ok" {
        #expect(v.nameId == "alice@acme.test")
      }
    } catch {
      #expect(error.reason == expected, "\(name): \(error.detail)")
    }
  }

  @Test func acceptedResponsesCarryTheProfile() throws {
    let corpus = SAMLCorpus.shared
    let v = try SAMLResponseValidator.validate(xml: try corpus.bytes("ok_assertion_signed"), connection: corpus.connection, now: corpus.now)
    #expect(v.inResponseTo == "_request1")
    #expect(v.certificateIndex == 0)
    let p = SAMLProfile(v)
    #expect(p.email == "alice@acme.test")
    #expect(p.givenName == "Alice" && p.familyName == "Admin")
    #expect(p.groups == ["Engineering"])
    #expect(v.validUntil > corpus.now)
    // The second configured certificate (rotation) verifies the ECDSA one.
    let ec = try SAMLResponseValidator.validate(xml: try corpus.bytes("ok_ecdsa_p256"), connection: corpus.connection, now: corpus.now)
    #expect(ec.certificateIndex == 1)
  }

  @Test func sha1IsAcceptedOnlyWhereTheConnectionAllowsIt() throws {
    let corpus = SAMLCorpus.shared
    var lenient = corpus.connection
    lenient.allowSHA1 = true
    #expect(throws: Never.self) { try SAMLResponseValidator.validate(xml: try corpus.bytes("sha1_signature"), connection: lenient, now: corpus.now) }
    #expect(throws: SAMLRefusal.self) {
      try SAMLResponseValidator.validate(xml: try corpus.bytes("hmac_signature"), connection: lenient, now: corpus.now)
    }
  }

  @Test func timesHoldWithThreeMinutesOfSkew() throws {
    let corpus = SAMLCorpus.shared
    let xml = try corpus.bytes("ok_assertion_signed")
    // Valid for 300 s after `now`: 470 s later is inside the skew, 500 s is not.
    #expect(throws: Never.self) { try SAMLResponseValidator.validate(xml: xml, connection: corpus.connection, now: corpus.now + 470) }
    #expect { try SAMLResponseValidator.validate(xml: xml, connection: corpus.connection, now: corpus.now + 500) } throws: {
      ($0 as? SAMLRefusal)?.reason == "expired"
    }
    // NotBefore is 60 s before `now`: 230 s earlier is inside the skew, 250 s is not.
    #expect(throws: Never.self) { try SAMLResponseValidator.validate(xml: xml, connection: corpus.connection, now: corpus.now - 230) }
    #expect { try SAMLResponseValidator.validate(xml: xml, connection: corpus.connection, now: corpus.now - 250) } throws: {
      ($0 as? SAMLRefusal)?.reason == "not_yet_valid"
    }
  }

  @Test func anotherConnectionsCertificateOrAudienceIsRefused() throws {
    let corpus = SAMLCorpus.shared
    let xml = try corpus.bytes("ok_assertion_signed")
    // Workspace B: its own certificate → the signature does not verify.
    let other = try Certificate.parsePEM(String(contentsOfFile: corpus.dir + "/keys/other.crt", encoding: .utf8))
    var b = corpus.connection
    b.certificates = other
    #expect { try SAMLResponseValidator.validate(xml: xml, connection: b, now: corpus.now) } throws: {
      ["signature_invalid", "certificate_unknown"].contains(($0 as? SAMLRefusal)?.reason ?? "")
    }
    // Workspace B with the same IdP application: its entity id and ACS differ.
    b = corpus.connection
    b.spEntityId = "https://app.example.test/sso/saml/0190c9a4-0000-7000-8000-00000000000b"
    b.acsURL = b.spEntityId + "/acs"
    #expect { try SAMLResponseValidator.validate(xml: xml, connection: b, now: corpus.now) } throws: {
      ["audience_mismatch", "destination_mismatch", "recipient_mismatch"].contains(($0 as? SAMLRefusal)?.reason ?? "")
    }
  }
}
