import Foundation
import JSON
import Postgres
import RosterStore
import RosterTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// R5: kill -9 the real `roster deprovisioning` process at several points of a
/// 100,000-item transfer, restart it, and check every item exists exactly
/// once, in the right folder, and the job is done.
@Suite(.serialized) final class CrashSafetyTests {
  let f: ProvisioningFixture

  init() throws { f = try ProvisioningFixture() }

  func startDeprovisioning(_ log: String) throws -> Spawned {
    var env = ProcessInfo.processInfo.environment
    env["ROSTER_DATABASE_URL"] = f.database
    env["ROSTER_RUN_DIR"] = try TestFiles.makeTempDirectory(prefix: "roster-crash")
    env["ROSTER_LOG_LEVEL"] = "info"
    return try TestProcess.start([TestFiles.rosterBinary, "deprovisioning"], environment: env, output: log)
  }

  func jobState(jobId: String, leaver: String, target: String) throws -> (status: String, leaverItems: Int64, targetItems: Int64, folders: Int64) {
    let row = try f.pool.query(
      """
      SELECT (SELECT status FROM jobs WHERE id = \(jobId)::uuid) AS status,
             (SELECT count(*) FROM content WHERE owner_member_id = \(leaver)::uuid) AS leaver,
             (SELECT count(*) FROM content WHERE owner_member_id = \(target)::uuid) AS target,
             (SELECT count(*) FROM folders WHERE created_by_job = \(jobId)::uuid) AS folders
      """
    ).first
    let r = try #require(row)
    return (try r.string("status"), try r.int("leaver"), try r.int("target"), try r.int("folders"))
  }

  @Test func killNineDuringA100kTransferLosesAndDuplicatesNothing() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let target = try f.addMember(w, "target@acme.test", role: "creator")["memberId"]!.stringValue!
    let leaver = try f.rpc.call("member.add", ["workspaceId": .string(w.id), "email": "leaver@acme.test", "name": "Lee Ver", "actor": f.admin(w)])["memberId"]!
      .stringValue!
    let items = 100_000
    try f.pool.query(
      """
      INSERT INTO content (workspace_id, owner_member_id, title, posted)
      SELECT \(w.id)::uuid, \(leaver)::uuid, 'video ' || i, i % 3 = 0 FROM generate_series(1, \(items)::int) i
      """)
    try f.pool.query(
      """
      UPDATE workspaces SET deprovision_mode = 'delete', deprovision_content = 'transfer', deprovision_target_member_id = \(target)::uuid
      WHERE id = \(w.id)::uuid
      """)
    let jobId = try f.pool.transaction { tx in
      try Lifecycle.deactivate(tx, member: try MemberRow.load(tx, workspaceId: w.id, memberId: leaver)!, actor: .system("test"), reason: "test")
    }
    let logDir = try TestFiles.makeTempDirectory(prefix: "roster-crashlog")

    func state() throws -> (status: String, leaverItems: Int64, targetItems: Int64, folders: Int64) {
      try jobState(jobId: jobId, leaver: leaver, target: target)
    }

    var killedMidway = 0
    for (n, delay) in [0.25, 0.6, 1.0, 1.6].enumerated() {
      let p = try startDeprovisioning(logDir + "/run\(n).log")
      usleep(UInt32(delay * 1_000_000))
      p.signal(SIGKILL)
      p.wait()
      let s = try state()
      // Atomic: either all of it happened or none of it.
      if s.status == "done" {
        #expect(s.leaverItems == 0 && s.targetItems == Int64(items) && s.folders == 1)
        break
      }
      killedMidway += 1
      #expect(s.leaverItems == Int64(items), "after kill \(n): nothing moved")
      #expect(s.targetItems == 0)
      #expect(s.folders == 0)
    }
    #expect(killedMidway >= 2, "the kills must land before the job finished")
    // A last, undisturbed run finishes the job (the orphaned claim is rescued).
    let p = try startDeprovisioning(logDir + "/final.log")
    defer { p.stop() }
    #expect(TestProcess.waitUntil(timeout: 90) { (try? state().status) == "done" })
    let s = try state()
    #expect(s.leaverItems == 0)
    #expect(s.targetItems == Int64(items))
    #expect(s.folders == 1)
    let distinct = try #require(
      try f.pool.query("SELECT count(DISTINCT id) AS n, count(*) AS total FROM content WHERE workspace_id = \(w.id)::uuid").first)
    #expect(distinct["n"] == String(items))
    #expect(distinct["total"] == String(items))
    let folder = try #require(try f.pool.query("SELECT id, name, owner_member_id FROM folders WHERE created_by_job = \(jobId)::uuid").first)
    #expect(folder["name"] == "leaver@acme.test - Lee Ver's content")
    #expect(folder["owner_member_id"] == target)
    #expect(try f.pool.query("SELECT count(*) AS n FROM content WHERE folder_id = \(folder["id"]!)::uuid").first?["n"] == String(items))
    #expect(try f.pool.query("SELECT count(*) AS n FROM events WHERE type = 'content.transferred'").first?["n"] == "1", "reported once")
  }
}
