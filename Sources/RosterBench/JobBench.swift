import Foundation
import JSON
import LoadDriver
import Postgres

#if canImport(Glibc)
  import Glibc
#endif

/// Deprovisioning and outbox benchmarks.
enum JobBench {
  @discardableResult
  static func rpc(_ c: LineClientBox, _ method: String, _ params: JSONValue) throws -> JSONValue {
    let r = try c.roundTrip(JSONWriter.bytes(["jsonrpc": "2.0", "id": 1, "method": .string(method), "params": params]) + [0x0A])
    if let e = r["error"] { throw BenchError("\(method): \(e)") }
    return r["result"] ?? .null
  }

  /// Resident memory of a process, in MiB (from /proc).
  static func rssMiB(_ pid: Int64) -> Double {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
      let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
      let kb = Double(line.split(separator: " ").dropFirst().first ?? "")
    else { return .nan }
    return kb / 1024
  }

  static func waitJob(_ c: LineClientBox, _ id: String, timeout: Double = 60) throws -> JSONValue {
    let deadline = now() + timeout
    while now() < deadline {
      let j = try rpc(c, "job.get", ["jobId": .string(id)])
      if j["status"] == "done" || j["status"] == "failed" { return j }
      usleep(500)
    }
    throw BenchError("job \(id) did not finish")
  }

  /// A 100,000-item transfer, and SCIM active:false → job finished.
  static func deprovisioning(conninfo: String, provisioning: String, deprovisioning: String, scim: String, items: Int, samples: Int) throws {
    let p = try LineClientBox(provisioning)
    let d = try LineClientBox(deprovisioning)
    let pid = try rpc(d, "system.health", [:])["pid"]?.intValue ?? 0
    let (wid, token) = try SCIMBench.directory(rpcSocket: provisioning, name: "deprov\(getpid())")
    let conn = PGConnection(config: PGConfig(conninfo: conninfo, statementTimeoutMilliseconds: 0))
    defer { conn.close() }
    let owner = try conn.single("SELECT owner_member_id FROM workspaces WHERE id = \(wid)::uuid").string("owner_member_id")
    let admin: JSONValue = ["memberId": .string(owner)]
    let target = try rpc(p, "member.add", ["workspaceId": .string(wid), "email": "target@deprov.bench", "role": "creator", "actor": admin])["memberId"]!
    try rpc(d, "deprovision.configure", ["workspaceId": .string(wid), "mode": "delete", "content": "transfer", "targetMemberId": target, "actor": admin])
    var rows: [[String]] = []
    let rssBefore = rssMiB(pid)
    for round in 0..<3 {
      let leaver = try rpc(p, "member.add", ["workspaceId": .string(wid), "email": .string("leaver\(round)@deprov.bench"), "actor": admin])["memberId"]!
        .stringValue!
      try conn.query(
        """
        INSERT INTO content (workspace_id, owner_member_id, title, posted)
        SELECT \(wid)::uuid, \(leaver)::uuid, 'video ' || i, i % 3 = 0 FROM generate_series(1, \(items)::int) i
        """)
      // Content normally exists long before its owner leaves: settle it as time would (hint bits, visibility map).
      try conn.execute(script: "VACUUM ANALYZE content")
      let t0 = now()
      let job = try rpc(d, "deprovision.member", ["workspaceId": .string(wid), "memberId": .string(leaver), "actor": admin])
      let done = try waitJob(d, job["jobId"]!.stringValue!)
      let wall = now() - t0
      guard done["status"] == "done", done["result"]?["moved"]?.intValue == Int64(items) else { throw BenchError("transfer failed: \(done)") }
      rows.append(["transfer of \(items) items, run \(round + 1)", fmt(wall * 1000, 0), fmt(rssMiB(pid), 1)])
    }
    print("deprovisioning process RSS before: \(fmt(rssBefore, 1)) MiB")
    table(["what", "ms (request → job done)", "RSS after, MiB"], rows)
    print()
    // SCIM deactivation → job finished, default policy (deactivate).
    try rpc(d, "deprovision.configure", ["workspaceId": .string(wid), "mode": "deactivate", "actor": admin])
    let http = try HTTPClient(unix: scim, token: token)
    var lat = Samples()
    let rssStart = rssMiB(pid)
    for i in 0..<samples {
      let (s1, body) = try http.request("POST", "/scim/v2/Users", body: SCIMBench.userBody("lat\(i)-\(getpid())@deprov.bench"))
      guard s1 == 201, let id = try JSONParser.parse(body)["id"]?.stringValue else { throw BenchError("create failed") }
      let patch = JSONWriter.bytes(["schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [["op": "replace", "value": ["active": false]]]])
      let t0 = now()
      let (s2, _) = try http.request("PATCH", "/scim/v2/Users/\(id)", body: patch)
      guard s2 == 200 else { throw BenchError("PATCH failed: \(s2)") }
      let jobs = try rpc(d, "job.list", ["memberId": .string(id)])["jobs"]?.arrayValue ?? []
      guard let jid = jobs.first?["jobId"]?.stringValue else { throw BenchError("no job") }
      _ = try waitJob(d, jid)
      lat.add((now() - t0) * 1000)
    }
    table(
      ["SCIM PATCH active:false → deprovisioning job done", "samples", "p50 ms", "p99 ms", "RSS MiB before → after"],
      [["over scim.sock, job woken by NOTIFY", String(samples), fmt(lat.percentile(50), 1), fmt(lat.percentile(99), 1), "\(fmt(rssStart, 1)) → \(fmt(rssMiB(pid), 1))"]])
  }

  /// Outbox throughput to a local SMTP sink, and enqueue → accepted latency.
  static func outbox(conninfo: String, notifications: String, count: Int) throws {
    let c = try LineClientBox(notifications)
    let pid = try rpc(c, "system.health", [:])["pid"]?.intValue ?? 0
    let conn = PGConnection(config: PGConfig(conninfo: conninfo, statementTimeoutMilliseconds: 0))
    defer { conn.close() }
    let start = try conn.single("SELECT now() AS t").string("t")
    let rss0 = rssMiB(pid)
    let t0 = now()
    // Queue them the way the other processes do: rows in one transaction, one NOTIFY.
    try conn.query(
      """
      WITH n AS (SELECT roster_uuid7() AS id, i FROM generate_series(1, \(count)::int) i)
      INSERT INTO notifications (id, template, to_address, data, message_id)
      SELECT id, 'deprovision_summary', 'admin' || i || '@sink.bench',
             jsonb_build_object('workspaceName', 'Bench', 'memberEmail', 'm' || i || '@sink.bench', 'memberName', 'M', 'mode', 'deactivate', 'content', 'kept'),
             '<' || id || '@bench>'
      FROM n
      """)
    try conn.query("SELECT pg_notify('roster_outbox', 'bench')")
    while true {
      let left = try conn.single("SELECT count(*) AS n FROM notifications WHERE created_at >= \(start)::timestamptz AND status = 'pending'").int("n")
      if left == 0 { break }
      if now() - t0 > 600 { throw BenchError("outbox did not drain") }
      usleep(20_000)
    }
    let elapsed = now() - t0
    let r = try conn.single(
      """
      SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)) AS p50,
             percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)) AS p99,
             count(*) FILTER (WHERE status = 'sent') AS sent
      FROM notifications WHERE created_at >= \(start)::timestamptz
      """
    )
    table(
      ["emails", "sent", "seconds", "messages/s", "backlog latency p50 s", "p99 s", "RSS MiB before → after"],
      [[String(count), r["sent"] ?? "?", fmt(elapsed, 2), fmt(Double(count) / elapsed, 0), fmt(r.double("p50") ?? .nan, 2), fmt(r.double("p99") ?? .nan, 2),
        "\(fmt(rss0, 1)) → \(fmt(rssMiB(pid), 1))"]])
    // One at a time: the latency an email sees when the outbox is idle.
    var lat = Samples()
    for i in 0..<100 {
      let id = try rpc(c, "notification.enqueue", [
        "template": "deprovision_summary", "to": .string("single\(i)@sink.bench"),
        "data": ["workspaceName": "Bench", "memberEmail": "m@sink.bench", "memberName": "M", "mode": "deactivate", "content": "kept"],
      ])["id"]!.stringValue!
      let t = now()
      while try rpc(c, "notification.get", ["id": .string(id)])["status"] != "sent" {
        if now() - t > 30 { throw BenchError("not sent") }
        usleep(300)
      }
      lat.add((now() - t) * 1000)
    }
    print()
    table(["enqueue → accepted by the relay, idle outbox", "samples", "p50 ms", "p99 ms"], [["notification.enqueue, then poll", "100", fmt(lat.percentile(50), 1), fmt(lat.percentile(99), 1)]])
  }
}
