import Foundation
import JSON
import RosterTestSupport
import Testing

/// The container entrypoint and the metrics operators scrape.
@Suite struct OperationsTests {
  @Test func entrypointRejectsAnUnknownRoleClearly() throws {
    let dir = try TestFiles.makeTempDirectory(prefix: "roster-entry")
    var env = ProcessInfo.processInfo.environment
    env["ROSTER_BIN"] = TestFiles.rosterBinary
    let entry = TestFiles.repositoryRoot + "/deploy/image/entrypoint.sh"
    let bad = try TestProcess.start([entry, "bogus"], environment: env, output: dir + "/bad.log")
    #expect(bad.wait() == 2)
    #expect(((try? String(contentsOfFile: dir + "/bad.log", encoding: .utf8)) ?? "").contains("unknown role 'bogus'"))
    let none = try TestProcess.start([entry], environment: env, output: dir + "/none.log")
    #expect(none.wait() == 2)
    let version = try TestProcess.start([entry, "version"], environment: env, output: dir + "/version.log")
    #expect(version.wait() == 0)
    #expect(((try? String(contentsOfFile: dir + "/version.log", encoding: .utf8)) ?? "").hasPrefix("0."))
  }

  @Test func everyProcessExportsItsMetrics() throws {
    let db = try TestPostgres.shared.freshDatabase()
    let run = try TestFiles.makeTempDirectory(prefix: "roster-metrics")
    let p = try RunningProcess("provisioning", database: db, runDir: run, environment: ["ROSTER_SCIM_METRICS": "true"])
    let d = try RunningProcess("deprovisioning", database: db, runDir: run)
    let n = try RunningProcess("notifications", database: db, runDir: run, environment: ["ROSTER_SMTP_URL": "smtp://127.0.0.1:9"])
    defer { p.stop(); d.stop(); n.stop() }
    let provisioning = try p.client().call("system.metrics")["text"]?.stringValue ?? ""
    #expect(provisioning.contains("roster_database_up 1"))
    #expect(provisioning.contains("roster_database_reconnects"))
    let jobs = try d.client().call("system.metrics")["text"]?.stringValue ?? ""
    for name in ["roster_jobs_queued", "roster_jobs_running", "roster_jobs_failed", "roster_jobs_oldest_age_seconds"] {
      #expect(jobs.contains("# TYPE \(name) gauge"), "\(name)")
    }
    let outbox = try n.client().call("system.metrics")["text"]?.stringValue ?? ""
    for name in ["roster_outbox_pending", "roster_outbox_failed", "roster_outbox_oldest_pending_seconds"] {
      #expect(outbox.contains("# TYPE \(name) gauge"), "\(name)")
    }
    // SCIM requests by status, served on the SCIM listener as well.
    let http = try TestHTTP(socket: run + "/scim.sock")
    #expect(try http.request("GET", "/scim/v2/Users").status == 401)
    let scraped = try http.request("GET", "/metrics")
    #expect(scraped.status == 200)
    let text = String(decoding: scraped.body, as: UTF8.self)
    #expect(text.contains("roster_scim_requests_total{method=\"GET\",status=\"401\"} 1"))
    #expect(text.contains("# TYPE roster_rpc_request_duration_seconds histogram"))
  }

  /// Metric labels come from our code, not from input: unknown JSON-RPC
  /// method names and unknown HTTP verbs each fall into one series, so a
  /// client sending random names cannot grow the process's memory.
  @Test func metricLabelsStayBoundedUnderRandomInput() throws {
    let db = try TestPostgres.shared.freshDatabase()
    let run = try TestFiles.makeTempDirectory(prefix: "roster-labels")
    let p = try RunningProcess("provisioning", database: db, runDir: run, environment: ["ROSTER_SCIM_METRICS": "true"])
    defer { p.stop() }
    let rpc = try p.client()
    for n in 0..<5 { #expect(try rpc.error("made.up\(n)")?.code == -32601) }
    for verb in ["BREW", "PURGE"] {
      #expect(try TestHTTP(socket: run + "/scim.sock").request(verb, "/scim/v2/Users").status == 401)
    }
    let text = try rpc.call("system.metrics")["text"]?.stringValue ?? ""
    #expect(text.contains("roster_rpc_requests_total{method=\"(unknown)\",outcome=\"-32601\"} 5"))
    #expect(!text.contains("made.up"))
    #expect(text.contains("roster_scim_requests_total{method=\"other\",status=\"401\"} 2"))
    #expect(!text.contains("BREW") && !text.contains("PURGE"))
  }

  /// The systemd install puts everything where the units and the example
  /// environment file say it is (staged under a temporary root).
  @Test func systemdInstallPutsEveryPathTheUnitsName() throws {
    let dest = try TestFiles.makeTempDirectory(prefix: "roster-systemd")
    var env = ProcessInfo.processInfo.environment
    env["ROSTER_BIN_DIR"] = URL(fileURLWithPath: TestFiles.rosterBinary).deletingLastPathComponent().path
    let log = dest + "/../install-\(UUID().uuidString).log"
    let p = try TestProcess.start([TestFiles.repositoryRoot + "/deploy/systemd/install.sh", dest], environment: env, output: log)
    #expect(p.wait() == 0, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    let fm = FileManager.default
    let units = try fm.contentsOfDirectory(atPath: dest + "/etc/systemd/system")
    #expect(Set(units) == ["roster.target", "roster-migrate.service", "roster-provisioning.service", "roster-deprovisioning.service", "roster-notifications.service"])
    var named: [String] = []
    for u in units {
      for line in try String(contentsOfFile: dest + "/etc/systemd/system/" + u, encoding: .utf8).split(separator: "\n") {
        if line.hasPrefix("ExecStart=") { named.append(String(line.dropFirst("ExecStart=".count).split(separator: " ")[0])) }
        if line.hasPrefix("EnvironmentFile=") { named.append(String(line.dropFirst("EnvironmentFile=".count))) }
        if line.hasPrefix("Documentation=file://") { named.append(String(line.dropFirst("Documentation=file://".count))) }
      }
    }
    for line in try String(contentsOfFile: dest + "/etc/roster/roster.env", encoding: .utf8).split(separator: "\n") where line.hasPrefix("ROSTER_SCHEMA_DIR=") || line.hasPrefix("ROSTER_DATA_DIR=") {
      named.append(String(line.split(separator: "=", maxSplits: 1)[1]))
    }
    #expect(named.count >= 12)
    for path in Set(named) { #expect(fm.fileExists(atPath: dest + path), "\(path) is named but not installed") }
    #expect(fm.fileExists(atPath: dest + "/usr/local/share/roster/data/public_suffix_list.dat"))
    #expect(fm.fileExists(atPath: dest + "/usr/local/share/roster/schema/001_init.sql"))
  }
}

