import Crypto
import Foundation
import ProcessSpawn
import JSON
import LoadDriver
import Postgres
import RosterRuntime
import SAML
import Synchronization

/// `deploy/bench.sh sso`: the SAML ACS under load (validated responses per
/// second, p50/p99 with 1 and 4 clients), the validator alone, `sso.token`,
/// and the libraries a team would otherwise use, on the same responses.
enum SSOBench {
  static func run(conninfo: String, provisioning: String, web: String, python: String, repo: String, seconds: Double) throws {
    // A workspace with a verified domain and a SAML connection whose IdP key we hold.
    let c = try LineClientBox(provisioning)
    let name = "sso\(getpid())"
    let w = try JobBench.rpc(c, "workspace.create", ["name": .string(name), "plan": "enterprise", "owner": ["email": .string("owner@\(name).bench")]])
    guard let wid = w["workspaceId"]?.stringValue, let owner = w["ownerMemberId"]?.stringValue else { throw BenchError("workspace.create: \(w)") }
    let conn = PGConnection(config: PGConfig(conninfo: conninfo))
    defer { conn.close() }
    try conn.query(
      "INSERT INTO domains (workspace_id, domain, method, status, verified_at) VALUES (\(wid)::uuid, \(name + ".bench"), 'dns', 'verified', now())")
    let dir = "/tmp/roster-bench-sso-\(getpid())"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let forge = repo + "/Tests/Support/peers/saml_forge.py"
    try runChild([python, forge, "keys", dir + "/keys"])
    let idpEntity = "https://bench-idp.example.test/metadata"
    let certPEM = try String(contentsOfFile: dir + "/keys/idp.crt", encoding: .utf8)
    let admin: JSONValue = ["memberId": .string(owner)]
    let s = try JobBench.rpc(
      c, "sso.configure",
      [
        "workspaceId": .string(wid), "actor": admin,
        "connection": ["protocol": "saml", "idpEntityId": .string(idpEntity), "ssoUrl": "https://bench-idp.example.test/sso", "certificatePem": .string(certPEM)],
      ])
    _ = try JobBench.rpc(c, "sso.update", ["workspaceId": .string(wid), "allowIdpInitiated": true, "actor": admin])
    guard let sp = s["sp"]?["entityId"]?.stringValue, let acs = s["sp"]?["acsUrl"]?.stringValue, let publicURL = acs.range(of: "/sso/") else {
      throw BenchError("sso.configure: \(s)")
    }
    let acsPath = String(acs[publicURL.lowerBound...])
    // Fresh, signed, IdP-initiated responses (each assertion is accepted once).
    let count = Int(seconds * 6000)
    let config: JSONValue = [
      "idpEntityId": .string(idpEntity), "spEntityId": .string(sp), "acsUrl": .string(acs), "email": .string("member@\(name).bench"), "inResponseTo": .null,
      "now": .int(Int64(Date().timeIntervalSince1970) + 30), "idpKey": .string(dir + "/keys/idp.key"), "idpCert": .string(dir + "/keys/idp.crt"),
      "ecKey": .string(dir + "/keys/ec.key"), "ecCert": .string(dir + "/keys/ec.crt"), "attackerKey": .string(dir + "/keys/attacker.key"),
      "attackerCert": .string(dir + "/keys/attacker.crt"),
    ]
    try Data(JSONWriter.bytes(config)).write(to: URL(fileURLWithPath: dir + "/config.json"))
    let t0 = now()
    try runChild([python, forge, "bench", dir + "/config.json", dir + "/responses.txt", String(count + 3000)])
    FileHandle.standardError.write(Data("signed \(count + 3000) responses with signxml in \(fmt(now() - t0, 0)) s\n".utf8))
    let lines = try String(contentsOfFile: dir + "/responses.txt", encoding: .utf8).split(separator: "\n").map(String.init)
    let forms = lines.map { Array(("SAMLResponse=" + (($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)) ?? "")).utf8) }

    // The validator alone, in-process (the same checks, no HTTP, no database).
    let connection = SAMLConnection(idpEntityId: idpEntity, certificates: try Certificate.parsePEM(certPEM), spEntityId: sp, acsURL: acs)
    var pure = Samples()
    let xmls = lines.prefix(2000).compactMap { Base64.decode($0) }
    let p0 = now()
    for x in xmls {
      let t = now()
      _ = try SAMLResponseValidator.validate(xml: x, connection: connection, now: Date().addingTimeInterval(30))
      pure.add((now() - t) * 1e6)
    }
    let pureRate = Double(xmls.count) / (now() - p0)

    // The ACS end to end: HTTP over web.sock, validation, replay record,
    // decision, code — every write durable before the 303.
    let next = Counter()
    var rows: [[String]] = [["validator alone, in-process (1 thread)", fmt(pureRate, 0), fmt(pure.percentile(50) / 1000, 2), fmt(pure.percentile(99) / 1000, 2), "0"]]
    let errors = Atomic<Int>(0)
    let codes = Mutex<[String]>([])
    // Warm up: the first sign-in creates the member (JIT).
    let warm = try HTTPClient(unix: web, token: "-")
    _ = try warm.request("POST", acsPath, body: forms[forms.count - 1], contentType: "application/x-www-form-urlencoded")
    for clients in [1, 4] {
      errors.store(0, ordering: .relaxed)
      let (rate, lat) = closedLoop(clients: clients, seconds: seconds) {
        let http = try HTTPClient(unix: web, token: "-")
        return {
          let i = next.next() - 1
          guard i < forms.count - 1 else { throw BenchError("out of responses") }
          let (status, _) = try http.request("POST", acsPath, body: forms[i], contentType: "application/x-www-form-urlencoded")
          if status != 303 || !(http.location?.contains("code=") ?? false) {
            errors.add(1, ordering: .relaxed)
          } else if let loc = http.location, let code = URLComponents(string: loc)?.queryItems?.first(where: { $0.name == "code" })?.value {
            codes.withLock { if $0.count < 2000 { $0.append(code) } }
          }
        }
      }
      rows.append(["Roster ACS, \(clients) client\(clients == 1 ? "" : "s")", fmt(rate, 0), fmt(lat.percentile(50) / 1000, 2), fmt(lat.percentile(99) / 1000, 2), String(errors.load(ordering: .relaxed))])
    }
    // sso.token: the app redeeming each code.
    var redeem = Samples()
    for code in codes.withLock({ $0 }).prefix(1000) {
      let t = now()
      _ = try JobBench.rpc(c, "sso.token", ["code": .string(code), "redirectUri": .string(acs.replacingOccurrences(of: acsPath, with: "/sso/callback"))])
      redeem.add((now() - t) * 1e6)
    }
    rows.append(["sso.token round trip (1 client)", fmt(1e6 / max(1, redeem.percentile(50)), 0), fmt(redeem.percentile(50) / 1000, 2), fmt(redeem.percentile(99) / 1000, 2), "0"])
    table(["validating the same responses", "responses/s", "p50 ms", "p99 ms", "errors"], rows)
    // The libraries a team would otherwise use, on fresh responses of the same run.
    print()
    print("| library (Python 3.11, same responses) | validated | accepted | responses/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    let rest = Array(lines.suffix(2500))
    try rest.joined(separator: "\n").write(toFile: dir + "/rest.txt", atomically: true, encoding: .utf8)
    try runChild(
      [python, repo + "/Tests/Support/peers/saml_bench_python.py", dir + "/rest.txt", dir + "/keys/idp.crt", idpEntity, sp, acs, String(seconds)],
      inheritOutput: true)
  }

  static func runChild(_ argv: [String], inheritOutput: Bool = false) throws {
    fflush(nil)  // every stream: our rows first, then the child's
    let pid = try Spawn.start(argv, output: inheritOutput ? nil : "/dev/null")
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    guard status == 0 else { throw BenchError("\(argv.dropFirst().first ?? argv[0]) failed (status \(status))") }
  }
}
