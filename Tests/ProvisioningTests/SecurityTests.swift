import Foundation
import JSON
import RosterTestSupport
import Sockets
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Security checks as tests: injection strings in every parameter of every
/// method on all three sockets and in every SCIM filter position change
/// nothing they should not; a wrong SCIM token costs the same whatever it
/// shares with the right one; every socket file is 0660. (Cross-tenant ids →
/// 404: SCIMSafetyTests.c7…; ops from a non-ops uid: DomainFlowTests and
/// IntegratorTests; tokens in logs: deploy/scan-logs.sh over a full run.)
@Suite(.serialized) final class SecurityTests: @unchecked Sendable {
  let f: ProvisioningFixture
  let s: SCIMFixture
  let deprovisioning: RunningProcess
  let notifications: RunningProcess
  let victimId: String

  static let injections = [
    "' OR '1'='1", "'; DROP TABLE members; --", "x'); DELETE FROM workspaces; --", "1; SELECT pg_sleep(10)", "' || pg_sleep(10) || '",
    "\") OR 1=1 --", "'||(SELECT string_agg(email, ',') FROM users)||'", "$1", "\\'; TRUNCATE users; --",
  ]

  init() throws {
    f = try ProvisioningFixture()
    s = try SCIMFixture(f)
    _ = try s.createUser("alice@acme.test")
    let runDir = f.process.runDir
    deprovisioning = try RunningProcess("deprovisioning", database: f.database, runDir: runDir)
    notifications = try RunningProcess("notifications", database: f.database, runDir: runDir)
    let v = try f.workspace("Victim", owner: "owner@victim.test")
    victimId = v.id
    try f.addMember(v, "member@victim.test")
  }

  deinit {
    deprovisioning.stop()
    notifications.stop()
  }

  /// Rows of every table (a dropped, emptied or rewritten table shows here)
  /// and a digest of everything in the victim workspace.
  func fingerprint() throws -> String {
    try f.pool.query(
      """
      SELECT (SELECT string_agg(relname || ':' || n_live_tup, ',' ORDER BY relname) FROM pg_stat_user_tables WHERE relname IN ('users', 'workspaces', 'members')) AS tables,
        (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM workspaces) AS workspaces,
        (SELECT md5(string_agg(m::text, '|' ORDER BY m.id)) FROM members m WHERE m.workspace_id = \(victimId)::uuid) AS victim,
        (SELECT md5(w::text) FROM workspaces w WHERE w.id = \(victimId)::uuid) AS victim_row
      """
    ).first.map { "\($0["victim"] ?? "")|\($0["victim_row"] ?? "")|\($0["users"] ?? "")" } ?? ""
  }

  /// A plausible value for a parameter schema, so the injection in the
  /// parameter under test gets as far into the method as it can.
  func plausible(_ schema: JSONValue?) -> JSONValue {
    guard let schema else { return "x" }
    if let options = schema["enum"]?.arrayValue, let first = options.first { return first }
    switch schema["type"]?.stringValue {
    case "string":
      switch schema["format"]?.stringValue {
      case "uuid": return .string(s.w.id)
      case "email": return "alice@acme.test"
      default: return "plain"
      }
    case "integer": return .int(Int(schema["minimum"]?.intValue ?? 1))
    case "boolean": return false
    case "array": return []
    case "object":
      if schema["properties"]?["memberId"] != nil { return ["memberId": .string(s.w.owner)] }
      return [:]
    default: return "x"
    }
  }

  @Test func injectionStringsInEveryParameterOfEveryMethodChangeNothing() throws {
    let before = try fingerprint()
    var calls = 0
    var problems: [String] = []
    for process in [f.process, deprovisioning, notifications] {
      var rpc = try process.client()
      let methods = (try rpc.call("rpc.discover")["methods"]?.arrayValue ?? []).filter { $0["name"]?.stringValue != "events.subscribe" }
      for m in methods {
        let name = m["name"]!.stringValue!
        let params = m["params"]?.arrayValue ?? []
        var base: [String: JSONValue] = [:]
        for p in params { base[p["name"]!.stringValue!] = plausible(p["schema"]) }
        // Each parameter in turn (and each free-text field of an object parameter) gets each injection.
        var positions: [(String, String?)] = params.map { ($0["name"]!.stringValue!, nil) }
        for p in params {
          for (k, v) in p["schema"]?["properties"]?.objectValue ?? [:] where v["type"] == "string" { positions.append((p["name"]!.stringValue!, k)) }
        }
        for (param, field) in positions {
          for injection in Self.injections {
            var call = base
            if let field {
              var o = call[param]?.objectValue ?? [:]
              o[field] = .string(injection)
              call[param] = .object(o)
            } else {
              call[param] = .string(injection)
            }
            let started = Date()
            let line = JSONWriter.string(["jsonrpc": "2.0", "id": 1, "method": .string(name), "params": .object(call)])
            guard let reply = try? rpc.raw(line + "\n") else {
              problems.append("\(name).\(param): the connection closed with \(injection)")
              rpc = try process.client()
              continue
            }
            calls += 1
            let took = Date().timeIntervalSince(started)
            if took > 3 { problems.append("\(name).\(param)\(field.map { "." + $0 } ?? ""): took \(took) s with \(injection)") }
            if reply["error"]?["code"] == -32603 { problems.append("\(name).\(param): internal error with \(injection)") }
          }
        }
      }
    }
    #expect(calls > 500)
    #expect(problems.isEmpty, "\(problems.prefix(5))")
    #expect(try fingerprint() == before, "the victim workspace or a table changed")
    // Values that were stored are stored as given, not interpreted.
    let m = try f.rpc.call(
      "member.add", ["workspaceId": .string(s.w.id), "email": "bobby@acme.test", "name": "Robert'); DROP TABLE members;--", "actor": f.admin(s.w)])
    #expect(try f.rpc.call("member.get", ["workspaceId": .string(s.w.id), "memberId": m["memberId"]!])["name"] == "Robert'); DROP TABLE members;--")
  }

  @Test func injectionStringsInEveryFilterPositionChangeNothing() throws {
    let before = try fingerprint()
    let alice = try #require(try s.http.request("GET", "/scim/v2/Users?filter=" + SCIMFixture.q("userName eq \"alice@acme.test\"")).json?["Resources"]?.arrayValue?.first?["id"]?.stringValue)
    let attributes = ["userName", "displayName", "name.givenName", "emails.value", "emails[value", "externalId", "id", "title", "meta.created", "members.value"]
    for attr in attributes {
      for injection in Self.injections {
        let quoted = String(decoding: JSONWriter.bytes(.string(injection)), as: UTF8.self)
        for filter in ["\(attr) eq \(quoted)", "\(attr) co \(quoted)", "\(attr) sw \(quoted)", "\(attr) gt \(quoted)", "\(injection) eq \"x\"", "\(attr) eq \(injection)"] {
          for resource in ["Users", "Groups"] {
            let started = Date()
            let r = try s.http.request("GET", "/scim/v2/\(resource)?filter=" + SCIMFixture.q(filter))
            #expect(Date().timeIntervalSince(started) < 3, "\(filter) took too long")
            #expect(r.status == 200 || r.status == 400, "\(filter): \(r.status)")
            // Equality and substring matches find nothing; an ordering
            // (gt) may match this workspace's own users, and only them.
            let ids = (r.json?["Resources"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
            #expect(Set(ids).isSubset(of: [alice]), "\(filter) matched \(ids)")
            if !filter.contains(" gt ") { #expect(ids.isEmpty, "\(filter) matched something") }
          }
        }
      }
    }
    #expect(try fingerprint() == before)
  }

  /// A timing measurement: it takes its turn with the tests that saturate
  /// the machine (fault scenarios, a thousand slow clients), and the three
  /// tokens take turns request by request, so drift in the machine's load
  /// (other suites run meanwhile) hits all three alike.
  @Test func aWrongTokenTakesAsLongWhateverItSharesWithTheRightOne() async throws {
    let (m, statuses) = try await OwnThread.run { try MachineHogs.exclusively { try self.wrongTokenMedians() } }
    #expect(statuses == [401], "every wrong token is refused")
    let lo = m.values.min()!, hi = m.values.max()!
    // The lookup is by SHA-256 of the whole token, so no comparison runs
    // over the secret's characters; allow machine noise only.
    #expect(hi - lo < max(60, lo * 0.25), "medians µs: \(m)")
    print("wrong-token medians (µs): \(m)")
  }

  /// Median µs of 500 requests per wrong token, interleaved; the statuses seen.
  func wrongTokenMedians() throws -> ([String: Double], Set<Int>) {
    let right = s.token
    let tokens = [
      ("almost", String(right.dropLast()) + (right.last == "a" ? "b" : "a")),
      ("prefix", "roster_scim_" + String(repeating: "a", count: right.count - 12)),
      ("nothing", String(repeating: "z", count: right.count)),
    ]
    let clients = try tokens.map { ($0.0, try TestHTTP(socket: f.process.runDir + "/scim.sock", token: $0.1)) }
    var samples: [String: [Double]] = [:]
    var statuses: Set<Int> = []
    for _ in 0..<500 {
      for (label, http) in clients {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = try http.request("GET", "/scim/v2/ServiceProviderConfig")
        samples[label, default: []].append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000)
        statuses.insert(r.status)
      }
    }
    return (samples.mapValues { $0.sorted()[$0.count / 2] }, statuses)
  }

  @Test func everySocketFileIs0660() throws {
    for name in ["provisioning.sock", "scim.sock", "web.sock", "deprovisioning.sock", "notifications.sock"] {
      var st = stat()
      #expect(stat(f.process.runDir + "/" + name, &st) == 0, "\(name) missing")
      #expect(st.st_mode & 0o777 == 0o660, "\(name) is \(String(st.st_mode & 0o777, radix: 8))")
    }
  }
}
