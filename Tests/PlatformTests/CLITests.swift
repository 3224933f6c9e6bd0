import Foundation
import JSON
import RosterTestSupport
import Testing

/// `roster call` and `--help` as an operator meets them.
@Suite(.serialized) final class CLITests {
  let run: String
  let process: RunningProcess

  init() throws {
    let db = try TestPostgres.shared.freshDatabase()
    run = try TestFiles.makeTempDirectory(prefix: "roster-cli")
    process = try RunningProcess("provisioning", database: db, runDir: run)
  }

  deinit { process.stop() }

  /// Runs the real binary; returns its exit status and what it printed.
  func roster(_ args: [String], runDir: String? = nil) throws -> (status: Int32, output: String, seconds: Double) {
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "ROSTER_RUN_DIR")
    if let runDir { env["ROSTER_RUN_DIR"] = runDir }
    let out = try TestFiles.makeTempDirectory(prefix: "roster-cli-out") + "/out"
    let started = Date()
    let p = try TestProcess.start([TestFiles.rosterBinary] + args, environment: env, output: out)
    let status = p.wait()
    return (status, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "", Date().timeIntervalSince(started))
  }

  @Test func callPrettyPrintsOrPrintsTheRawReply() throws {
    let pretty = try roster(["call", "provisioning", "system.health"], runDir: run)
    #expect(pretty.status == 0)
    #expect(pretty.output.contains("\n  \"status\": \"ok\""), "\(pretty.output)")
    let raw = try roster(["call", "--raw", "provisioning", "system.health"], runDir: run)
    #expect(raw.status == 0)
    let line = try #require(raw.output.split(separator: "\n").first)
    #expect(try JSONParser.parse(Array(line.utf8))["result"]?["status"] == "ok")
    let metrics = try roster(["call", "provisioning", "system.metrics"], runDir: run)
    #expect(metrics.output.hasPrefix("# HELP "), "the Prometheus text itself: \(metrics.output.prefix(200))")
    let refused = try roster(["call", "provisioning", "workspace.get", "{}"], runDir: run)
    #expect(refused.status == 1)
    #expect(refused.output.contains("\"reason\": \"missing_param\""))
    let wrongSocket = try roster(["call", "provisioning", "job.list"], runDir: run)
    #expect(wrongSocket.output.contains("deprovisioning.sock"))
  }

  @Test func callExplainsWhyItCannotTalkToASocket() throws {
    let http = try roster(["call", "scim.sock", "system.health"], runDir: run)
    #expect(http.status == 2)
    #expect(http.output.contains("speaks HTTP, not JSON-RPC"), "\(http.output)")
    #expect(http.seconds < 10, "at once, not after the timeout: \(http.seconds) s")
    let web = try roster(["call", run + "/web.sock", "system.health"])
    #expect(web.output.contains("speaks HTTP"))
    let name = try roster(["call", "scim", "system.health"], runDir: run)
    #expect(name.status == 2 && name.output.contains("not a JSON-RPC socket"))
    let unset = try roster(["call", "provisioning", "system.health"])
    #expect(unset.status == 2)
    #expect(unset.output.contains("/run/roster/provisioning.sock") && unset.output.contains("ROSTER_RUN_DIR is not set"), "\(unset.output)")
    let elsewhere = try roster(["call", "provisioning", "system.health"], runDir: run + "/nowhere")
    #expect(elsewhere.output.contains("Is `roster provisioning` running with ROSTER_RUN_DIR=\(run)/nowhere?"), "\(elsewhere.output)")
    #expect(try roster(["call", "--timeout", "abc", "provisioning", "system.health"], runDir: run).status == 2)
  }

  @Test func helpListsOnlyWhatACommandUses() throws {
    let call = try roster(["call", "--help"])
    #expect(call.status == 0)
    #expect(call.output.contains("default 60"), "the timeout is stated")
    #expect(call.output.contains("ROSTER_RUN_DIR") && !call.output.contains("ROSTER_SMTP_URL"))
    let migrate = try roster(["migrate", "--help"])
    #expect(migrate.output.contains("ROSTER_DATABASE_URL") && migrate.output.contains("ROSTER_SCHEMA_DIR"))
    #expect(!migrate.output.contains("ROSTER_WEB_LISTEN"))
    let notifications = try roster(["notifications", "--help"])
    #expect(notifications.output.contains("ROSTER_SMTP_URL") && !notifications.output.contains("ROSTER_SCIM_LISTEN"))
    let version = try roster(["version", "--help"])
    #expect(version.status == 0 && version.output.contains("roster version"))
    let all = try roster(["--help"])
    #expect(all.output.contains("ROSTER_SMTP_URL") && all.output.contains("ROSTER_WEB_LISTEN"))
  }
}
