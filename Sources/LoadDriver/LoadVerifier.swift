import Foundation
import JSON
import Postgres

#if canImport(Glibc)
  import Glibc
#endif

/// After a load run (and its faults): is everything that was accepted there,
/// was every job and email done once, did anything appear twice? Reads the
/// database directly, the SCIM view through a listener, and the mail the
/// relay stored.
public struct LoadVerifier {
  public let pool: PGPool
  public let workspace: LoadWorkspace
  public let targets: LoadTargets
  /// The folder where the SMTP relay stores each message as a file, if known.
  public let mailDir: String?

  public init(pool: PGPool, workspace: LoadWorkspace, targets: LoadTargets, mailDir: String?) {
    self.pool = pool
    self.workspace = workspace
    self.targets = targets
    self.mailDir = mailDir
  }

  public struct Findings: Sendable {
    public var problems: [String] = []
    public var usersChecked = 0
    public var deprovisioned = 0
    public var contentMoved = 0
    public var jobs = 0
    public var emails = 0
    /// Messages the relay received more than once (same Message-ID: allowed, reported).
    public var redelivered = 0
    /// SSO sign-ins whose code the app redeemed, and OIDC people who joined.
    public var ssoSignIns = 0
    public var oidcMembers = 0
    /// Seconds from the end of the load until every job and email was done.
    public var settleSeconds = 0.0
    public var ok: Bool { problems.isEmpty }
  }

  /// Waits for jobs and emails to finish, then checks. A backlog may take
  /// long to drain after a heavy run; what fails is a queue that stops
  /// moving: `settle` seconds in which no job or email finished.
  public func verify(_ report: LoadReport, settle: Double = 120) throws -> Findings {
    var f = Findings()
    let t0 = MixedLoad.now()
    var lastProgress = t0
    var lastOpen = Int64.max
    while true {
      let open = try pool.query(
        """
        SELECT (SELECT count(*) FROM jobs WHERE workspace_id = \(workspace.id)::uuid AND status IN ('queued', 'running'))
             + (SELECT count(*) FROM notifications WHERE workspace_id = \(workspace.id)::uuid AND status = 'pending') AS open
        """
      ).first?.int("open") ?? 0
      if open == 0 { break }
      if open < lastOpen {
        lastOpen = open
        lastProgress = MixedLoad.now()
      }
      if MixedLoad.now() - lastProgress > settle {
        f.problems.append("\(open) jobs or emails still not done, none finished in the last \(Int(settle)) s")
        break
      }
      usleep(100_000)
    }
    f.settleSeconds = MixedLoad.now() - t0
    try checkUsers(report, &f)
    try checkJobs(report, &f)
    try checkEmails(report, &f)
    try checkSSO(report, &f)
    return f
  }

  /// Every accepted SCIM write is what the database holds, read through SCIM.
  func checkUsers(_ report: LoadReport, _ f: inout Findings) throws {
    let scim = HTTPPool(paths: targets.scim, token: workspace.token)
    for u in report.users {
      f.usersChecked += 1
      var answer: HTTPPool.Outcome = .unavailable("")
      for _ in 0..<50 {
        answer = scim.request("GET", "/scim/v2/Users/\(u.id)")
        if case .unavailable = answer { usleep(100_000) } else { break }
      }
      guard case .answered(200, let body) = answer, let body else {
        f.problems.append("\(u.userName) (\(u.id)): accepted by SCIM but GET answers \(answer)")
        continue
      }
      if body["displayName"]?.stringValue != u.displayName {
        f.problems.append("\(u.userName): displayName \(body["displayName"]?.stringValue ?? "none"), last accepted \(u.displayName)")
      }
      if body["active"]?.boolValue != u.active {
        f.problems.append("\(u.userName): active \(body["active"]?.boolValue.map(String.init) ?? "none"), last accepted \(u.active)")
      }
    }
  }

  /// One deprovisioning per leaver, done, its content moved exactly once.
  func checkJobs(_ report: LoadReport, _ f: inout Findings) throws {
    let leavers = report.users.filter { !$0.active }
    f.deprovisioned = leavers.count
    let failed = try pool.query("SELECT id, last_error FROM jobs WHERE workspace_id = \(workspace.id)::uuid AND status = 'failed'")
    for r in failed.rows { f.problems.append("job \(r["id"] ?? "?") failed: \(r["last_error"] ?? "")") }
    f.jobs = Int(try pool.query("SELECT count(*) AS n FROM jobs WHERE workspace_id = \(workspace.id)::uuid").first?.int("n") ?? 0)
    // One set-based query for all leavers (a long run has tens of thousands).
    let rows = try pool.query(
      """
      WITH l AS (SELECT * FROM unnest(\(PGTextArray(leavers.map(\.id)))::uuid[], \(PGTextArray(leavers.map(\.userName)))::text[]) AS l(id, email))
      SELECT l.id::text AS id, m.status, coalesce(j.jobs, 0) AS jobs, coalesce(j.done, 0) AS done, coalesce(c.n, 0) AS left_behind,
        coalesce(a.n, 0) AS deprovisioned, coalesce(n.n, 0) AS summaries, coalesce(mv.n, 0) AS moved
      FROM l JOIN members m ON m.id = l.id
      LEFT JOIN (SELECT member_id, count(*) AS jobs, count(*) FILTER (WHERE status = 'done') AS done FROM jobs
                 WHERE workspace_id = \(workspace.id)::uuid AND kind = 'deprovision' GROUP BY member_id) j ON j.member_id = l.id
      LEFT JOIN (SELECT owner_member_id, count(*) AS n FROM content WHERE workspace_id = \(workspace.id)::uuid GROUP BY 1) c ON c.owner_member_id = l.id
      LEFT JOIN (SELECT target_id, count(*) AS n FROM audit_log WHERE workspace_id = \(workspace.id)::uuid AND action = 'member.deprovisioned'
                 GROUP BY 1) a ON a.target_id = l.id::text
      LEFT JOIN (SELECT data->>'memberEmail' AS email, count(*) AS n FROM notifications WHERE workspace_id = \(workspace.id)::uuid
                 AND template = 'deprovision_summary' GROUP BY 1) n ON n.email = l.email
      LEFT JOIN (SELECT j.member_id, count(*) AS n FROM content c JOIN folders fo ON fo.id = c.folder_id JOIN jobs j ON j.id = fo.created_by_job
                 WHERE c.workspace_id = \(workspace.id)::uuid GROUP BY 1) mv ON mv.member_id = l.id
      """
    ).rows
    var byId: [String: PGRow] = [:]
    for r in rows { byId[r["id"] ?? ""] = r }
    for u in leavers {
      guard let row = byId[u.id] else {
        f.problems.append("\(u.userName): no member row")
        continue
      }
      let moved = Int(try row.int("moved"))
      f.contentMoved += moved
      if try row.string("status") != "deleted" { f.problems.append("\(u.userName): deactivated by SCIM but status \(try row.string("status"))") }
      if try row.int("jobs") != 1 || row.int("done") != 1 {
        f.problems.append("\(u.userName): \(try row.int("jobs")) deprovisioning jobs, \(try row.int("done")) done (want exactly 1)")
      }
      if try row.int("deprovisioned") != 1 { f.problems.append("\(u.userName): deprovisioned \(try row.int("deprovisioned")) times by the audit log") }
      if try row.int("summaries") != 1 { f.problems.append("\(u.userName): \(try row.int("summaries")) summary emails queued (want 1)") }
      if try row.int("left_behind") != 0 { f.problems.append("\(u.userName): \(try row.int("left_behind")) items still theirs after the transfer") }
      if moved < u.contentMin || moved > u.contentMax {
        f.problems.append("\(u.userName): \(moved) items moved to the target, \(u.contentMin)…\(u.contentMax) were created")
      }
    }
    // Nothing beyond what was created: the workspace's content is what the clients made.
    let total = Int(try pool.query("SELECT count(*) AS n FROM content WHERE workspace_id = \(workspace.id)::uuid").first?.int("n") ?? 0)
    let lo = report.users.reduce(0) { $0 + $1.contentMin }
    let hi = report.users.reduce(0) { $0 + $1.contentMax }
    if total < lo || total > hi { f.problems.append("the workspace holds \(total) items; the clients created \(lo)…\(hi)") }
  }

  /// Every accepted email sent; each Message-ID reached the relay; none is unknown.
  func checkEmails(_ report: LoadReport, _ f: inout Findings) throws {
    let rows = try pool.query(
      "SELECT id, status, message_id FROM notifications WHERE workspace_id = \(workspace.id)::uuid").rows
    f.emails = rows.count
    var byId: [String: (status: String, messageId: String)] = [:]
    for r in rows { byId[r["id"] ?? ""] = (r["status"] ?? "", r["message_id"] ?? "") }
    for id in report.notifications where byId[id] == nil { f.problems.append("email \(id) was accepted by notification.enqueue and is gone") }
    for (id, n) in byId where n.status != "sent" { f.problems.append("email \(id) is \(n.status)") }
    let enqueuedHere = Int(
      try pool.query(
        "SELECT count(*) AS n FROM notifications WHERE workspace_id = \(workspace.id)::uuid AND to_address LIKE \("%@" + report.mailDomain)"
      ).first?.int("n") ?? 0)
    if enqueuedHere > report.notifications.count + report.notificationsInDoubt {
      f.problems.append("\(enqueuedHere) enqueued emails in the database, \(report.notifications.count) accepted + \(report.notificationsInDoubt) in doubt")
    }
    guard let mailDir else { return }
    var delivered: [String: Int] = [:]
    for file in (try? FileManager.default.contentsOfDirectory(atPath: mailDir)) ?? [] where !file.hasPrefix(".") {
      guard let data = FileManager.default.contents(atPath: mailDir + "/" + file) else { continue }
      // Byte lines: "\r\n" is one Character to Swift, so split on the byte.
      for line in data.split(separator: 0x0A).prefix(40) {
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.lowercased().hasPrefix("message-id:") { delivered[text.dropFirst(11).trimmingCharacters(in: .whitespaces), default: 0] += 1 }
      }
    }
    let ours = Set(byId.values.map(\.messageId))
    for (id, n) in byId where n.status == "sent" && delivered[n.messageId] == nil {
      f.problems.append("email \(id) is marked sent but the relay never received \(n.messageId)")
    }
    f.redelivered = delivered.filter { ours.contains($0.key) && $0.value > 1 }.reduce(0) { $0 + $1.value - 1 }
  }

  /// SSO: the OIDC workspace holds exactly the people it admitted, once
  /// each (S5); every code the app got has its success trace and the traces
  /// beyond them are flows whose answer was lost; every redeemed code was
  /// redeemed once and every second try audited (P8).
  func checkSSO(_ report: LoadReport, _ f: inout Findings) throws {
    guard let sso = workspace.sso else { return }
    let t = report.sso
    f.ssoSignIns = t.signIns
    let members = try pool.query(
      """
      SELECT u.email, m.status, m.joined FROM members m JOIN users u ON u.id = m.user_id
      WHERE m.workspace_id = \(sso.oidcWorkspaceId)::uuid AND u.email <> \(sso.oidcOwnerEmail)
      """
    ).rows
    var seen: [String: Int] = [:]
    for r in members {
      let email = r["email"] ?? ""
      seen[email, default: 0] += 1
      if !t.oidcAttempted.contains(email) { f.problems.append("\(email) is a member of the OIDC workspace but no one signed them in") }
      if r["status"] != "active" || r["joined"] != "jit" { f.problems.append("\(email): OIDC member \(r["status"] ?? "?")/\(r["joined"] ?? "?"), want active/jit") }
    }
    f.oidcMembers = members.count
    for e in t.oidcPeople where seen[e] != 1 { f.problems.append("\(e) signed in through OIDC and has \(seen[e] ?? 0) memberships (want 1)") }
    let row = try pool.query(
      """
      SELECT (SELECT count(*) FROM sso_traces WHERE workspace_id IN (\(workspace.id)::uuid, \(sso.oidcWorkspaceId)::uuid) AND outcome = 'success') AS traces,
             (SELECT count(*) FROM sso_codes WHERE workspace_id IN (\(workspace.id)::uuid, \(sso.oidcWorkspaceId)::uuid)) AS codes,
             (SELECT count(*) FROM sso_codes WHERE workspace_id IN (\(workspace.id)::uuid, \(sso.oidcWorkspaceId)::uuid) AND redeemed_at IS NOT NULL) AS redeemed,
             (SELECT count(*) FROM audit_log WHERE workspace_id IN (\(workspace.id)::uuid, \(sso.oidcWorkspaceId)::uuid) AND action = 'sso.code_reused') AS reused
      """
    ).first
    let traces = Int(try row?.int("traces") ?? -1)
    let codes = Int(try row?.int("codes") ?? -1)
    let redeemed = Int(try row?.int("redeemed") ?? -1)
    let reused = Int(try row?.int("reused") ?? -1)
    if traces != codes { f.problems.append("\(codes) sign-in codes but \(traces) success traces (one each)") }
    if codes < t.codesReceived || codes > t.codesReceived + t.flowsInDoubt {
      f.problems.append("\(codes) codes issued; the app received \(t.codesReceived), \(t.flowsInDoubt) flows in doubt")
    }
    if redeemed != t.signIns + t.redemptionsInDoubt {
      f.problems.append("\(redeemed) codes redeemed; the app redeemed \(t.signIns) (+ \(t.redemptionsInDoubt) whose answer was lost)")
    }
    if reused < t.reuseRefused + t.redemptionsInDoubt || reused > t.codesReused + t.redemptionsInDoubt {
      f.problems.append("\(reused) sso.code_reused audits; \(t.reuseRefused) second redemptions refused, \(t.redemptionsInDoubt) in doubt")
    }
  }
}
