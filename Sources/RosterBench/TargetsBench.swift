import Foundation

/// #17's targets side by side in one run: system.health against the echo
/// baseline, SCIM creates against scim2-server and raw PostgreSQL, the
/// 10,000-member PATCH, and the RSS of every process idle and after the
/// SCIM benchmarks. Ratios, because this machine is noisy.
enum TargetsBench {
  static func run(conninfo: String, runDir: String, scim2ServerPort: UInt16?, seconds: Double) throws {
    let processes = ["provisioning", "deprovisioning", "notifications"]
    let idle = processes.map { rss(runDir, $0) }
    print("## system.health over the socket vs an echo baseline (\(seconds) s per cell)")
    let rpc = try RPCBench.run(socket: runDir + "/provisioning.sock", seconds: seconds)
    print("\n## SCIM POST /Users: Roster vs scim2-server vs raw PostgreSQL (\(seconds) s per cell)")
    let c = try SCIMBench.create(
      conninfo: conninfo, rpcSocket: runDir + "/provisioning.sock", scimSocket: runDir + "/scim.sock", scim2ServerPort: scim2ServerPort,
      seconds: seconds)
    print("\n## One PATCH adding 10,000 members to a group")
    let patch = try SCIMBench.bigPatch(
      conninfo: conninfo, rpcSocket: runDir + "/provisioning.sock", scimSocket: runDir + "/scim.sock", members: 10_000)
    // Settled: 15 s after the last request (the processes trim memory freed
    // by a burst every 10 s; see Sources/roster/main.swift).
    let peak = processes.map { rss(runDir, $0) }
    sleep(15)
    let after = processes.map { rss(runDir, $0) }

    func verdict(_ ok: Bool) -> String { ok ? "met" : "**not met**" }
    var rows: [[String]] = []
    if let ref = c.reference {
      for (i, n) in [1, 8].enumerated() {
        rows.append(["SCIM create, \(n) client\(n == 1 ? "" : "s"): Roster / scim2-server", "≥ 5×", fmt(c.roster[i] / ref[i], 1) + "×", verdict(c.roster[i] >= 5 * ref[i])])
      }
    }
    rows.append(["SCIM create, 1 client: Roster / raw INSERT+COMMIT", "≥ 50%", fmt(100 * c.roster[0] / c.raw[0], 0) + "%", verdict(c.roster[0] >= 0.5 * c.raw[0])])
    rows.append(["SCIM create, 8 clients: Roster / raw INSERT+COMMIT", "≥ 35%", fmt(100 * c.roster[1] / c.raw[1], 0) + "%", verdict(c.roster[1] >= 0.35 * c.raw[1])])
    rows.append([
      "(the same writes as one statement, no Roster: ceiling / raw)", "–",
      fmt(100 * c.ceiling[0] / c.raw[0], 0) + "% / " + fmt(100 * c.ceiling[1] / c.raw[1], 0) + "%", "–",
    ])
    rows.append(["system.health p50, 1 client: Roster / echo", "≤ 1.4×", fmt(rpc.roster / rpc.echo, 2) + "×", verdict(rpc.roster <= 1.4 * rpc.echo)])
    rows.append(["PATCH adding 10,000 members to a mapped group", "≤ 1,000 ms", fmt(patch, 0) + " ms", verdict(patch <= 1000)])
    for (i, p) in processes.enumerated() {
      rows.append(["\(p) RSS idle", "≤ 30 MiB", fmt(idle[i], 1) + " MiB", verdict(idle[i] <= 30)])
      rows.append([
        "\(p) RSS after the SCIM benchmarks (at once → 15 s later)", "≤ 40 MiB", fmt(peak[i], 1) + " → " + fmt(after[i], 1) + " MiB",
        verdict(after[i] <= 40),
      ])
    }
    print("\n## Targets (#17), this run")
    table(["what", "target", "measured", ""], rows)
  }

  /// VmRSS in MiB of the process whose pid file is in `runDir`.
  static func rss(_ runDir: String, _ name: String) -> Double {
    guard let text = try? String(contentsOfFile: "\(runDir)/\(name).pid", encoding: .utf8),
      let pid = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines))
    else { return .nan }
    return JobBench.rssMiB(pid)
  }
}
