import Foundation
import JSON
import JSONRPC
import Postgres
import Provisioning
import RosterTestSupport
import Testing

/// D1–D6 over the provisioning socket, with a real DNS server.
@Suite(.serialized) final class DomainFlowTests {
  let f: ProvisioningFixture

  init() throws { f = try ProvisioningFixture() }

  @Test func d3DnsVerificationAtTheChallengeNameOrTheDomain() throws {
    let w = try f.workspace()
    let d = try f.rpc.call("domain.add", ["workspaceId": .string(w.id), "domain": "Acme.TEST.", "method": "dns", "actor": f.admin(w)])
    #expect(d["domain"] == "acme.test")
    #expect(d["status"] == "pending")
    let record = try #require(d["dnsRecord"])
    #expect(record["name"] == "_roster-challenge.acme.test")
    #expect(record["type"] == "TXT")
    let value = try #require(record["value"]?.stringValue)
    #expect(value.hasPrefix("roster-domain-verification="))
    #expect(value.count - "roster-domain-verification=".count >= 26, "at least 128 bits of base32")
    // Not published yet: still pending, "not found" recorded.
    let first = try f.rpc.call("domain.check", ["workspaceId": .string(w.id), "domainId": d["domainId"]!])
    #expect(first["status"] == "pending")
    #expect(first["lastCheckResult"]?.stringValue?.contains("not found") == true)
    // A wrong value does not verify.
    f.dns.setTXT("_roster-challenge.acme.test", ["roster-domain-verification=wrong"])
    #expect(try f.rpc.call("domain.check", ["workspaceId": .string(w.id), "domainId": d["domainId"]!])["status"] == "pending")
    // Published at the domain itself (among other TXT records), split by the publisher: verified.
    f.dns.setTXT("acme.test", ["v=spf1 -all", value])
    let verified = try f.rpc.call("domain.check", ["workspaceId": .string(w.id), "domainId": d["domainId"]!])
    #expect(verified["status"] == "verified")
    #expect(verified["verifiedAt"]?.stringValue != nil)
    #expect(try f.events("domain.verified", workspace: w).count == 1)
  }

  @Test func d3TemporaryErrorsKeepItPending() throws {
    let w = try f.workspace()
    let d = try f.rpc.call("domain.add", ["workspaceId": .string(w.id), "domain": "flaky.test", "method": "dns", "actor": f.admin(w)])
    f.dns.setServfail("_roster-challenge.flaky.test")
    f.dns.setServfail("flaky.test")
    let r = try f.rpc.call("domain.check", ["workspaceId": .string(w.id), "domainId": d["domainId"]!])
    #expect(r["status"] == "pending")
    #expect(r["lastCheckResult"]?.stringValue?.contains("temporary") == true)
  }

  @Test func d3BackgroundRecheckWithBackOffAndSevenDayExpiry() throws {
    let w = try f.workspace()
    let later = try f.rpc.call("domain.add", ["workspaceId": .string(w.id), "domain": "later.test", "method": "dns", "actor": f.admin(w)])
    let never = try f.rpc.call("domain.add", ["workspaceId": .string(w.id), "domain": "never.test", "method": "dns", "actor": f.admin(w)])
    let start = Date()
    // Nothing is due before the first minute.
    try f.service.recheckDomains(now: start.addingTimeInterval(30))
    #expect(try f.pool.query("SELECT check_count FROM domains WHERE domain = 'later.test'").first?["check_count"] == "0")
    // After a minute the loop checks both (not found yet).
    try f.service.recheckDomains(now: start.addingTimeInterval(61))
    #expect(try f.pool.query("SELECT count(*) AS n FROM domains WHERE check_count = 1").first?["n"] == "2")
    // The next check comes later (back-off): not due 30 s after the first.
    try f.service.recheckDomains(now: start.addingTimeInterval(91))
    #expect(try f.pool.query("SELECT count(*) AS n FROM domains WHERE check_count = 1").first?["n"] == "2")
    // The admin publishes; the next due check verifies it without anyone calling domain.check.
    let record = later["dnsRecord"]!
    f.dns.setTXT(record["name"]!.stringValue!, [record["value"]!.stringValue!])
    try f.service.recheckDomains(now: start.addingTimeInterval(3 * 3600))
    #expect(try f.pool.query("SELECT status FROM domains WHERE domain = 'later.test'").first?["status"] == "verified")
    // Seven days without a record: failed. The verified one stays verified even when its record is gone.
    f.dns.remove(record["name"]!.stringValue!)
    try f.service.recheckDomains(now: start.addingTimeInterval(8 * 24 * 3600))
    #expect(try f.pool.query("SELECT status FROM domains WHERE domain = 'never.test'").first?["status"] == "failed")
    #expect(try f.pool.query("SELECT status FROM domains WHERE domain = 'later.test'").first?["status"] == "verified")
    #expect(try f.pool.query("SELECT count(*) AS n FROM events WHERE type = 'domain.failed' AND data->>'domain' = 'never.test'").first?["n"] == "1")
    // A failed domain can be started again with domain.add.
    let again = try f.rpc.call("domain.add", ["workspaceId": .string(w.id), "domain": "never.test", "method": "dns", "actor": f.admin(w)])
    #expect(again["status"] == "pending")
    #expect(again["domainId"] == never["domainId"])
  }

  /// D3 through domain.check: an expired pending domain fails there too, with the same `domain.failed` event.
  @Test func d3DomainCheckExpiresAnOldPendingDomain() throws {
    let w = try f.workspace()
    let d = try f.rpc.call("domain.add", ["workspaceId": .string(w.id), "domain": "stale.test", "method": "dns", "actor": f.admin(w)])
    try f.pool.query("UPDATE domains SET expires_at = now() - interval '1 minute' WHERE domain = 'stale.test'")
    let checked = try f.rpc.call("domain.check", ["workspaceId": .string(w.id), "domainId": d["domainId"]!])
    #expect(checked["status"] == "failed")
    #expect(checked["lastCheckResult"] == "expired after 7 days without verification")
    #expect(try f.pool.query("SELECT count(*) AS n FROM events WHERE type = 'domain.failed' AND data->>'domain' = 'stale.test'").first?["n"] == "1")
  }

  @Test func d3ScheduleGrowsFromAMinuteToHourly() {
    #expect(DomainCheckSchedule.delay(afterChecks: 0) == 60)
    #expect(DomainCheckSchedule.delay(afterChecks: 1) == 60)
    #expect(DomainCheckSchedule.delay(afterChecks: 2) == 120)
    #expect(DomainCheckSchedule.delay(afterChecks: 6) == 1920)
    #expect(DomainCheckSchedule.delay(afterChecks: 7) == 3600)
    #expect(DomainCheckSchedule.delay(afterChecks: 100) == 3600)
  }

  @Test func d4EmailVerificationIsQueuedSingleUseAndExpires() throws {
    let w = try f.workspace()
    let d = try f.rpc.call(
      "domain.add", ["workspaceId": .string(w.id), "domain": "mail.test", "method": "email", "email": "IT@Mail.test", "actor": f.admin(w)])
    #expect(d["status"] == "pending")
    #expect(d["email"] == "IT@mail.test")
    let rows = try f.outbox("domain_verification")
    #expect(rows.count == 1)
    #expect(rows.first?["to_address"] == "IT@mail.test")
    let data = try #require(try rows.first?.json("data"))
    let link = try #require(data["link"]?.stringValue)
    #expect(link.hasPrefix("https://app.example.test/domains/confirm?token="))
    let token = String(link.split(separator: "=").last!)
    // Only the hash is stored on the domain.
    let stored = try f.pool.query("SELECT email_token_hash FROM domains WHERE domain = 'mail.test'").first?["email_token_hash"]
    #expect(stored != nil && stored != token)
    #expect(try f.rpc.error("domain.confirm", ["token": "not-the-token"])?.reason == "token_not_found")
    let confirmed = try f.rpc.call("domain.confirm", ["token": .string(token)])
    #expect(confirmed["status"] == "verified")
    let again = try f.rpc.error("domain.confirm", ["token": .string(token)])
    #expect(again?.reason == "token_used", "single use, and the second click says so")
    #expect(again?.message == "This verification link was already used: mail.test is verified.")

    // An expired link.
    _ = try f.rpc.call(
      "domain.add", ["workspaceId": .string(w.id), "domain": "old.test", "method": "email", "email": "it@old.test", "actor": f.admin(w)])
    let oldLink = try f.outbox("domain_verification").last!.json("data")["link"]!.stringValue!
    try f.pool.query("UPDATE domains SET expires_at = now() - interval '1 minute' WHERE domain = 'old.test'")
    #expect(try f.rpc.error("domain.confirm", ["token": .string(String(oldLink.split(separator: "=").last!))])?.reason == "token_expired")
  }

  @Test func d4EmailMustBeAtTheDomain() throws {
    let w = try f.workspace()
    let e = try f.rpc.error(
      "domain.add", ["workspaceId": .string(w.id), "domain": "mail.test", "method": "email", "email": "it@elsewhere.test", "actor": f.admin(w)])
    #expect(e?.reason == "email_domain_mismatch")
    let missing = try f.rpc.error("domain.add", ["workspaceId": .string(w.id), "domain": "mail.test", "method": "email", "actor": f.admin(w)])
    #expect(missing?.code == -32602)
    #expect(try f.pool.query("SELECT count(*) AS n FROM domains").first?["n"] == "0", "nothing written")
  }

  @Test func d4ADomainBelongsToOneWorkspace() throws {
    let a = try f.workspace("A", owner: "a@a.test")
    let b = try f.workspace("B", owner: "b@b.test")
    try f.verifyDomain(a, "shared.test")
    let e = try f.rpc.error("domain.add", ["workspaceId": .string(b.id), "domain": "shared.test", "method": "dns", "actor": f.admin(b)])
    #expect(e?.code == -32002)
    #expect(e?.reason == "domain_taken")
    // A workspace may have many domains.
    try f.verifyDomain(a, "second.test")
    #expect(try f.rpc.call("domain.list", ["workspaceId": .string(a.id)])["domains"]?.arrayValue?.count == 2)
  }

  @Test func d1OnlyEnterpriseMayVerifyDomains() throws {
    let w = try f.workspace("Small", plan: "business", owner: "o@small.test")
    let e = try f.rpc.error("domain.add", ["workspaceId": .string(w.id), "domain": "small.test", "method": "dns", "actor": f.admin(w)])
    #expect(e?.reason == "plan_required")
  }

  @Test(arguments: [("gmail.com", "public_domain"), ("mailinator.com", "public_domain"), ("co.uk", "public_domain"),
                    ("github.io", "public_domain"), ("not a domain", "invalid_domain"), ("10.1.2.3", "invalid_domain"), ("localhost", "invalid_domain")])
  func d2RefusedDomains(_ domain: String, _ reason: String) throws {
    let w = try f.workspace()
    let e = try f.rpc.error("domain.add", ["workspaceId": .string(w.id), "domain": .string(domain), "method": "dns", "actor": f.admin(w)])
    #expect(e?.code == -32602)
    #expect(e?.reason == reason)
    #expect(e?.data?["param"] == "domain")
  }

  @Test func d5OnlyOpsRemoveDomainsAndItIsAudited() throws {
    let w = try f.workspace()
    let d = try f.verifyDomain(w, "keep.test")
    let byAdmin = try f.rpc.error("domain.remove", ["workspaceId": .string(w.id), "domainId": d["domainId"]!, "actor": f.admin(w)])
    #expect(byAdmin?.code == -32003)
    #expect(byAdmin?.reason == "ops_required")
    let removed = try f.rpc.call("domain.remove", ["workspaceId": .string(w.id), "domainId": d["domainId"]!, "actor": f.ops])
    #expect(removed["status"] == "removed")
    let audit = try f.rpc.call("audit.list", ["workspaceId": .string(w.id)])["entries"]?.arrayValue ?? []
    let entry = try #require(audit.first { $0["action"] == "domain.remove" })
    #expect(entry["actor"]?["ops"] == "alice")
  }

  @Test func d5OpsActorsNeedAnAllowedUid() throws {
    let strict = try ProvisioningFixture(environment: ["ROSTER_OPS_UIDS": "54321"])
    let w = try strict.workspace()
    let d = try strict.verifyDomain(w, "strict.test")
    let e = try strict.rpc.error("domain.remove", ["workspaceId": .string(w.id), "domainId": d["domainId"]!, "actor": strict.ops])
    #expect(e?.reason == "ops_not_permitted")
  }

  @Test func d6OutsideDomainMembersAreReported() throws {
    let w = try f.workspace(owner: "boss@acme.test")
    try f.addMember(w, "jane@acme.test")
    try f.addMember(w, "contractor@gmail.com")
    try f.addMember(w, "partner@partner.test")
    let d = try f.rpc.call("domain.add", ["workspaceId": .string(w.id), "domain": "acme.test", "method": "dns", "actor": f.admin(w)])
    let outside = Set((d["outsideDomainMembers"]?.arrayValue ?? []).compactMap { $0["email"]?.stringValue })
    #expect(outside == ["contractor@gmail.com", "partner@partner.test"])
    #expect(d["outsideDomainMemberCount"] == 2)
  }
}
