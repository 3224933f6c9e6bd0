import Foundation
import JSON
import RosterTestSupport
import Sockets
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Grammar-aware mutation fuzzers against the running provisioning process:
/// JSON-RPC lines built from the methods' own schemas (rpc.discover), raw
/// HTTP/1.1 requests to the SCIM listener and to the web listener (setup
/// pages with their forms, ACS, OIDC callback), SCIM filters and PATCH bodies.
/// Every case must get a well-formed answer (a JSON-RPC response, or an HTTP
/// response whose errors are SCIM error JSON), never an internal error, never
/// a hang; the process stays up; and a second workspace whose ids the
/// fuzzer never learns is byte-for-byte unchanged at the end (no injection,
/// no cross-tenant write). Short in CI; ROSTER_FUZZ_CASES=100000 for the long
/// runs in docs/reliability.md, ROSTER_FUZZ_SEED to replay one.
@Suite(.serialized) final class FuzzTests: @unchecked Sendable {
  let f: ProvisioningFixture
  let s: SCIMFixture
  let victim: ProvisioningFixture.Workspace
  let userIds: [String]
  let groupId: String
  let scimSocket: String
  static var cases: Int { Fuzz.cases(default: 1500) }

  init() throws {
    f = try ProvisioningFixture()
    s = try SCIMFixture(f)
    var ids: [String] = []
    for n in 0..<4 { ids.append(try s.createUser("user\(n)@acme.test")["id"]!.stringValue!) }
    userIds = ids
    groupId = try s.createGroup("Engineering", members: Array(ids.prefix(2)))["id"]!.stringValue!
    // The victim: a workspace with a directory, users and a group, whose ids the fuzzers never see.
    victim = try f.workspace("Victim", owner: "owner@victim.test")
    let d = try f.rpc.call("directory.enable", ["workspaceId": .string(victim.id), "actor": f.admin(victim)])
    let vh = try TestHTTP(socket: f.process.runDir + "/scim.sock", token: d["bearerToken"]!.stringValue!)
    for n in 0..<3 { _ = try vh.request("POST", "/scim/v2/Users", json: SCIMFixture.user("v\(n)@victim.test")) }
    _ = try vh.request("POST", "/scim/v2/Groups", json: ["schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Secret"])
    scimSocket = f.process.runDir + "/scim.sock"
  }

  /// Everything stored about the victim workspace, as one digest.
  func victimFingerprint() throws -> String {
    try f.pool.query(
      """
      SELECT md5(coalesce(string_agg(x, '|' ORDER BY x), '')) AS h FROM (
        SELECT w::text AS x FROM workspaces w WHERE w.id = \(victim.id)::uuid
        UNION ALL SELECT m::text FROM members m WHERE m.workspace_id = \(victim.id)::uuid
        UNION ALL SELECT u::text FROM users u WHERE u.id IN (SELECT user_id FROM members WHERE workspace_id = \(victim.id)::uuid)
        UNION ALL SELECT s::text FROM scim_users s WHERE s.workspace_id = \(victim.id)::uuid
        UNION ALL SELECT g::text FROM scim_groups g WHERE g.workspace_id = \(victim.id)::uuid
        UNION ALL SELECT d::text FROM directories d WHERE d.workspace_id = \(victim.id)::uuid
        UNION ALL SELECT d::text FROM domains d WHERE d.workspace_id = \(victim.id)::uuid
        UNION ALL SELECT a::text FROM audit_log a WHERE a.workspace_id = \(victim.id)::uuid
        UNION ALL SELECT e.id::text FROM events e WHERE e.workspace_id = \(victim.id)::uuid
      ) t
      """
    ).first?.string("h") ?? ""
  }

  // MARK: JSON-RPC

  /// A value for a JSON schema from rpc.discover: usually valid, sometimes on
  /// the boundary, sometimes hostile or of the wrong type.
  func value(_ schema: JSONValue?, _ rng: inout SplitMix, depth: Int = 0) -> JSONValue {
    let roll = Int.random(in: 0..<100, using: &rng)
    if roll < 8 { return .string(Fuzz.hostile(&rng)) }
    if roll < 11 { return [JSONValue.null, .int(-1), .bool(true), .array([]), .object([:]), .double(1e300)][Int.random(in: 0..<6, using: &rng)] }
    guard let schema else { return .string(Fuzz.hostile(&rng)) }
    if let options = schema["enum"]?.arrayValue, !options.isEmpty { return options[Int.random(in: 0..<options.count, using: &rng)] }
    switch schema["type"]?.stringValue {
    case "string":
      switch schema["format"]?.stringValue {
      case "uuid":
        let pool = [s.w.id, s.w.owner, groupId, UUID().uuidString.lowercased(), "00000000-0000-0000-0000-000000000000", "not-a-uuid"] + userIds
        return .string(pool[Int.random(in: 0..<pool.count, using: &rng)])
      case "email":
        let pool = ["user0@acme.test", "owner@acme.test", "new\(rng.next() % 1000)@acme.test", "x@other.test", "not an email", "a@b", "USER1@ACME.TEST"]
        return .string(pool[Int.random(in: 0..<pool.count, using: &rng)])
      default:
        if let max = schema["maxLength"]?.intValue, Bool.random(using: &rng) {
          return .string(String(repeating: "m", count: Int(max) + Int.random(in: -1...1, using: &rng)))
        }
        return .string(Bool.random(using: &rng) ? "word\(rng.next() % 100)" : Fuzz.hostile(&rng))
      }
    case "integer":
      let lo = schema["minimum"]?.intValue ?? -5
      let hi = schema["maximum"]?.intValue ?? 5000
      return .int([lo, hi, lo - 1, hi + 1, 0, (lo + hi) / 2, Int64.max][Int.random(in: 0..<7, using: &rng)])
    case "boolean":
      return Bool.random(using: &rng) ? .bool(Bool.random(using: &rng)) : "true"
    case "array":
      guard depth < 4 else { return [] }
      return .array((0..<Int.random(in: 0...4, using: &rng)).map { _ in value(schema["items"], &rng, depth: depth + 1) })
    case "object":
      guard depth < 4 else { return [:] }
      var o: [String: JSONValue] = [:]
      for (k, v) in schema["properties"]?.objectValue ?? [:] where Int.random(in: 0..<10, using: &rng) < 6 { o[k] = value(v, &rng, depth: depth + 1) }
      if Int.random(in: 0..<20, using: &rng) == 0 { o[Fuzz.hostile(&rng)] = "extra" }
      return .object(o)
    default:
      return .string(Fuzz.hostile(&rng))
    }
  }

  func request(_ methods: [JSONValue], _ rng: inout SplitMix, id: Int) -> JSONValue {
    let m = methods[Int.random(in: 0..<methods.count, using: &rng)]
    var params: [String: JSONValue] = [:]
    for p in m["params"]?.arrayValue ?? [] {
      let required = p["required"]?.boolValue ?? false
      let include = required ? Int.random(in: 0..<20, using: &rng) != 0 : Bool.random(using: &rng)
      if include, let name = p["name"]?.stringValue { params[name] = value(p["schema"], &rng) }
    }
    var r: [String: JSONValue] = ["jsonrpc": "2.0", "id": .int(Int64(id)), "method": m["name"] ?? "x", "params": .object(params)]
    switch Int.random(in: 0..<30, using: &rng) {
    case 0: r["jsonrpc"] = Bool.random(using: &rng) ? "1.0" : nil
    case 1: r["id"] = [JSONValue.null, .double(1.5), .object([:]), .string(Fuzz.hostile(&rng)), .bool(true)][Int.random(in: 0..<5, using: &rng)]
    case 2: r["params"] = .array(Array(params.values))
    case 3: r["method"] = .string(Fuzz.hostile(&rng))
    case 4: r["params"] = .string("x")
    case 5: r["extra"] = 1
    default: break
    }
    return .object(r)
  }

  /// A JSON-RPC response (or a batch of them), well-formed, and no internal error.
  static func checkResponse(_ v: JSONValue) -> String? {
    if let batch = v.arrayValue {
      if batch.isEmpty { return "empty batch reply" }
      for item in batch { if let p = checkResponse(item) { return p } }
      return nil
    }
    guard let o = v.objectValue, o["jsonrpc"] == "2.0", o.keys.contains("id") else { return "not a JSON-RPC response: \(v)" }
    if let e = o["error"] {
      guard o["result"] == nil, e["code"]?.intValue != nil, e["message"]?.stringValue != nil, e["data"]?["reason"]?.stringValue != nil else {
        return "malformed error: \(v)"
      }
      if e["code"]?.intValue == -32603 { return "internal error: \(v)" }
      return nil
    }
    return o["result"] == nil ? "neither result nor error: \(v)" : nil
  }

  // Blocking sockets for a long while: on a thread of its own, off the cooperative pool.
  @Test func jsonRPCLinesBuiltFromTheMethodSchemas() async throws { try await OwnThread.run { try self.jsonRPCLinesBuiltFromTheMethodSchemasBlocking() } }

  func jsonRPCLinesBuiltFromTheMethodSchemasBlocking() throws {
    let before = try victimFingerprint()
    let methods = (try f.rpc.call("rpc.discover")["methods"]?.arrayValue ?? []).filter {
      // events.subscribe keeps the connection for its stream (tested on its own).
      $0["name"]?.stringValue != "events.subscribe"
    }
    #expect(methods.count > 30)
    let seed = Fuzz.seed()
    var rng = SplitMix(state: seed)
    var client = try LineClient(unixPath: f.process.socketPath, timeoutSeconds: 15)
    var problems: [String] = []
    var answered = 0
    for n in 0..<Self.cases {
      var line: [UInt8]
      if Int.random(in: 0..<10, using: &rng) == 0 {
        let batch = (0..<Int.random(in: 0...4, using: &rng)).map { request(methods, &rng, id: n * 10 + $0) }
        line = JSONWriter.bytes(.array(batch))
      } else {
        line = JSONWriter.bytes(request(methods, &rng, id: n))
      }
      if Int.random(in: 0..<10, using: &rng) < 4 { line = Fuzz.mutate(line, &rng, structural: Array("{}[]\",:\\ 0n".utf8)) }
      // A marker after each case: every line before its reply answers the case.
      let marker = "m\(n)"
      try client.send(line + [0x0A] + Array("{\"jsonrpc\":\"2.0\",\"method\":\"system.health\",\"id\":\"\(marker)\"}\n".utf8))
      while true {
        guard let reply = try? client.readLine() else {
          problems.append("case \(n) (seed \(seed)): no answer (hang or closed) to \(String(decoding: line.prefix(300), as: UTF8.self))")
          client = try LineClient(unixPath: f.process.socketPath, timeoutSeconds: 15)
          break
        }
        guard let v = try? JSONParser.parse(reply, maxDepth: 512) else {
          problems.append("case \(n): reply is not JSON")
          continue
        }
        if v["id"]?.stringValue == marker { break }
        answered += 1
        if let p = Self.checkResponse(v) { problems.append("case \(n) (seed \(seed)): \(p) for \(String(decoding: line.prefix(300), as: UTF8.self))") }
      }
      if problems.count > 10 { break }
    }
    #expect(problems.isEmpty, "\(problems.prefix(5))")
    #expect(try f.rpc.call("system.health")["status"] == "ok")
    #expect(try victimFingerprint() == before, "the victim workspace changed")
    print("JSON-RPC fuzz: \(Self.cases) cases, \(answered) replies, seed \(seed)")
  }

  /// Inputs the long fuzz runs found, kept as fixed cases.
  @Test func regressionsFoundByTheFuzzers() throws {
    // Foundation's ISO 8601 parser accepted a date PostgreSQL refuses: a 500.
    for filter in [#"meta.created lt "2026-01-01T00:026-01-01T00:00:0:007""#, #"meta.lastModified gt "2026-01-01T00:00:00Z""#] {
      let r = try s.http.request("GET", "/scim/v2/Users?filter=" + SCIMFixture.q(filter))
      #expect(r.status == 200 || r.status == 400, "\(filter): \(r.status)")
    }
    // A notification with positional params was answered with a bare null line.
    let c = try f.process.client()
    try c.client.send(Array(#"{"iN":1,"jsonrpc":"2.0","method":"auth.signIn","params":["password","user0@acme.test",1e+300]}"#.utf8) + [0x0A])
    let next = try c.call("system.health")
    #expect(next["status"] == "ok")
  }

  // MARK: HTTP

  struct RawResponse {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
  }

  /// Parses the first response of what the server sent.
  static func parseResponse(_ bytes: [UInt8]) -> RawResponse? {
    guard let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
    let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
    let status = head[0].split(separator: " ")
    guard status.count >= 2, status[0] == "HTTP/1.1", let code = Int(status[1]), (100..<600).contains(code) else { return nil }
    var headers: [(String, String)] = []
    for l in head.dropFirst() {
      guard let c = l.firstIndex(of: ":") else { return nil }
      headers.append((String(l[..<c]).lowercased(), l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)))
    }
    let length = Int(headers.first { $0.0 == "content-length" }?.1 ?? "0") ?? 0
    let body = Array(bytes[end.upperBound...].prefix(length))
    return RawResponse(status: code, headers: headers, body: body)
  }

  /// An error answer of the SCIM listener is SCIM error JSON with the same status.
  static func checkSCIMError(_ r: RawResponse, head: Bool) -> String? {
    // 501 (a Transfer-Encoding we do not speak) and 505 (not HTTP/1.x) are answers, not failures.
    if r.status >= 500 && r.status != 501 && r.status != 505 { return "status \(r.status)" }
    guard r.status >= 400, !head else { return nil }
    guard let v = try? JSONParser.parse(r.body), v["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"], v["status"] == .string(String(r.status))
    else { return "status \(r.status) without SCIM error JSON: \(String(decoding: r.body.prefix(200), as: UTF8.self))" }
    return nil
  }

  func httpCase(_ rng: inout SplitMix) -> [UInt8] {
    func pick<T>(_ xs: [T]) -> T { xs[Int.random(in: 0..<xs.count, using: &rng)] }
    let method = pick(["GET", "GET", "GET", "POST", "POST", "PUT", "PATCH", "PATCH", "DELETE", "HEAD", "OPTIONS", "get", "BREW", ""])
    let id = pick(userIds + [groupId, "nope", "%00", "../x"])
    let target = pick([
      "/scim/v2/Users", "/scim/v2/Users/\(id)", "/scim/v2/Groups", "/scim/v2/Groups/\(groupId)", "/scim/v2/ServiceProviderConfig", "/scim/v2/Schemas",
      "/scim/v2/ResourceTypes", "/scim/v2/Users?filter=userName%20eq%20%22user0@acme.test%22", "/scim/v2/Users?count=-1&startIndex=0", "*",
      "http://h/scim/v2/Users", "/scim/v2/%zz", "/scim/v2/Users/" + String(repeating: "a", count: 9000), "/", "/scim/v2/Users?filter=%00",
    ])
    let version = pick(["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2", "HTTP/1.1x", ""])
    var body: [UInt8] =
      pick([
        JSONWriter.bytes(SCIMFixture.user("h\(rng.next() % 100_000)@acme.test")),
        JSONWriter.bytes([
          "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [["op": "replace", "path": "displayName", "value": "X"]],
        ]), [], Array("{".utf8), Array(Fuzz.hostile(&rng).utf8),
      ])
    var headers = ["Host: roster"]
    if Int.random(in: 0..<10, using: &rng) < 8 { headers.append(pick(["Authorization: Bearer \(s.token)", "Authorization: Bearer \(s.token)", "Authorization: Bearer \(s.token)", "Authorization: Bearer x", "Authorization: Basic eDp5", "Authorization: Bearer", "Authorization: \(Fuzz.hostile(&rng))"])) }
    if Bool.random(using: &rng) { headers.append(pick(["Content-Type: application/scim+json", "Content-Type: application/json", "Content-Type: text/plain", "Content-Type: application/scim+json; charset=utf-8"])) }
    switch Int.random(in: 0..<8, using: &rng) {
    case 0: headers.append("Transfer-Encoding: chunked")
      body = Array(String(body.count, radix: 16).utf8) + Array("\r\n".utf8) + body + Array("\r\n0\r\n\r\n".utf8)
    case 1: headers.append("Content-Length: \(pick(["-1", "99999999999999999999", " 5", "5, 5", "0x10", String(body.count + 3)]))")
    case 2: headers += ["Content-Length: \(body.count)", "Content-Length: \(body.count + 1)"]
    case 3: headers += ["Transfer-Encoding: chunked", "Content-Length: \(body.count)"]
    case 4: headers.append(pick(["Expect: 100-continue", "Connection: close", "X-Folded: a\r\n b", "NoColonHeader", "X-Nul: a\u{0}b", String(repeating: "X-Big: y\r\n", count: 2000)]))
      headers.append("Content-Length: \(body.count)")
    default: headers.append("Content-Length: \(body.count)")
    }
    var bytes = Array("\(method) \(target) \(version)\r\n\(headers.joined(separator: "\r\n"))\r\n\r\n".utf8) + body
    if Int.random(in: 0..<10, using: &rng) < 3 { bytes = Fuzz.mutate(bytes, &rng, structural: Array(" :\r\n/?%{}\"".utf8)) }
    return bytes
  }

  // Blocking sockets for a long while: on a thread of its own, off the cooperative pool.
  @Test func rawHTTPRequestsToTheSCIMListener() async throws { try await OwnThread.run { try self.rawHTTPRequestsToTheSCIMListenerBlocking() } }

  func rawHTTPRequestsToTheSCIMListenerBlocking() throws {
    try fuzzRawHTTP("HTTP fuzz", socket: scimSocket, makeCase: { httpCase(&$0) }) { r, req in
      Self.checkSCIMError(r, head: req.starts(with: Array("HEAD ".utf8)))
    }
  }

  /// The loop both raw HTTP fuzzers share: one request per connection, the
  /// answer read until the server closes; a hang, an answer that is not
  /// HTTP/1.1, or what `check` finds wrong is a problem. Then the process
  /// must be healthy and the victim unchanged.
  func fuzzRawHTTP(
    _ name: String, socket: String, makeCase: (inout SplitMix) -> [UInt8], check: (RawResponse, [UInt8]) -> String?
  ) throws {
    let before = try victimFingerprint()
    let seed = Fuzz.seed()
    var rng = SplitMix(state: seed)
    var problems: [String] = []
    var statuses: [Int: Int] = [:]
    for n in 0..<Self.cases {
      let req = makeCase(&rng)
      let c = try LineClient(unixPath: socket, timeoutSeconds: 15)
      _ = try? c.send(req)
      c.finishSending()
      var out: [UInt8] = []
      var hung = false
      while true {
        do {
          let chunk = try c.readSome()
          if chunk.isEmpty { break }
          out += chunk
        } catch {
          hung = error.code == EAGAIN || error.code == EWOULDBLOCK
          break
        }
      }
      let show = String(decoding: req.prefix(200), as: UTF8.self)
      if hung { problems.append("case \(n) (seed \(seed)): no answer within 15 s to \(show)") }
      guard let r = Self.parseResponse(out) else {
        // Nothing but blank lines sent: nothing to answer.
        let blank = req.allSatisfy { $0 == 0x0D || $0 == 0x0A }
        if !out.isEmpty || (!hung && !blank) { problems.append("case \(n) (seed \(seed)): not an HTTP response (\(out.count) bytes) to \(show)") }
        continue
      }
      statuses[r.status, default: 0] += 1
      if let p = check(r, req) { problems.append("case \(n) (seed \(seed)): \(p) for \(show)") }
      if problems.count > 10 { break }
    }
    #expect(problems.isEmpty, "\(problems.prefix(5))")
    #expect(try f.rpc.call("system.health")["status"] == "ok")
    #expect(try victimFingerprint() == before, "the victim workspace changed")
    print("\(name): \(Self.cases) cases, statuses \(statuses.sorted { $0.key < $1.key }), seed \(seed)")
  }

  // MARK: The web listener (/setup/…, /sso/…)

  /// A request for the browser-facing paths: the setup pages of a link this
  /// fuzzer holds (with its real form key most of the time, so the forms'
  /// handlers run), the ACS, the OIDC callback, metadata and assets.
  func webCase(_ rng: inout SplitMix, token: String, formKey: String, connectionId: String, groupIds: [String]) -> [UInt8] {
    func pick<T>(_ xs: [T]) -> T { xs[Int.random(in: 0..<xs.count, using: &rng)] }
    func enc(_ v: String) -> String { v.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "" }
    let method = pick(["GET", "GET", "POST", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "post", ""])
    let step = pick(["", "/domains", "/sso", "/directory", "/roles", "/overview", "/nope", "/domains/x"])
    let target = pick([
      "/setup/\(token)\(step)", "/setup/\(token)\(step)", "/setup/\(token)\(step)?idp=\(pick(["okta", "entra", "google", "saml", "oidc", "x"]))",
      "/setup/\(token.dropLast())\(step)", "/setup/assets/setup.css", "/setup/assets/../../etc/passwd", "/setup/return?trace=\(enc(Fuzz.hostile(&rng)))",
      "/sso/saml/\(connectionId)/acs", "/sso/saml/\(connectionId)/metadata", "/sso/saml/\(UUID().uuidString)/acs", "/sso/saml/%00/acs",
      "/sso/oidc/callback?code=\(enc(Fuzz.hostile(&rng)))&state=\(enc(Fuzz.hostile(&rng)))", "/sso/oidc/callback?error=access_denied&state=x",
      "/", "/setup/", "/setup/%zz", "/setup/\(token)/" + String(repeating: "a", count: 9000),
    ])
    let version = Int.random(in: 0..<10, using: &rng) == 0 ? pick(["HTTP/1.0", "HTTP/2", ""]) : "HTTP/1.1"
    var fields: [(String, String)] = []
    if Int.random(in: 0..<10, using: &rng) < 9 { fields.append(("form_key", Int.random(in: 0..<4, using: &rng) > 0 ? formKey : Fuzz.hostile(&rng))) }
    fields.append(("action", pick(["add", "check", "enable", "rotate", "save", "test", "configure", Fuzz.hostile(&rng)])))
    for (name, values) in [
      ("domain", ["portal\(rng.next() % 1000).test", "victim.test", Fuzz.hostile(&rng)]), ("method", ["dns", "email", Fuzz.hostile(&rng)]),
      ("email", ["it@portal.test", Fuzz.hostile(&rng)]), ("domainId", [UUID().uuidString, Fuzz.hostile(&rng)]), ("confirm", ["yes", "no"]),
      ("protocol", ["saml", "oidc", Fuzz.hostile(&rng)]), ("idp", ["okta", "entra", "google", "saml", "oidc", Fuzz.hostile(&rng)]),
      ("metadata_xml", ["<EntityDescriptor/>", "<!DOCTYPE x [<!ENTITY a SYSTEM \"file:///etc/passwd\">]><x>&a;</x>", Fuzz.hostile(&rng)]),
      ("issuer", ["not a url", Fuzz.hostile(&rng)]), ("client_id", [Fuzz.hostile(&rng)]), ("default_role", ["admin", "viewer", Fuzz.hostile(&rng)]),
    ] where Bool.random(using: &rng) {
      fields.append((name, pick(values)))
    }
    for id in groupIds + [UUID().uuidString] where Bool.random(using: &rng) {
      fields.append(("role-\(id)", pick(["admin", "creator", "viewer", Fuzz.hostile(&rng)])))
      fields.append(("priority-\(id)", pick(["1", "0", "-5", "99999999999999999999", Fuzz.hostile(&rng)])))
    }
    var body: [UInt8]
    var headers = ["Host: roster"]
    switch Int.random(in: 0..<6, using: &rng) {
    case 0:
      let boundary = "b\(rng.next() % 1_000_000)"
      headers.append("Content-Type: multipart/form-data; boundary=\(pick([boundary, boundary, "", "x\"y"]))")
      body = Array(fields.map { "--\(boundary)\r\nContent-Disposition: form-data; name=\"\($0.0)\"\r\n\r\n\($0.1)\r\n" }.joined().utf8) + Array("--\(boundary)--\r\n".utf8)
    case 1:
      headers.append(pick(["Content-Type: text/plain", "Content-Type: application/json"]))
      body = Array(Fuzz.hostile(&rng).utf8)
    default:
      headers.append("Content-Type: application/x-www-form-urlencoded")
      body = Array(fields.map { "\(enc($0.0))=\(enc($0.1))" }.joined(separator: "&").utf8)
    }
    if Int.random(in: 0..<10, using: &rng) < 7 { headers.append(pick(["Sec-Fetch-Site: same-origin", "Sec-Fetch-Site: same-origin", "Sec-Fetch-Site: cross-site", "Sec-Fetch-Site: none"])) }
    if Int.random(in: 0..<4, using: &rng) == 0 { headers.append(pick(["Origin: https://app.example.test", "Origin: null", "Origin: https://evil.test", "Origin: \(Fuzz.hostile(&rng))"])) }
    switch Int.random(in: 0..<6, using: &rng) {
    case 0: headers.append("Content-Length: \(pick(["-1", "99999999999999999999", "5, 5", String(body.count + 3)]))")
    case 1: headers += ["Transfer-Encoding: chunked", "Content-Length: \(body.count)"]
    case 2: headers.append(pick(["Cookie: roster_setup_return=\(Fuzz.hostile(&rng))", "Expect: 100-continue", "Connection: close", "NoColonHeader"]))
      headers.append("Content-Length: \(body.count)")
    default: headers.append("Content-Length: \(body.count)")
    }
    var bytes = Array("\(method) \(target) \(version)\r\n\(headers.joined(separator: "\r\n"))\r\n\r\n".utf8) + body
    if Int.random(in: 0..<10, using: &rng) < 3 { bytes = Fuzz.mutate(bytes, &rng, structural: Array(" :\r\n/?%&=\"".utf8)) }
    return bytes
  }

  @Test func rawHTTPRequestsToTheWebListener() async throws { try await OwnThread.run { try self.rawHTTPRequestsToTheWebListenerBlocking() } }

  /// P10/G3: every answer of the web listener is a well-formed HTTP response
  /// with the strict headers, never a 5xx; the process stays up; the victim
  /// workspace is untouched.
  func rawHTTPRequestsToTheWebListenerBlocking() throws {
    // The portal's own workspace (a link may rotate its token, so not the SCIM fixture's).
    let portal = try f.workspace("Portal", owner: "owner@portal.test")
    let link = try f.rpc.call("setup.createLink", ["workspaceId": .string(portal.id), "actor": f.admin(portal)])
    let token = String(link["url"]!.stringValue!.split(separator: "/").last!)
    let web = f.process.runDir + "/web.sock"
    let page = try TestHTTP(socket: web).request("GET", "/setup/\(token)/domains")
    let html = String(decoding: page.body, as: UTF8.self)
    guard let r = html.range(of: "name=\"form_key\" value=\""), let e = html[r.upperBound...].firstIndex(of: "\"") else {
      Issue.record("no form key on the setup page")
      return
    }
    let formKey = String(html[r.upperBound..<e])
    // A configured SAML connection, so ACS posts reach the validator.
    try f.verifyDomain(portal, "portal.test")
    let acs = try f.configureSSO(portal)["sp"]?["acsUrl"]?.stringValue ?? ""
    let connectionId = String(acs.split(separator: "/").dropLast().last ?? "")
    #expect(connectionId.count == 36, "no ACS URL in the SSO settings: \(acs)")
    try fuzzRawHTTP("web fuzz", socket: web, makeCase: { webCase(&$0, token: token, formKey: formKey, connectionId: connectionId, groupIds: [groupId]) }) {
      r, _ in
      if r.status >= 500 && r.status != 501 && r.status != 505 { return "status \(r.status)" }
      let csp = r.headers.first { $0.0 == "content-security-policy" }?.1 ?? ""
      if !csp.contains("default-src 'none'") || r.headers.first(where: { $0.0 == "x-frame-options" })?.1 != "DENY" {
        return "status \(r.status) without the strict headers"
      }
      return nil
    }
  }

  // MARK: SCIM filters

  static let attributes = [
    "userName", "displayName", "name.givenName", "name.familyName", "emails", "emails.value", "emails.type", "emails.primary", "active", "externalId",
    "id", "meta.created", "meta.lastModified", "meta.resourceType", "title", "members", "members.value", "groups", "groups.display",
    "urn:ietf:params:scim:schemas:core:2.0:User:userName", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "x", "emails[type", "name..givenName", "",
  ]

  func filterValue(_ rng: inout SplitMix) -> String {
    switch Int.random(in: 0..<8, using: &rng) {
    case 0: return ["true", "false", "null"][Int.random(in: 0..<3, using: &rng)]
    case 1: return ["0", "-1", "1.5", "1e309", "99999999999999999999"][Int.random(in: 0..<5, using: &rng)]
    case 2: return "\"2026-01-01T00:00:00Z\""
    case 3: return "bare"
    case 4: return "\"user\(rng.next() % 5)@acme.test\""
    default: return String(decoding: JSONWriter.bytes(.string(Fuzz.hostile(&rng))), as: UTF8.self)
    }
  }

  func filter(_ rng: inout SplitMix, depth: Int = 0) -> String {
    func pick(_ xs: [String]) -> String { xs[Int.random(in: 0..<xs.count, using: &rng)] }
    let roll = depth > 3 ? 0 : Int.random(in: 0..<10, using: &rng)
    switch roll {
    case 6: return filter(&rng, depth: depth + 1) + " " + pick(["and", "or", "AND", "Or", "xor"]) + " " + filter(&rng, depth: depth + 1)
    case 7: return pick(["not", "NOT", "not "]) + "(" + filter(&rng, depth: depth + 1) + ")"
    case 8: return "(" + filter(&rng, depth: depth + 1) + ")"
    case 9: return pick(["emails", "members", "groups", "addresses", "userName"]) + "[" + filter(&rng, depth: depth + 1) + "]"
    default:
      let attr = pick(Self.attributes)
      if Int.random(in: 0..<8, using: &rng) == 0 { return attr + " pr" }
      return attr + " " + pick(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ", "Sw", "like", "="]) + " " + filterValue(&rng)
    }
  }

  // Blocking sockets for a long while: on a thread of its own, off the cooperative pool.
  @Test func scimFiltersFromTheGrammarAndMutated() async throws { try await OwnThread.run { try self.scimFiltersFromTheGrammarAndMutatedBlocking() } }

  func scimFiltersFromTheGrammarAndMutatedBlocking() throws {
    let before = try victimFingerprint()
    let ours = Set(userIds + [groupId])
    let seed = Fuzz.seed()
    var rng = SplitMix(state: seed)
    var problems: [String] = []
    var outcomes: [Int: Int] = [:]
    for n in 0..<Self.cases {
      var text = Array(filter(&rng).utf8)
      if Int.random(in: 0..<10, using: &rng) < 4 { text = Fuzz.mutate(text, &rng, structural: Array(" ()[]\"\\.:".utf8)) }
      var allowed = CharacterSet.alphanumerics
      allowed.insert(charactersIn: "-._~")
      let encoded = text.map { b -> String in
        let c = Character(Unicode.Scalar(b))
        return b < 0x80 && c.unicodeScalars.allSatisfy(allowed.contains) ? String(c) : String(format: "%%%02X", b)
      }.joined()
      let resource = Bool.random(using: &rng) ? "Users" : "Groups"
      let started = Date()
      // A fresh connection per case: an error answer may close the previous one.
      let http = try TestHTTP(socket: scimSocket, token: s.token)
      let r = try http.raw("GET", "/scim/v2/\(resource)?filter=\(encoded)&count=50", headers: [("Authorization", "Bearer \(s.token)")], body: [])
      outcomes[r.status, default: 0] += 1
      let show = String(decoding: text.prefix(200), as: UTF8.self)
      if Date().timeIntervalSince(started) > 5 { problems.append("case \(n) (seed \(seed)): took \(Date().timeIntervalSince(started)) s for \(show)") }
      switch r.status {
      case 200:
        let ids = (r.json?["Resources"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        if !Set(ids).isSubset(of: ours.union(Set(try knownIds()))) { problems.append("case \(n) (seed \(seed)): another workspace's resource for \(show)") }
      case 400, 414, 431:
        if r.json?["schemas"] != ["urn:ietf:params:scim:api:messages:2.0:Error"] { problems.append("case \(n): \(r.status) without SCIM error for \(show)") }
      default:
        problems.append("case \(n) (seed \(seed)): status \(r.status) for \(show): \(String(decoding: r.body.prefix(200), as: UTF8.self))")
      }
      if problems.count > 10 { break }
    }
    #expect(problems.isEmpty, "\(problems.prefix(5))")
    #expect(try victimFingerprint() == before, "the victim workspace changed")
    print("SCIM filter fuzz: \(Self.cases) cases, statuses \(outcomes.sorted { $0.key < $1.key }), seed \(seed)")
  }

  /// Every SCIM resource id of the fuzzed workspace (the HTTP and PATCH fuzzers may add some).
  func knownIds() throws -> [String] {
    try f.pool.query(
      """
      SELECT member_id::text AS id FROM scim_users WHERE workspace_id = \(s.w.id)::uuid
      UNION ALL SELECT id::text FROM scim_groups WHERE workspace_id = \(s.w.id)::uuid
      """
    ).rows.compactMap { $0["id"] }
  }

  // MARK: PATCH

  func patchValue(_ path: String, _ rng: inout SplitMix) -> JSONValue {
    // Mostly a value of the path's own type, so PATCHes get past validation.
    if Int.random(in: 0..<10, using: &rng) < 7 {
      switch path {
      case "displayName", "title", "externalId", "name.givenName", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        "urn:ietf:params:scim:schemas:core:2.0:User:displayName", "emails[type eq \"work\"].value":
        return .string(Bool.random(using: &rng) ? "V\(rng.next() % 1000)" : Fuzz.hostile(&rng))
      case "active": return .bool(Bool.random(using: &rng))
      case "emails", "emails[type eq \"work\"]": return [["value": .string("p\(rng.next() % 100)@acme.test"), "type": "work", "primary": true]]
      case "members": return [["value": .string(userIds[Int.random(in: 0..<userIds.count, using: &rng)])]]
      case "name": return ["givenName": .string(Fuzz.hostile(&rng)), "familyName": "F"]
      case "userName": return .string("renamed\(rng.next() % 1000)@acme.test")
      case "": return ["displayName": "D", "title": .string(Fuzz.hostile(&rng))]
      default: break
      }
    }
    switch Int.random(in: 0..<9, using: &rng) {
    case 0: return .string(Fuzz.hostile(&rng))
    case 1: return .bool(Bool.random(using: &rng))
    case 2: return "False"
    case 3: return [["value": .string(userIds[Int.random(in: 0..<userIds.count, using: &rng)])]]
    case 4: return [["value": .string("p\(rng.next() % 100)@acme.test"), "type": "work", "primary": true]]
    case 5: return ["givenName": .string(Fuzz.hostile(&rng)), "familyName": nil]
    case 6: return ["displayName": "D", "active": false, "name.givenName": "Dotted", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "R&D"]
    case 7: return .null
    default: return [.int(1), .array([]), .object([:])]
    }
  }

  // Blocking sockets for a long while: on a thread of its own, off the cooperative pool.
  @Test func scimPatchBodiesFromTheGrammarAndMutated() async throws { try await OwnThread.run { try self.scimPatchBodiesFromTheGrammarAndMutatedBlocking() } }

  func scimPatchBodiesFromTheGrammarAndMutatedBlocking() throws {
    let before = try victimFingerprint()
    let seed = Fuzz.seed()
    var rng = SplitMix(state: seed)
    var problems: [String] = []
    var outcomes: [Int: Int] = [:]
    let paths = [
      "displayName", "active", "name.givenName", "name", "emails", "emails[type eq \"work\"].value", "emails[type eq \"work\"]", "userName", "externalId",
      "title", "members", "members[value eq \"\(userIds[0])\"]", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "urn:ietf:params:scim:schemas:core:2.0:User:displayName", "id",
      "meta.created", "schemas", "groups", "emails[", "x.y.z", "",
    ]
    for n in 0..<Self.cases {
      let group = Int.random(in: 0..<4, using: &rng) == 0
      var ops: [JSONValue] = []
      // Mostly operations that make sense for the resource, some that do not.
      let sane = group ? ["displayName", "members", "members[value eq \"\(userIds[0])\"]", "externalId"] : Array(paths.prefix(10))
      for _ in 0..<Int.random(in: 1...3, using: &rng) {
        let valid = Int.random(in: 0..<10, using: &rng) < 8
        let opName = valid ? ["add", "replace", "remove", "Add", "Replace"][Int.random(in: 0..<5, using: &rng)] : ["move", "", "Remove", "copy"][Int.random(in: 0..<4, using: &rng)]
        var op: [String: JSONValue] = ["op": .string(opName)]
        let path = valid ? sane[Int.random(in: 0..<sane.count, using: &rng)] : paths[Int.random(in: 0..<paths.count, using: &rng)]
        if !(path.isEmpty && valid) { op["path"] = .string(path) }
        if opName.lowercased() != "remove" || !valid { op["value"] = patchValue(path, &rng) }
        ops.append(.object(op))
      }
      var body = JSONWriter.bytes(["schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": .array(ops)])
      if Int.random(in: 0..<10, using: &rng) < 3 { body = Fuzz.mutate(body, &rng, structural: Array("{}[]\",:".utf8)) }
      let target = group ? "/scim/v2/Groups/\(groupId)" : "/scim/v2/Users/\(userIds[Int.random(in: 0..<userIds.count, using: &rng)])"
      let http = try TestHTTP(socket: scimSocket, token: s.token)
      let r = try http.raw(
        "PATCH", target, headers: [("Authorization", "Bearer \(s.token)"), ("Content-Type", "application/scim+json")], body: body)
      outcomes[r.status, default: 0] += 1
      let show = String(decoding: body.prefix(300), as: UTF8.self)
      switch r.status {
      case 200, 204: break
      case 400..<500:
        if ProcessInfo.processInfo.environment["ROSTER_FUZZ_SHOW"] != nil { print("\(r.status): \(r.json?["detail"] ?? "") ← \(show)") }
        if r.json?["schemas"] != ["urn:ietf:params:scim:api:messages:2.0:Error"] { problems.append("case \(n): \(r.status) without SCIM error for \(show)") }
      default:
        problems.append("case \(n) (seed \(seed)): status \(r.status) for \(show): \(String(decoding: r.body.prefix(200), as: UTF8.self))")
      }
      // The resource stays readable whatever was done to it.
      if n % 50 == 0 {
        let g = try TestHTTP(socket: scimSocket, token: s.token).request("GET", target)
        if g.status != 200 { problems.append("case \(n): \(target) answers \(g.status) after the PATCH \(show)") }
      }
      if problems.count > 10 { break }
    }
    #expect(problems.isEmpty, "\(problems.prefix(5))")
    #expect(try victimFingerprint() == before, "the victim workspace changed")
    print("SCIM PATCH fuzz: \(Self.cases) cases, statuses \(outcomes.sorted { $0.key < $1.key }), seed \(seed)")
  }
}
