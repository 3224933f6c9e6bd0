import Foundation
import JSON
import LoadDriver
import Postgres

#if canImport(Glibc)
  import Glibc
#endif

/// `roster-bench load`: 16 clients of mixed traffic for a while, then the
/// ledger checked against the database; RSS and fds of every process at the
/// start, after warm-up and at the end.
enum LoadBench {
  /// Writes at once (print is block-buffered into a pipe; a long run is watched).
  static func say(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }

  /// One unlabelled value from a process's system.metrics.
  static func metric(_ socket: String, _ name: String) -> String {
    guard case .ok(let m) = RPCClient(paths: [socket]).call("system.metrics"), let text = m["text"]?.stringValue else { return "?" }
    for line in text.split(separator: "\n") where line.hasPrefix(name + " ") { return String(line.dropFirst(name.count + 1)) }
    return "?"
  }

  /// What malloc has allocated in the process (roster_process_heap_allocated_bytes), in MiB.
  static func heapMiB(_ socket: String) -> String {
    guard let bytes = Double(metric(socket, "roster_process_heap_allocated_bytes")) else { return "?" }
    return String(format: "%.1f", bytes / 1_048_576)
  }

  static func pids(_ targets: LoadTargets) -> [(String, Int32, String)] {
    var out: [(String, Int32, String)] = []
    for (name, paths) in [("provisioning", targets.provisioning), ("deprovisioning", targets.deprovisioning), ("notifications", targets.notifications)] {
      for (i, p) in paths.enumerated() {
        if case .ok(let h) = RPCClient(paths: [p]).call("system.health"), let pid = h["pid"]?.intValue {
          out.append((paths.count > 1 ? "\(name) #\(i + 1)" : name, Int32(pid), p))
        }
      }
    }
    return out
  }

  static func run(conninfo: String, runDirs: [String], seconds: Double, clients: Int, mailDir: String?, sso: (UInt16, UInt16, String)?) throws {
    let targets = LoadTargets.runDirectories(runDirs)
    let pool = PGPool(config: PGConfig(conninfo: conninfo), size: 2)
    defer { pool.closeAll() }
    let peers = try sso.map { sso -> SSOPeers in
      guard let mailDir else { throw BenchError("SSO sign-ins need the mail folder (domains are verified by email)") }
      return SSOPeers(samlIdPPort: sso.0, oidcProviderPort: sso.1, publicURL: sso.2, mailDir: mailDir)
    }
    let workspace = try LoadWorkspace.create(targets, tag: "b\(getpid())-\(Int(Date().timeIntervalSince1970))", sso: peers)
    var options = MixedLoad.Options()
    options.clients = clients
    let procs = pids(targets)
    let before = procs.map { ProcessStats.read($0.1) }
    let load = MixedLoad(targets: targets, workspace: workspace, options: options)
    load.start()
    // Warm-up: a tenth of the run, at most a minute.
    let warm = min(60, seconds / 10)
    usleep(UInt32(warm * 1_000_000))
    let warmed = procs.map { ProcessStats.read($0.1) }
    let heapWarmed = procs.map { heapMiB($0.2) }
    usleep(UInt32((seconds - warm) * 1_000_000))
    // Read while the clients are still connected, like the warm-up figures.
    let after = procs.map { ProcessStats.read($0.1) }
    let heapAfter = procs.map { heapMiB($0.2) }
    let report = load.finish()
    say("\(clients) clients, \(String(format: "%.0f", report.seconds)) s, \(report.users.count) users created, \(report.users.filter { !$0.active }.count) deactivated\n")
    say(report.table())
    say("| process | RSS start | RSS after warm-up | RSS end | heap allocated after warm-up → end | fds start | fds after warm-up | fds end | threads end | pool waits |")
    say("|---|---|---|---|---|---|---|---|---|---|")
    for (i, p) in procs.enumerated() {
      func mib(_ s: ProcessStats?) -> String { s.map { String(format: "%.1f MiB", $0.rssMiB) } ?? "?" }
      func fds(_ s: ProcessStats?) -> String { s.map { String($0.openFDs) } ?? "?" }
      say("| \(p.0) | \(mib(before[i])) | \(mib(warmed[i])) | \(mib(after[i])) | \(heapWarmed[i]) → \(heapAfter[i]) MiB | \(fds(before[i])) | \(fds(warmed[i])) | \(fds(after[i])) | \(after[i].map { String($0.threads) } ?? "?") | \(metric(p.2, "roster_database_pool_waits")) |")
    }
    say("\nChecking every accepted change…")
    let findings = try LoadVerifier(pool: pool, workspace: workspace, targets: targets, mailDir: mailDir).verify(report)
    say(
      "\nChecked: \(findings.usersChecked) users, \(findings.deprovisioned) deprovisioned (\(findings.contentMoved) items moved), \(findings.jobs) jobs, \(findings.emails) emails; all settled \(String(format: "%.1f", findings.settleSeconds)) s after the load; \(findings.problems.count) problems"
    )
    if workspace.sso != nil {
      let t = report.sso
      say(
        "SSO: \(t.signIns) sign-ins redeemed (\(findings.oidcMembers) people joined through OIDC), \(t.refusedRemoved) sign-ins of removed users refused, \(t.replays) SAMLResponse replays and \(t.codesReused) second redemptions refused, \(t.flowsInDoubt) flows restarted"
      )
    }
    for p in findings.problems.prefix(20) { say("  - \(p)") }
    for e in report.errorSamples { say("  error: \(e)") }
    if !findings.ok || report.totalErrors > 0 { throw BenchError("the load run found problems (above)") }
  }
}
