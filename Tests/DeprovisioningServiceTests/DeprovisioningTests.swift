import Foundation
import JSON
import JSONRPC
import Postgres
import RosterApp
import RosterStore
import RosterTestSupport
import SCIM
import Synchronization
import Testing

/// R1–R6 over the provisioning and deprovisioning sockets, with the real
/// job worker woken by NOTIFY.
@Suite(.serialized) final class DeprovisioningTests {
  let f: ProvisioningFixture
  let d: RunningProcess
  let jobs: TestRPC

  init() throws {
    f = try ProvisioningFixture()
    var o = Services.Options()
    // A long fallback poll: jobs finishing quickly proves the NOTIFY wake-up works.
    o.deprovisioning.pollSeconds = 60
    // A long back-off: a retried job finishing quickly proves job.retry runs it at once.
    o.deprovisioning.retryBaseSeconds = 600
    d = try RunningProcess("deprovisioning", database: f.database, options: o)
    jobs = try d.client()
  }

  deinit { d.stop() }

  func waitForJob(_ id: String, timeout: Double = 15) throws -> JSONValue {
    var last: JSONValue = .null
    _ = TestProcess.waitUntil(timeout: timeout) {
      last = (try? self.jobs.call("job.get", ["jobId": .string(id)])) ?? .null
      return last["status"] == "done" || last["status"] == "failed"
    }
    return last
  }

  @discardableResult
  func content(_ w: ProvisioningFixture.Workspace, owner: String, _ title: String, posted: Bool = false) throws -> JSONValue {
    try jobs.call("content.create", ["workspaceId": .string(w.id), "ownerMemberId": .string(owner), "title": .string(title), "posted": .bool(posted)])
  }

  @Test func r1DefaultDeactivateKeepsContent() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let jane = try f.addMember(w, "jane@acme.test")["memberId"]!.stringValue!
    try content(w, owner: jane, "Demo", posted: true)
    #expect(try jobs.call("deprovision.get", ["workspaceId": .string(w.id)])["mode"] == "deactivate")
    let started = Date()
    let job = try jobs.call("deprovision.member", ["workspaceId": .string(w.id), "memberId": .string(jane), "actor": f.admin(w)])
    #expect(try f.rpc.call("member.get", ["workspaceId": .string(w.id), "memberId": .string(jane)])["status"] == "deactivated", "immediate")
    let done = try waitForJob(job["jobId"]!.stringValue!)
    #expect(done["status"] == "done")
    #expect(Date().timeIntervalSince(started) < 10, "woken by NOTIFY, not the 60 s poll")
    #expect(done["result"]?["content"] == "kept")
    let items = try jobs.call("content.list", ["workspaceId": .string(w.id), "ownerMemberId": .string(jane)])["content"]?.arrayValue ?? []
    #expect(items.count == 1)
    #expect(try f.signIn("jane@acme.test").blockedReason(w.id) == "deactivated")
    #expect(try f.outbox("deprovision_summary").count == 1)
  }

  /// R2 with C8: an IdP rename reaches the member, so the transfer folder
  /// carries the name the directory gave last.
  @Test func r2TransferFolderUsesTheNameTheDirectoryGaveLast() throws {
    let s = try SCIMFixture(f)
    let target = try f.addMember(s.w, "target@acme.test", role: "creator")["memberId"]!.stringValue!
    let jane = try s.createUser("jane@acme.test", extra: ["displayName": "Jane Old"])["id"]!.stringValue!
    try content(s.w, owner: jane, "Video")
    #expect(try s.patch("/scim/v2/Users/\(jane)", [["op": "replace", "path": "displayName", "value": "Jane New"]]).status == 200)
    try jobs.call(
      "deprovision.configure",
      ["workspaceId": .string(s.w.id), "mode": "delete", "content": "transfer", "targetMemberId": .string(target), "actor": f.admin(s.w)])
    #expect(try s.patch("/scim/v2/Users/\(jane)", [["op": "replace", "value": ["active": false]]]).status == 200)
    let job = try #require(try jobs.call("job.list", ["memberId": .string(jane)])["jobs"]?.arrayValue?.first)
    #expect(try waitForJob(job["jobId"]!.stringValue!)["status"] == "done")
    let folders = try jobs.call("folder.list", ["workspaceId": .string(s.w.id), "ownerMemberId": .string(target)])["folders"]?.arrayValue ?? []
    #expect(folders.map { $0["name"] } == ["jane@acme.test - Jane New's content"])
  }

  @Test func r2DeleteAndTransferEverythingIntoANamedFolder() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let target = try f.addMember(w, "target@acme.test", role: "creator")["memberId"]!.stringValue!
    let jane = try f.rpc.call("member.add", ["workspaceId": .string(w.id), "email": "jane@acme.test", "name": "Jane Doe", "actor": f.admin(w)])["memberId"]!.stringValue!
    for i in 0..<5 { try content(w, owner: jane, "Video \(i)", posted: i % 2 == 0) }
    try jobs.call(
      "deprovision.configure",
      ["workspaceId": .string(w.id), "mode": "delete", "content": "transfer", "targetMemberId": .string(target), "actor": f.admin(w)])
    let job = try jobs.call("deprovision.member", ["workspaceId": .string(w.id), "memberId": .string(jane), "actor": f.admin(w)])
    let done = try waitForJob(job["jobId"]!.stringValue!)
    #expect(done["status"] == "done")
    #expect(done["result"]?["moved"] == 5)
    let folders = try jobs.call("folder.list", ["workspaceId": .string(w.id), "ownerMemberId": .string(target)])["folders"]?.arrayValue ?? []
    #expect(folders.map { $0["name"] } == ["jane@acme.test - Jane Doe's content"])
    #expect(folders.first?["contentCount"] == 5)
    let moved = try jobs.call("content.list", ["workspaceId": .string(w.id), "ownerMemberId": .string(target)])["content"]?.arrayValue ?? []
    #expect(moved.count == 5)
    #expect(moved.filter { $0["posted"] == true }.count == 3, "posted and unposted both move")
    #expect(try f.rpc.error("member.get", ["workspaceId": .string(w.id), "memberId": .string(jane)])?.code == -32001, "the member is removed")
    let transferred = try f.events("content.transferred", workspace: w)
    #expect(transferred.last?["data"]?["count"] == 5)
    #expect(try f.events("member.deleted", workspace: w).count == 1)
  }

  @Test func r3DeleteAndDeleteContent() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let jane = try f.addMember(w, "jane@acme.test")["memberId"]!.stringValue!
    for i in 0..<3 { try content(w, owner: jane, "Clip \(i)") }
    try jobs.call("deprovision.configure", ["workspaceId": .string(w.id), "mode": "delete", "content": "delete", "actor": f.admin(w)])
    let done = try waitForJob(try jobs.call("deprovision.member", ["workspaceId": .string(w.id), "memberId": .string(jane), "actor": f.admin(w)])["jobId"]!.stringValue!)
    #expect(done["result"]?["deleted"] == 3)
    #expect(try jobs.call("content.list", ["workspaceId": .string(w.id)])["content"]?.arrayValue?.isEmpty == true)
  }

  @Test func configureValidatesTheTarget() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let viewer = try f.addMember(w, "v@acme.test", role: "viewer")["memberId"]!.stringValue!
    let gone = try f.addMember(w, "g@acme.test", role: "creator")["memberId"]!.stringValue!
    try f.pool.query("UPDATE members SET status = 'deactivated' WHERE id = \(gone)::uuid")
    func configure(_ p: [String: JSONValue]) throws -> RPCError? {
      var q = p
      q["workspaceId"] = .string(w.id)
      q["actor"] = f.admin(w)
      return try jobs.error("deprovision.configure", .object(q))
    }
    #expect(try configure(["mode": "delete", "content": "transfer", "targetMemberId": .string(viewer)])?.reason == "target_not_eligible")
    #expect(try configure(["mode": "delete", "content": "transfer", "targetMemberId": .string(gone)])?.reason == "target_inactive")
    #expect(try configure(["mode": "delete", "content": "transfer"])?.data?["param"] == "targetMemberId")
    #expect(try configure(["mode": "delete"])?.data?["param"] == "content")
    #expect(try configure(["mode": "deactivate", "content": "delete"])?.data?["param"] == "content")
    #expect(try configure(["mode": "delete", "content": "transfer", "targetMemberId": "3f2504e0-4f89-41d3-9a0c-0305e82c3301"])?.code == -32001)
    #expect(try jobs.call("deprovision.get", ["workspaceId": .string(w.id)])["mode"] == "deactivate", "nothing changed")
  }

  @Test func r4TargetProtectionOnEveryPath() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let second = try f.addMember(w, "admin2@acme.test", role: "admin")["memberId"]!.stringValue!
    let target = try f.addMember(w, "target@acme.test", role: "creator")["memberId"]!.stringValue!
    try jobs.call(
      "deprovision.configure",
      ["workspaceId": .string(w.id), "mode": "delete", "content": "transfer", "targetMemberId": .string(target), "actor": f.admin(w)])
    let e1 = try jobs.error("deprovision.member", ["workspaceId": .string(w.id), "memberId": .string(target), "actor": f.admin(w)])
    #expect(e1?.reason == "transfer_target_protected")
    let e2 = try f.rpc.error("member.setRole", ["workspaceId": .string(w.id), "memberId": .string(target), "role": "viewer", "actor": f.admin(w)])
    #expect(e2?.reason == "transfer_target_protected")
    #expect(try f.rpc.call("member.get", ["workspaceId": .string(w.id), "memberId": .string(target)])["role"] == "creator")
    // Every admin is emailed — once an hour per target, however many attempts; each attempt is audited.
    #expect(try f.outbox("transfer_target_conflict").count == 2)
    #expect(try f.pool.query("SELECT 1 FROM audit_log WHERE action = 'deprovision.target_protected'").count == 2)
    // A group mapping that would make the target a viewer is refused too.
    let s = try SCIMFixture(f, name: "Dir", owner: "o@dir.test")
    let t2 = try s.createUser("t2@dir.test", extra: ["loomMemberRole": "default"])["id"]!.stringValue!
    let g = try s.createGroup("Viewers", members: [t2])["id"]!.stringValue!
    try jobs.call(
      "deprovision.configure",
      ["workspaceId": .string(s.w.id), "mode": "delete", "content": "transfer", "targetMemberId": .string(t2), "actor": f.admin(s.w)])
    let e3 = try f.rpc.error("group.mapRole", ["workspaceId": .string(s.w.id), "groupId": .string(g), "role": "viewer", "priority": 1, "actor": f.admin(s.w)])
    #expect(e3?.reason == "transfer_target_protected")
    // After the target changes, the retried deactivation succeeds.
    try jobs.call(
      "deprovision.configure",
      ["workspaceId": .string(w.id), "mode": "delete", "content": "transfer", "targetMemberId": .string(second), "actor": f.admin(w)])
    let job = try jobs.call("deprovision.member", ["workspaceId": .string(w.id), "memberId": .string(target), "actor": f.admin(w)])
    #expect(try waitForJob(job["jobId"]!.stringValue!)["status"] == "done")
  }

  @Test func r5AJobThatCannotActOnItsConfigurationFailsAtOnceAndRunsWhenRetried() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let target = try f.addMember(w, "target@acme.test", role: "creator")["memberId"]!.stringValue!
    let jane = try f.addMember(w, "jane@acme.test")["memberId"]!.stringValue!
    try content(w, owner: jane, "Keep me")
    try jobs.call(
      "deprovision.configure",
      ["workspaceId": .string(w.id), "mode": "delete", "content": "transfer", "targetMemberId": .string(target), "actor": f.admin(w)])
    // The target becomes unusable behind the policy's back (e.g. by hand in the database).
    try f.pool.query("UPDATE members SET status = 'deactivated' WHERE id = \(target)::uuid")
    let job = try jobs.call("deprovision.member", ["workspaceId": .string(w.id), "memberId": .string(jane), "actor": f.admin(w)])
    let jobId = job["jobId"]!.stringValue!
    // A permanent failure: failed after one attempt, saying what to change.
    let failed = try waitForJob(jobId)
    #expect(failed["status"] == "failed")
    #expect(failed["attempts"] == 1, "no pointless retries")
    #expect(failed["lastError"]?.stringValue?.contains("choose a new target with deprovision.configure, then job.retry") == true)
    #expect(try jobs.call("job.list", ["status": "failed", "workspaceId": .string(w.id)])["jobs"]?.arrayValue?.count == 1)
    #expect(try jobs.call("content.list", ["workspaceId": .string(w.id), "ownerMemberId": .string(jane)])["content"]?.arrayValue?.count == 1, "nothing moved")
    try f.pool.query("UPDATE members SET status = 'active' WHERE id = \(target)::uuid")
    let retried = try jobs.call("job.retry", ["jobId": job["jobId"]!, "actor": f.admin(w)])
    #expect(retried["status"] == "queued")
    #expect(try waitForJob(jobId, timeout: 10)["status"] == "done", "runs at once after the fix")
    #expect(try jobs.error("job.retry", ["jobId": job["jobId"]!, "actor": f.admin(w)])?.reason == "job_not_failed")
    #expect(try jobs.error("job.get", ["jobId": "3f2504e0-4f89-41d3-9a0c-0305e82c3301"])?.code == -32001)
  }

  /// A transient failure (here the job's database connection is cut in the
  /// middle of it) is retried with back-off; job.retry cuts the wait short.
  @Test func r5ATransientFailureIsRetriedWithBackOffAndJobRetryRunsItNow() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let jane = try f.addMember(w, "jane@acme.test")["memberId"]!.stringValue!
    let killer = PGPool(config: PGConfig(conninfo: f.database), size: 1)
    defer { killer.closeAll() }
    // The connection is cut on every attempt the pool makes (it retries a
    // transaction on a lost connection a few times), so the job sees the outage.
    let cuts = Mutex(0)
    PausePoints.arm("job.run", key: jane) {
      if cuts.withLock({ $0 += 1; return $0 }) >= 5 { PausePoints.disarm("job.run", key: jane) }
      _ = try? killer.query(
        """
        SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE pid <> pg_backend_pid() AND datname = current_database() AND state = 'idle in transaction'
        """)
    }
    let job = try jobs.call("deprovision.member", ["workspaceId": .string(w.id), "memberId": .string(jane), "actor": f.admin(w)])
    let jobId = job["jobId"]!.stringValue!
    var waiting: JSONValue = .null
    #expect(TestProcess.waitUntil(timeout: 15) {
      waiting = (try? self.jobs.call("job.get", ["jobId": .string(jobId)])) ?? .null
      return waiting["lastError"]?.stringValue != nil
    })
    #expect(waiting["status"] == "queued", "transient: waiting for its retry")
    #expect(waiting["attempts"] == 1)
    #expect(waiting["lastError"]?.stringValue?.contains("database") == true, "\(waiting)")
    // The back-off here is 10 minutes; job.retry runs it now.
    #expect(try jobs.call("job.retry", ["jobId": .string(jobId), "actor": f.admin(w)])["attempts"] == 1)
    let done = try waitForJob(jobId, timeout: 10)
    #expect(done["status"] == "done")
    #expect(done["attempts"] == 2)
  }

  @Test func badInputIsRefusedWithoutPartialState() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let unknown = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    #expect(try jobs.error("deprovision.member", ["workspaceId": .string(w.id), "memberId": .string(unknown), "actor": f.admin(w)])?.code == -32001)
    #expect(try jobs.error("deprovision.member", ["workspaceId": .string(w.id), "memberId": .string(w.owner), "actor": f.admin(w)])?.reason == "last_admin")
    #expect(try jobs.error("content.create", ["workspaceId": .string(w.id), "ownerMemberId": .string(unknown), "title": "x", "posted": true])?.code == -32001)
    let jane = try f.addMember(w, "jane@acme.test")["memberId"]!.stringValue!
    let first = try jobs.call("deprovision.member", ["workspaceId": .string(w.id), "memberId": .string(jane), "actor": f.admin(w)])
    _ = try waitForJob(first["jobId"]!.stringValue!)
    // Deprovisioning again: the job for a deactivated member runs again harmlessly; a deleted one is refused.
    try jobs.call("deprovision.configure", ["workspaceId": .string(w.id), "mode": "delete", "content": "delete", "actor": f.admin(w)])
    let second = try jobs.call("deprovision.member", ["workspaceId": .string(w.id), "memberId": .string(jane), "actor": f.admin(w)])
    #expect(try waitForJob(second["jobId"]!.stringValue!)["status"] == "done")
    #expect(try jobs.error("deprovision.member", ["workspaceId": .string(w.id), "memberId": .string(jane), "actor": f.admin(w)])?.reason == "already_deprovisioned")
  }

  @Test func c6SCIMDeactivationRunsThePolicyAndReactivationMakesANewMembership() throws {
    let s = try SCIMFixture(f)
    let target = try f.addMember(s.w, "boss2@acme.test", role: "admin")["memberId"]!.stringValue!
    try jobs.call(
      "deprovision.configure",
      ["workspaceId": .string(s.w.id), "mode": "delete", "content": "transfer", "targetMemberId": .string(target), "actor": f.admin(s.w)])
    let id = try s.createUser("leaver@acme.test")["id"]!.stringValue!
    try content(s.w, owner: id, "Roadmap")
    #expect(try s.patch("/scim/v2/Users/\(id)", [["op": "replace", "value": ["active": false]]]).status == 200)
    let job = try #require(try jobs.call("job.list", ["memberId": .string(id)])["jobs"]?.arrayValue?.first)
    #expect(try waitForJob(job["jobId"]!.stringValue!)["status"] == "done")
    // The SCIM User is still there, inactive; the membership is gone.
    let user = try s.http.request("GET", "/scim/v2/Users/\(id)")
    #expect(user.status == 200)
    #expect(user.json?["active"] == false)
    #expect(try f.rpc.error("member.get", ["workspaceId": .string(s.w.id), "memberId": .string(id)])?.code == -32001)
    #expect(try jobs.call("content.list", ["workspaceId": .string(s.w.id), "ownerMemberId": .string(target)])["content"]?.arrayValue?.count == 1)
    // active:true: a new membership with no content.
    #expect(try s.patch("/scim/v2/Users/\(id)", [["op": "replace", "value": ["active": true]]]).status == 200)
    let m = try f.rpc.call("member.get", ["workspaceId": .string(s.w.id), "memberId": .string(id)])
    #expect(m["status"] == "active")
    #expect(try jobs.call("content.list", ["workspaceId": .string(s.w.id), "ownerMemberId": .string(id)])["content"]?.arrayValue?.isEmpty == true)
    // DELETE: 404 afterwards, and the policy runs.
    #expect(try s.http.request("DELETE", "/scim/v2/Users/\(id)").status == 204)
    #expect(try s.http.request("GET", "/scim/v2/Users/\(id)").status == 404)
  }

  @Test func r6CapturedUserMovesTheirContent() throws {
    let enterprise = try f.workspace("Acme", owner: "owner@acme.test")
    let own = try f.workspace("Sam's videos", plan: "business", owner: "sam@acme.test")
    let samHere = own.owner
    let samThere = try f.addMember(enterprise, "sam@acme.test")["memberId"]!.stringValue!
    for i in 0..<4 { try content(own, owner: samHere, "Old \(i)", posted: i == 0) }
    let user = try f.rpc.call("member.get", ["workspaceId": .string(enterprise.id), "memberId": .string(samThere)])["userId"]!
    let refused = try jobs.error("content.moveToWorkspace", ["userId": user, "fromWorkspaceId": .string(enterprise.id), "toWorkspaceId": .string(own.id)])
    #expect(refused?.reason == "source_plan")
    let job = try jobs.call("content.moveToWorkspace", ["userId": user, "fromWorkspaceId": .string(own.id), "toWorkspaceId": .string(enterprise.id)])
    #expect(job["kind"] == "move_content")
    #expect(try waitForJob(job["jobId"]!.stringValue!)["status"] == "done")
    let folders = try jobs.call("folder.list", ["workspaceId": .string(enterprise.id), "ownerMemberId": .string(samThere)])["folders"]?.arrayValue ?? []
    #expect(folders.map { $0["name"] } == ["Sam's videos content"])
    #expect(folders.first?["contentCount"] == 4)
    #expect(try jobs.call("content.list", ["workspaceId": .string(own.id)])["content"]?.arrayValue?.isEmpty == true)
    // Someone who is not a member of both cannot.
    let stranger = try f.workspace("Other", plan: "starter", owner: "x@other.test")
    let xUser = try f.rpc.call("member.get", ["workspaceId": .string(stranger.id), "memberId": .string(stranger.owner)])["userId"]!
    #expect(try jobs.error("content.moveToWorkspace", ["userId": xUser, "fromWorkspaceId": .string(stranger.id), "toWorkspaceId": .string(enterprise.id)])?
      .reason == "membership_required")
  }

  @Test func r5TwoProcessesRunEachJobExactlyOnce() throws {
    let d2 = try RunningProcess("deprovisioning", database: f.database)
    defer { d2.stop() }
    let w = try f.workspace(owner: "owner@acme.test")
    try jobs.call("deprovision.configure", ["workspaceId": .string(w.id), "mode": "delete", "content": "delete", "actor": f.admin(w)])
    var ids: [String] = []
    for i in 0..<30 {
      let m = try f.addMember(w, "m\(i)@acme.test")["memberId"]!.stringValue!
      try content(w, owner: m, "c\(i)")
      ids.append(try jobs.call("deprovision.member", ["workspaceId": .string(w.id), "memberId": .string(m), "actor": f.admin(w)])["jobId"]!.stringValue!)
    }
    for id in ids { #expect(try waitForJob(id)["status"] == "done") }
    #expect(try f.pool.query("SELECT count(*) AS n FROM jobs WHERE attempts <> 1").first?["n"] == "0", "each claimed once")
    #expect(try f.events("member.deleted", workspace: w).count == 30)
    #expect(try f.outbox("deprovision_summary").count == 30)
  }
}
