import Foundation
import JSON
import RosterTestSupport
import Testing

/// Every process scraped by a real Prometheus on ROSTER_METRICS_LISTEN; the
/// shipped alert rules and dashboard checked against it.
@Suite(.serialized) final class MonitoringTests {
  static let repo = TestFiles.repositoryRoot

  /// `promtool check …` exits 0.
  func promtool(_ args: [String], stdin: String? = nil) throws -> (Int32, String) {
    let dir = try TestFiles.makeTempDirectory(prefix: "roster-promtool")
    var argv = ["/usr/bin/promtool"] + args
    if let stdin {
      try stdin.write(toFile: dir + "/in", atomically: true, encoding: .utf8)
      argv = ["/bin/sh", "-c", "/usr/bin/promtool " + args.joined(separator: " ") + " < " + dir + "/in"]
    }
    let p = try TestProcess.start(argv, output: dir + "/out")
    let status = p.wait()
    return (status, (try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? "")
  }

  @Test func theShippedRulesAndConfigPassPromtool() throws {
    let rules = try promtool(["check", "rules", Self.repo + "/deploy/prometheus/alerts.yml"])
    #expect(rules.0 == 0, "\(rules.1)")
    #expect(rules.1.contains("SUCCESS: 7 rules found"))
    let config = try promtool(["check", "config", Self.repo + "/deploy/prometheus/prometheus.yml"])
    #expect(config.0 == 0, "\(config.1)")
  }

  @Test func aRealPrometheusScrapesAllThreeAndTheAlertsAndDashboardWork() throws {
    let db = try TestPostgres.shared.freshDatabase()
    let run = try TestFiles.makeTempDirectory(prefix: "roster-monitor")
    let smtp = try TestSMTP()
    try smtp.setRules(["bounce@acme.test": "550 5.1.1 No such user here"])
    let ports = (0..<3).map { _ in freeLoopbackPort() }
    var processes: [String: RunningProcess] = [:]
    for (i, name) in ["provisioning", "deprovisioning", "notifications"].enumerated() {
      processes[name] = try RunningProcess(
        name, database: db, runDir: run, environment: ["ROSTER_METRICS_LISTEN": "tcp:127.0.0.1:\(ports[i])", "ROSTER_SMTP_URL": smtp.url])
    }
    defer { for p in processes.values { p.stop() } }

    // Each serves GET /metrics and nothing else, in a format promtool accepts.
    for port in ports {
      let http = { try TestHTTP(host: "127.0.0.1", port: port) }
      let page = try http().raw("GET", "/metrics", headers: [], body: [])
      #expect(page.status == 200)
      #expect(page.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
      let lint = try promtool(["check", "metrics"], stdin: String(decoding: page.body, as: UTF8.self))
      #expect(lint.0 == 0, "promtool check metrics: \(lint.1)")
      #expect(try http().raw("GET", "/", headers: [], body: []).status == 404)
      #expect(try http().raw("POST", "/metrics", headers: [], body: []).status == 405)
    }

    // Some of everything the dashboard shows.
    let rpc = try processes["provisioning"]!.client()
    let w = try rpc.call("workspace.create", ["name": "Acme", "plan": "enterprise", "owner": ["email": "owner@acme.test"]])
    let admin: JSONValue = ["memberId": w["ownerMemberId"]!]
    let jane = try rpc.call("member.add", ["workspaceId": w["workspaceId"]!, "email": "jane@acme.test", "actor": admin])
    _ = try rpc.error("no.such.method")
    let token = try rpc.call("directory.enable", ["workspaceId": w["workspaceId"]!, "actor": admin])["bearerToken"]!.stringValue!
    #expect(try TestHTTP(socket: run + "/scim.sock", token: token).request("GET", "/scim/v2/Users").status == 200)
    _ = try TestHTTP(socket: run + "/web.sock").raw("POST", "/sso/saml/3f2504e0-4f89-41d3-9a0c-0305e82c3301/acs", headers: [], body: [])
    let events = try TestRPC(run + "/provisioning.sock")
    try events.client.send(Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"events.subscribe\",\"params\":{}}\n".utf8))
    _ = try events.client.readLine()
    let jobs = try processes["deprovisioning"]!.client()
    _ = try jobs.call("deprovision.member", ["workspaceId": w["workspaceId"]!, "memberId": jane["memberId"]!, "actor": admin])
    let mail = try processes["notifications"]!.client()
    for to in ["it@acme.test", "bounce@acme.test"] {
      _ = try mail.call(
        "notification.enqueue",
        ["template": "deprovision_summary", "to": .string(to), "data": ["workspaceName": "Acme", "memberEmail": "j@acme.test", "memberName": "J", "mode": "deactivate", "content": "kept"]])
    }

    // Prometheus with the shipped rules, `for:` shortened so alerts fire in seconds.
    var rules = try String(contentsOfFile: Self.repo + "/deploy/prometheus/alerts.yml", encoding: .utf8)
    rules = rules.replacingOccurrences(of: #"for: \S+"#, with: "for: 0s", options: .regularExpression)
    let targets = zip(["provisioning", "deprovisioning", "notifications"], ports).map { name, port in
      "      - targets: [\"127.0.0.1:\(port)\"]\n        labels: {process: \(name)}"
    }.joined(separator: "\n")
    let prometheus = try TestPrometheus(
      config: """
        global: {scrape_interval: 1s, evaluation_interval: 1s}
        rule_files: [alerts.yml]
        scrape_configs:
          - job_name: roster
            static_configs:
        \(targets)
        """, files: ["alerts.yml": rules])

    // All three targets up.
    var health: [String] = []
    #expect(TestProcess.waitUntil(timeout: 30) {
      health = ((try? prometheus.api("targets")["activeTargets"]?.arrayValue) ?? nil)?.compactMap { $0["health"]?.stringValue } ?? []
      return health == ["up", "up", "up"]
    }, "\(health)")
    #expect(try prometheus.query("roster_jobs_queued").count == 1)
    #expect(try prometheus.query("roster_outbox_pending").count == 1)
    #expect(try prometheus.query("roster_database_up == 1").count == 3)

    // Every rule evaluates without error.
    var rulesSeen: [JSONValue] = []
    #expect(TestProcess.waitUntil(timeout: 20) {
      rulesSeen = ((try? prometheus.api("rules")["groups"]?.arrayValue?.first?["rules"]?.arrayValue) ?? nil) ?? []
      return rulesSeen.count == 7 && rulesSeen.allSatisfy { $0["health"] == "ok" && $0["lastEvaluation"]?.stringValue?.hasPrefix("0001") == false }
    }, "\(rulesSeen.map { "\($0["name"] ?? .null) \($0["health"] ?? .null) \($0["lastError"] ?? .null)" }) \((try? prometheus.api("rules")) ?? .null)")

    // The refused email fires its alert.
    func firing(_ name: String, _ label: (String, String)? = nil) -> Bool {
      let alerts = ((try? prometheus.api("alerts")["alerts"]?.arrayValue) ?? nil) ?? []
      return alerts.contains { a in
        a["labels"]?["alertname"] == .string(name) && a["state"] == "firing" && (label.map { l in a["labels"]?[l.0] == .string(l.1) } ?? true)
      }
    }
    #expect(TestProcess.waitUntil(timeout: 30) { firing("RosterEmailsFailed") })

    // Every dashboard panel's query returns data without error.
    let dashboard = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: Self.repo + "/deploy/grafana/roster.json"))))
    let exprs = (dashboard["panels"]?.arrayValue ?? []).flatMap { p in
      (p["targets"]?.arrayValue ?? []).compactMap { t in t["expr"]?.stringValue.map { (p["title"]?.stringValue ?? "", $0) } }
    }
    #expect(exprs.count >= 14)
    // Rates need a few scrapes of the traffic above.
    Thread.sleep(forTimeInterval: 3)
    for (title, expr) in exprs {
      let q = expr.replacingOccurrences(of: "$__rate_interval", with: "5m")
      let result = try prometheus.query(q)
      #expect(!result.isEmpty, "panel '\(title)': \(q) returned nothing")
    }

    // A process that stops is reported.
    processes["deprovisioning"]!.stop()
    #expect(TestProcess.waitUntil(timeout: 30) { firing("RosterProcessDown", ("process", "deprovisioning")) })
    _ = events
  }
}
