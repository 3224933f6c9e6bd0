import Crypto
import Foundation
import JSON
import RosterTestSupport
import Testing

/// P10 under a mutation fuzzer: mutated, truncated, huge and deep XML and
/// base64 posted to the ACS, and hostile callback queries — no crash, no
/// hang, every answer a 4xx with a trace id. Short in CI; set
/// ROSTER_FUZZ_CASES (e.g. 100000) for a long run.
@Suite(.serialized) final class SSOFuzzTests {
  let f: ProvisioningFixture
  let acs: String
  let base: [UInt8]
  var browser: TestBrowser {
    TestBrowser(publicURL: "https://app.example.test", webSocket: f.process.runDir + "/web.sock", appRedirectPrefix: "https://app.example.test/sso/callback")
  }
  static var cases: Int { Fuzz.cases(default: 400) }

  init() throws {
    f = try ProvisioningFixture()
    let w = try f.workspace("Acme", owner: "owner@acme.test")
    try f.verifyDomain(w, "acme.test")
    let keys = try TestFiles.makeTempDirectory(prefix: "roster-fuzz")
    let forge = TestFiles.repositoryRoot + "/Tests/Support/peers/saml_forge.py"
    try TestProcess.run([TestFiles.python, forge, "keys", keys])
    let idp = "https://fuzz-idp.example.test/metadata"
    let s = try f.rpc.call(
      "sso.configure",
      [
        "workspaceId": .string(w.id),
        "connection": [
          "protocol": "saml", "idpEntityId": .string(idp), "ssoUrl": "https://fuzz-idp.example.test/sso",
          "certificatePem": .string(try String(contentsOfFile: keys + "/idp.crt", encoding: .utf8)),
        ], "actor": f.admin(w),
      ])
    try f.rpc.call("sso.update", ["workspaceId": .string(w.id), "allowIdpInitiated": true, "actor": f.admin(w)])
    acs = try #require(s["sp"]?["acsUrl"]?.stringValue)
    let config: JSONValue = [
      "idpEntityId": .string(idp), "spEntityId": .string(try #require(s["sp"]?["entityId"]?.stringValue)), "acsUrl": .string(acs),
      "email": "alice@acme.test", "inResponseTo": .null, "now": .int(Int64(Date().timeIntervalSince1970)), "idpKey": .string(keys + "/idp.key"),
      "idpCert": .string(keys + "/idp.crt"), "ecKey": .string(keys + "/ec.key"), "ecCert": .string(keys + "/ec.crt"),
      "attackerKey": .string(keys + "/attacker.key"), "attackerCert": .string(keys + "/attacker.crt"),
    ]
    try Data(JSONWriter.bytes(config)).write(to: URL(fileURLWithPath: keys + "/config.json"))
    try TestProcess.run([TestFiles.python, forge, keys + "/config.json", keys + "/corpus"])
    base = Array(try Data(contentsOf: URL(fileURLWithPath: keys + "/corpus/ok_assertion_signed.xml")))
  }

  static func mutate(_ xml: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
    var b = xml
    switch Int.random(in: 0..<10, using: &rng) {
    case 0:  // flip bytes
      for _ in 0..<Int.random(in: 1...8, using: &rng) { b[Int.random(in: 0..<b.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng) }
    case 1:  // truncate
      b = Array(b.prefix(Int.random(in: 0..<b.count, using: &rng)))
    case 2:  // duplicate a slice
      let i = Int.random(in: 0..<b.count, using: &rng)
      let j = min(b.count, i + Int.random(in: 1...400, using: &rng))
      b.insert(contentsOf: b[i..<j], at: Int.random(in: 0...b.count, using: &rng))
    case 3:  // delete a slice
      let i = Int.random(in: 0..<b.count, using: &rng)
      b.removeSubrange(i..<min(b.count, i + Int.random(in: 1...200, using: &rng)))
    case 4:  // deep nesting
      let depth = Int.random(in: 100...5000, using: &rng)
      b = Array(String(repeating: "<a>", count: depth).utf8) + b + Array(String(repeating: "</a>", count: depth).utf8)
    case 5:  // invalid UTF-8 and NULs
      for _ in 0..<Int.random(in: 1...5, using: &rng) { b.insert([0xFF, 0xFE, 0x00, 0xC3][Int.random(in: 0..<4, using: &rng)], at: Int.random(in: 0..<b.count, using: &rng)) }
    case 6:  // a huge attribute value
      let i = b.firstIndex(of: UInt8(ascii: ">")) ?? 0
      b.insert(contentsOf: Array(" x=\"\(String(repeating: "y", count: Int.random(in: 1000...300_000, using: &rng)))\"".utf8), at: i)
    case 7:  // swap two slices
      let i = Int.random(in: 0..<b.count, using: &rng), j = Int.random(in: 0..<b.count, using: &rng)
      b.swapAt(i, j)
    case 8:  // entity and DOCTYPE injection
      b = Array("<!DOCTYPE r [<!ENTITY x \"\(String(repeating: "z", count: 50))\">]>".utf8) + b
    default:  // random bytes
      b = (0..<Int.random(in: 0...2000, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }
    return b
  }

  @Test func theACSAnswersEveryMutationWithA4xx() throws {
    // The unmodified response is used up first: any mutation that still
    // verifies is then a replay, so every answer below must be a refusal.
    let first = try browser.request("POST", acs, form: [("SAMLResponse", Base64.encode(base))])
    #expect(first.status == 303)
    let seed = UInt64.random(in: 0...UInt64.max)
    var rng = SplitMix(state: seed)
    var statuses: [Int: Int] = [:]
    for n in 0..<Self.cases {
      let mutated = Self.mutate(base, &rng)
      // Sometimes the transport encoding is the mutated part.
      var encoded = Base64.encode(mutated)
      if n % 7 == 0 { encoded = String(encoded.prefix(Int.random(in: 0...encoded.count, using: &rng))) + "%%**" }
      let started = Date()
      let r = try browser.request("POST", acs, form: [("SAMLResponse", encoded), ("RelayState", String(repeating: "r", count: n % 300))])
      statuses[r.status, default: 0] += 1
      #expect((400..<500).contains(r.status), "case \(n) (seed \(seed)): status \(r.status)")
      #expect(Date().timeIntervalSince(started) < 5, "case \(n) (seed \(seed)) took too long")
    }
    #expect(try f.rpc.call("system.health")["status"] == "ok")
    print("ACS fuzz: \(Self.cases) cases, statuses \(statuses.sorted { $0.key < $1.key }), seed \(seed)")
  }

  @Test func theOIDCCallbackAnswersEveryHostileQueryWithA4xx() throws {
    let seed = UInt64.random(in: 0...UInt64.max)
    var rng = SplitMix(state: seed)
    let alphabet = Array("abcXYZ019-_.~%&=?#+/ \u{0}é\u{202E}".unicodeScalars)
    for n in 0..<Self.cases {
      func junk(_ max: Int) -> String {
        var s = ""
        for _ in 0..<Int.random(in: 0...max, using: &rng) { s.unicodeScalars.append(alphabet[Int.random(in: 0..<alphabet.count, using: &rng)]) }
        return s
      }
      let fields = ["state", "code", "iss", "error", "error_description", junk(5)]
      var query: [String] = []
      for _ in 0..<Int.random(in: 0...6, using: &rng) {
        let k = fields[Int.random(in: 0..<fields.count, using: &rng)]
        query.append(
          TestBrowser.enc(k) + "=" + (n % 5 == 0 ? junk(5000) : TestBrowser.enc(junk(60))))
      }
      let r = try browser.request("GET", "https://app.example.test/sso/oidc/callback?" + query.joined(separator: "&"))
      #expect((400..<500).contains(r.status), "case \(n) (seed \(seed)): status \(r.status)")
    }
    #expect(try f.rpc.call("system.health")["status"] == "ok")
  }
}
