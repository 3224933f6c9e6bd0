import Foundation
import DNS
import JSON
import JSONRPC
import Postgres
import RosterRuntime
import RosterStore
import ServiceKit
import Synchronization

/// D3: when pending DNS domains are checked again. About a minute after
/// being added, then doubling to hourly; a pending domain fails after 7 days.
public enum DomainCheckSchedule {
  public static let expiry: TimeInterval = 7 * 24 * 3600

  /// Seconds until the next check after `checks` checks so far.
  public static func delay(afterChecks checks: Int) -> TimeInterval {
    let exponent = min(max(checks - 1, 0), 10)
    return min(60 * pow(2, Double(exponent)), 3600)
  }
}

/// A domain row.
struct DomainRow {
  var id: String
  var workspaceId: String
  var domain: String
  var method: String
  var status: String
  var dnsToken: String?
  var email: String?
  var createdAt: String?
  var verifiedAt: String?
  var expiresAt: String?
  var lastCheckedAt: String?
  var lastCheckResult: String?
  var checkCount: Int64

  static let select: SQL = """
    SELECT id, workspace_id, domain, method, status, dns_token, email, created_at, verified_at, expires_at, last_checked_at,
           last_check_result, check_count
    FROM domains
    """

  init(_ r: PGRow) throws {
    id = try r.string("id")
    workspaceId = try r.string("workspace_id")
    domain = try r.string("domain")
    method = try r.string("method")
    status = try r.string("status")
    dnsToken = r["dns_token"]
    email = r["email"]
    createdAt = r.time("created_at")
    verifiedAt = r.time("verified_at")
    expiresAt = r.time("expires_at")
    lastCheckedAt = r.time("last_checked_at")
    lastCheckResult = r["last_check_result"]
    checkCount = try r.int("check_count")
  }

  static let recordPrefix = "roster-domain-verification="
  static func challengeName(_ domain: String) -> String { "_roster-challenge." + domain }

  var json: JSONValue {
    var o: [String: JSONValue] = [
      "domainId": .string(id), "workspaceId": .string(workspaceId), "domain": .string(domain), "method": .string(method),
      "status": .string(status), "createdAt": .orNull(createdAt), "verifiedAt": .orNull(verifiedAt),
      "expiresAt": status == "pending" ? .orNull(expiresAt) : .null, "lastCheckedAt": .orNull(lastCheckedAt),
      "lastCheckResult": .orNull(lastCheckResult), "checks": .int(checkCount),
    ]
    if method == "dns", let dnsToken {
      o["dnsRecord"] = [
        "name": .string(Self.challengeName(domain)), "type": "TXT", "value": .string(Self.recordPrefix + dnsToken),
        "alternativeName": .string(domain),
      ]
    }
    if let email { o["email"] = .string(email) }
    return .object(o)
  }
}

/// Looks TXT records up and verifies domains: on `domain.check` and from the
/// background loop (which runs on its own thread, never the cooperative pool).
final class DomainVerifier: Sendable {
  let ctx: ServiceContext
  let dns: DNSClient

  init(ctx: ServiceContext) {
    self.ctx = ctx
    dns = DNSClient(host: ctx.config.dnsServer.host, port: ctx.config.dnsServer.port)
  }

  enum CheckOutcome: Equatable {
    case verified
    case notYet
    case temporary(String)
  }

  /// Is the expected record published at `_roster-challenge.DOMAIN` or at the domain?
  func lookup(domain: String, token: String) -> CheckOutcome {
    let expected = DomainRow.recordPrefix + token
    var temporary: String?
    for name in [DomainRow.challengeName(domain), domain] {
      switch dns.lookupTXT(name) {
      case .records(let records):
        if records.contains(where: { $0.trimmingCharacters(in: .whitespaces) == expected }) { return .verified }
      case .none: break
      case .temporaryFailure(let why): temporary = temporary ?? "\(name): \(why)"
      }
    }
    if let temporary { return .temporary(temporary) }
    return .notYet
  }

  /// Checks one pending DNS domain now and records the result. A verified
  /// domain is never touched (a failed re-check does not un-verify it).
  @discardableResult
  func check(domainId: String, now: Date) throws -> DomainRow? {
    guard
      let row = try ctx.pool.transaction({ tx in try tx.one(DomainRow.select + " WHERE id = \(domainId)::uuid").map(DomainRow.init) })
    else { return nil }
    guard row.status == "pending", row.method == "dns", let token = row.dnsToken else { return row }
    let outcome = lookup(domain: row.domain, token: token)
    return try ctx.pool.transaction { tx in
      guard let current = try tx.one(DomainRow.select + " WHERE id = \(domainId)::uuid FOR UPDATE").map(DomainRow.init),
        current.status == "pending", current.dnsToken == token
      else { return try tx.one(DomainRow.select + " WHERE id = \(domainId)::uuid").map(DomainRow.init) }
      let result: String
      switch outcome {
      case .verified: result = "verified"
      case .notYet: result = "record not found yet"
      case .temporary(let why): result = "temporary error: \(why)"
      }
      let next = now.addingTimeInterval(DomainCheckSchedule.delay(afterChecks: Int(current.checkCount) + 1))
      try tx.query(
        """
        UPDATE domains SET check_count = check_count + 1, last_checked_at = \(now), last_check_result = \(result),
          next_check_at = \(next)
        WHERE id = \(domainId)::uuid
        """)
      if outcome == .verified {
        do {
          try markVerified(tx, current, actor: .system("dns-check"), now: now)
        } catch is PlanRequired {
          // The record is there but the plan no longer allows it: the
          // verification ends (domain.add again after an upgrade).
          try tx.query(
            """
            UPDATE domains SET status = 'failed', last_check_result = 'the workspace is no longer on the Enterprise plan',
              next_check_at = NULL, email_token_hash = NULL
            WHERE id = \(domainId)::uuid
            """)
          try EventLog.emit(
            tx, type: "domain.failed", workspaceId: current.workspaceId,
            data: ["domainId": .string(current.id), "domain": .string(current.domain), "reason": "plan_required"])
        }
      }
      return try tx.one(DomainRow.select + " WHERE id = \(domainId)::uuid").map(DomainRow.init)
    }
  }

  /// The workspace left the Enterprise plan while its domain was pending (D1).
  struct PlanRequired: Error {}

  /// Verifies a pending domain (D4: unless another workspace already has
  /// it; D1: only while the workspace is on Enterprise — checked under the
  /// workspace's lock, so a concurrent downgrade is either seen or waits).
  func markVerified(_ tx: PGTransaction, _ d: DomainRow, actor: ActorRef, now: Date) throws {
    guard let w = try WorkspaceRow.load(tx, d.workspaceId, lock: .share), w.isEnterprise else { throw PlanRequired() }
    if try tx.one(
      "SELECT 1 FROM domains WHERE domain = \(d.domain) AND status = 'verified' AND workspace_id <> \(d.workspaceId)::uuid") != nil
    {
      throw RPCError.conflict("domain_taken", "'\(d.domain)' is already verified by another workspace.")
    }
    do {
      try tx.query(
        """
        UPDATE domains SET status = 'verified', verified_at = \(now), next_check_at = NULL
        WHERE id = \(d.id)::uuid
        """)
    } catch {
      if error.isUniqueViolation {
        throw RPCError.conflict("domain_taken", "'\(d.domain)' is already verified by another workspace.")
      }
      throw error
    }
    try AuditLog.record(
      tx, workspaceId: d.workspaceId, actor: actor, action: "domain.verified", targetType: "domain", targetId: d.id,
      after: ["domain": .string(d.domain), "method": .string(d.method)],
      event: .init("domain.verified", data: ["domainId": .string(d.id), "domain": .string(d.domain)]))
  }

  /// D3: pending domains older than 7 days fail, each with a `domain.failed`
  /// event — all of them (the background pass) or just `only` (domain.check).
  func expire(_ tx: PGTransaction, now: Date, only domainId: String? = nil) throws {
    var q: SQL = """
      UPDATE domains SET status = 'failed', last_check_result = 'expired after 7 days without verification',
        next_check_at = NULL, email_token_hash = NULL
      WHERE status = 'pending' AND expires_at <= \(now)
      """
    if let domainId { q.append(" AND id = \(domainId)::uuid") }
    q.append(" RETURNING id, workspace_id, domain")
    for r in try tx.query(q).rows {
      try EventLog.emit(
        tx, type: "domain.failed", workspaceId: r["workspace_id"], data: ["domainId": .orNull(r["id"]), "domain": .orNull(r["domain"])])
    }
  }

  /// One pass of the background loop at time `now`: expire old pending
  /// domains, then check the ones that are due.
  func tick(now: Date) throws {
    try ctx.pool.transaction { tx in try expire(tx, now: now) }
    // Claim due domains with a lease so several provisioning processes share the work.
    let lease = now.addingTimeInterval(300)
    let due = try ctx.pool.transaction { tx in
      try tx.query(
        """
        UPDATE domains SET next_check_at = \(lease)
        WHERE id IN (
          SELECT id FROM domains WHERE status = 'pending' AND method = 'dns' AND next_check_at <= \(now)
          ORDER BY next_check_at LIMIT 50 FOR UPDATE SKIP LOCKED)
        RETURNING id
        """
      ).rows.compactMap { $0["id"] }
    }
    for id in due {
      do {
        try check(domainId: id, now: now)
      } catch {
        ctx.logger.warning("domain re-check failed", ["domainId": .string(id), "error": .string(String(describing: error))])
      }
    }
  }

  /// Runs `tick` every `interval` seconds on a thread of its own.
  func start(interval: Double = 5) -> WorkerLoop {
    let loop = WorkerLoop(name: "domain-recheck", threads: 1, pollSeconds: interval, channel: nil, config: ctx.host.pgConfig, logger: ctx.logger)
    loop.start(
      makePass: { [self] in
        {
          try self.tick(now: Date())
          return false
        }
      }, nextDue: { interval })
    return loop
  }
}

