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

/// What the concurrency audit found: IdPs send several requests at once.
/// Each race runs many rounds behind a barrier (Concurrently), enough that
/// the code before the fixes failed in most of them.
@Suite(.serialized) final class RaceTests: @unchecked Sendable {
  let f: ProvisioningFixture
  let s: SCIMFixture
  let d: RunningProcess
  let jobs: TestRPC

  init() throws {
    f = try ProvisioningFixture()
    s = try SCIMFixture(f)
    try f.verifyDomain(s.w, "acme.test")
    var o = Services.Options()
    o.deprovisioning.pollSeconds = 60
    d = try RunningProcess("deprovisioning", database: f.database, options: o)
    jobs = try d.client()
  }

  deinit { d.stop() }

  var socket: String { f.process.runDir + "/scim.sock" }

  /// A SCIM client of its own (one per thread).
  func client() throws -> TestHTTP { try TestHTTP(socket: socket, token: s.token) }

  func patch(_ http: TestHTTP, _ path: String, _ ops: [JSONValue]) throws -> TestHTTP.Response {
    try http.request("PATCH", path, json: ["schemas": [.string(URN.patchOp)], "Operations": .array(ops)])
  }

  func mapRole(_ group: String, _ role: String, _ priority: Int) throws {
    try f.rpc.call(
      "group.mapRole", ["workspaceId": .string(s.w.id), "groupId": .string(group), "role": .string(role), "priority": .int(Int64(priority)), "actor": f.admin(s.w)])
  }

  func groupIds(of member: String) throws -> Set<String> {
    Set(try f.pool.query("SELECT group_id FROM scim_group_members WHERE member_id = \(member)::uuid").rows.compactMap { $0["group_id"] })
  }

  // MARK: 1. Roles from committed group data (C5)

  @Test func c5RoleAlwaysFollowsTheCommittedGroupsAndAttribute() throws {
    let x = try s.createUser("x@acme.test", extra: ["loomMemberRole": "creator"])["id"]!.stringValue!
    let admins = try s.createGroup("Admins", members: [x])["id"]!.stringValue!
    let viewers = try s.createGroup("Viewers")["id"]!.stringValue!
    try mapRole(admins, "admin", 1)
    try mapRole(viewers, "viewer", 2)
    for round in 0..<30 {
      let moveToViewers = round % 2 == 1
      // The start: in Admins only; the attribute creator (or default, for the group move).
      _ = try s.patch("/scim/v2/Groups/\(viewers)", [["op": "remove", "path": "members"]])
      _ = try s.patch("/scim/v2/Groups/\(admins)", [["op": "add", "path": "members", "value": [["value": .string(x)]]]])
      _ = try s.patch("/scim/v2/Users/\(x)", [["op": "replace", "path": "loomMemberRole", "value": .string(moveToViewers ? "default" : "creator")]])
      #expect(try s.member(x)["role"] == (moveToViewers ? "admin" : "creator"))
      let errors = Concurrently.run(2) { [self] i in
        let http = try client()
        if i == 0 {
          // Leave Admins.
          _ = try patch(http, "/scim/v2/Groups/\(admins)", [["op": "remove", "path": .string("members[value eq \"\(x)\"]")]])
        } else if moveToViewers {
          // …while joining Viewers in a second request.
          _ = try patch(http, "/scim/v2/Groups/\(viewers)", [["op": "add", "path": "members", "value": [["value": .string(x)]]]])
        } else {
          // …while the attribute goes back to default.
          _ = try patch(http, "/scim/v2/Users/\(x)", [["op": "replace", "path": "loomMemberRole", "value": "default"]])
        }
      }
      #expect(errors.isEmpty, "\(errors)")
      let m = try s.member(x)
      if moveToViewers {
        #expect(m["role"] == "viewer" && m["roleSource"] == "group", "round \(round): \(m)")
      } else {
        #expect(m["role"] == "creator" && m["roleSource"] == "default", "round \(round): \(m)")
      }
      #expect(try groupIds(of: x) == (moveToViewers ? [viewers] : []))
    }
  }

  // MARK: 2. No membership row for a deleted User (C1/C5)

  @Test func c1AGroupAddRacingADeleteLeavesNoHiddenRow() throws {
    let admins = try s.createGroup("Admins")["id"]!.stringValue!
    try mapRole(admins, "admin", 1)
    for round in 0..<30 {
      let email = "racer\(round)@acme.test"
      let x = try s.createUser(email)["id"]!.stringValue!
      let errors = Concurrently.run(2) { [self] i in
        let http = try client()
        if i == 0 {
          _ = try patch(http, "/scim/v2/Groups/\(admins)", [["op": "add", "path": "members", "value": [["value": .string(x)]]]])
        } else {
          _ = try http.request("DELETE", "/scim/v2/Users/\(x)")
        }
      }
      #expect(errors.isEmpty)
      #expect(try groupIds(of: x).isEmpty, "round \(round): a membership row outlived the User")
      let listed = try f.rpc.call("group.list", ["workspaceId": .string(s.w.id)])["groups"]?.arrayValue?.first { $0["groupId"]?.stringValue == admins }
      let scim = try s.http.request("GET", "/scim/v2/Groups/\(admins)").json?["members"]?.arrayValue ?? []
      #expect(listed?["memberCount"]?.intValue == Int64(scim.count), "round \(round): group.list and GET /Groups agree")
      // The IdP re-creates the User: not in any group, not admin.
      let again = try s.createUser(email)["id"]!.stringValue!
      #expect(try s.member(again)["role"] == "creator", "round \(round)")
      #expect(try groupIds(of: again).isEmpty)
      _ = try s.http.request("DELETE", "/scim/v2/Users/\(again)")
    }
  }

  // MARK: 3. Replaying the feed ends in the committed state

  @Test func theFeedReplaysToTheFinalStateUnderConcurrentWriters() throws {
    // Delete policy: the deprovisioning job (another process) writes
    // member.deleted while SCIM flips the member on and off.
    try jobs.call("deprovision.configure", ["workspaceId": .string(s.w.id), "mode": "delete", "content": "delete", "actor": f.admin(s.w)])
    let x = try s.createUser("flip@acme.test")["id"]!.stringValue!
    var after: JSONValue = "0"
    var last: String?
    for burst in 0..<24 {
      let errors = Concurrently.run(8) { [self] i in
        let http = try client()
        for j in 0..<3 {
          _ = try patch(http, "/scim/v2/Users/\(x)", [["op": "replace", "value": ["active": .bool((i + j + burst) % 2 == 0)]]])
        }
      }
      #expect(errors.isEmpty)
      // Let the jobs the flips queued finish, then follow the feed as an app would.
      _ = TestProcess.waitUntil(timeout: 20) {
        let open = try? self.f.pool.query("SELECT count(*) AS n FROM jobs WHERE member_id = \(x)::uuid AND status IN ('queued', 'running')")
        return open?.first?["n"] == "0"
      }
      f.waitForFeed()
      while true {
        let page = try f.rpc.call("events.list", ["after": after, "limit": 50, "workspaceId": .string(s.w.id)])
        let events = page["events"]?.arrayValue ?? []
        for e in events where e["memberId"]?.stringValue == x {
          if let t = e["type"]?.stringValue, ["member.deactivated", "member.reactivated", "member.deleted"].contains(t) { last = t }
        }
        if let c = events.last?["cursor"] { after = c }
        if events.count < 50 { break }
      }
      let status = try f.pool.query("SELECT status FROM members WHERE id = \(x)::uuid").first?["status"]
      let replayed = ["member.deactivated": "deactivated", "member.deleted": "deleted"][last ?? ""] ?? "active"
      #expect(replayed == status, "burst \(burst): the feed ends in \(last ?? "nothing") but the member is \(status ?? "?")")
    }
  }

  // MARK: 4. Content never outlives deprovisioning (R2/R3)

  @Test func r3ContentCreatedWhileTheOwnerIsRemovedDoesNotOutliveThem() throws {
    try jobs.call("deprovision.configure", ["workspaceId": .string(s.w.id), "mode": "delete", "content": "delete", "actor": f.admin(s.w)])
    for round in 0..<20 {
      let m = try s.createUser("leaver\(round)@acme.test")["id"]!.stringValue!
      let created = Atomic<Bool>(false)
      // In some rounds the create is held after its member check until the
      // removal job has run (or a second has passed): the widest window.
      if round % 4 == 0 {
        let socket = d.socketPath
        PausePoints.arm("content.create.checked", key: m) {
          let jobs = try? TestRPC(socket)
          _ = TestProcess.waitUntil(timeout: 1) {
            (try? jobs?.call("job.list", ["memberId": .string(m), "status": "done"]))?["jobs"]?.arrayValue?.isEmpty == false
          }
        }
      }
      defer { PausePoints.disarm("content.create.checked", key: m) }
      let errors = Concurrently.run(2) { [self] i in
        if i == 0 {
          let rpc = try d.client()
          if (try? rpc.call("content.create", ["workspaceId": .string(s.w.id), "ownerMemberId": .string(m), "title": "Racing", "posted": false])) != nil {
            created.store(true, ordering: .relaxed)
          }
        } else {
          _ = try patch(try client(), "/scim/v2/Users/\(m)", [["op": "replace", "value": ["active": false]]])
        }
      }
      #expect(errors.isEmpty)
      let job = try #require(try jobs.call("job.list", ["memberId": .string(m)])["jobs"]?.arrayValue?.first)
      var status: JSONValue = .null
      _ = TestProcess.waitUntil(timeout: 15) {
        status = (try? self.jobs.call("job.get", ["jobId": job["jobId"]!]))?["status"] ?? .null
        return status == "done" || status == "failed"
      }
      #expect(status == "done", "round \(round)")
      let left = try f.pool.query("SELECT count(*) AS n FROM content WHERE owner_member_id = \(m)::uuid").first?["n"]
      #expect(left == "0", "round \(round): content left with a removed member (created: \(created.load(ordering: .relaxed)))")
    }
  }

  // MARK: 5. The transfer target cannot be made invalid (R4)

  @Test func r4ConfiguringATargetRacingItsDeactivationOrDemotion() throws {
    let viewers = try s.createGroup("Viewers")["id"]!.stringValue!
    try mapRole(viewers, "viewer", 1)
    for round in 0..<15 {
      let b = try s.createUser("target\(round)@acme.test", extra: ["loomMemberRole": "default"])["id"]!.stringValue!
      let viaGroup = round % 2 == 1
      let errors = Concurrently.run(2) { [self] i in
        if i == 0 {
          let rpc = try d.client()
          _ = try? rpc.call(
            "deprovision.configure",
            ["workspaceId": .string(s.w.id), "mode": "delete", "content": "transfer", "targetMemberId": .string(b), "actor": f.admin(s.w)])
        } else if viaGroup {
          _ = try patch(try client(), "/scim/v2/Groups/\(viewers)", [["op": "add", "path": "members", "value": [["value": .string(b)]]]])
        } else {
          _ = try patch(try client(), "/scim/v2/Users/\(b)", [["op": "replace", "value": ["active": false]]])
        }
      }
      #expect(errors.isEmpty)
      let target = try jobs.call("deprovision.get", ["workspaceId": .string(s.w.id)])["targetMemberId"]?.stringValue
      let m = try s.member(b)
      if target == b {
        #expect(m["status"] == "active" && m["role"] != "viewer", "round \(round): the target is \(m)")
      }
      // Reset: a mode without a target.
      try jobs.call("deprovision.configure", ["workspaceId": .string(s.w.id), "mode": "deactivate", "actor": f.admin(s.w)])
      _ = try s.patch("/scim/v2/Groups/\(viewers)", [["op": "remove", "path": "members"]])
    }
  }

  // MARK: 6. Break-glass only for active admins (S9)

  func enforceWithBypass(_ admin: String) throws {
    try f.rpc.call("sso.configure", ["workspaceId": .string(s.w.id), "connection": ProvisioningFixture.samlConnection, "actor": f.admin(s.w)])
    try f.pool.query("UPDATE workspaces SET sso_tested = true WHERE id = \(s.w.id)::uuid")
    try f.rpc.call("sso.update", ["workspaceId": .string(s.w.id), "enforceSso": true, "bypassMemberIds": [.string(admin)], "actor": f.admin(s.w)])
  }

  func bypassList() throws -> [String] {
    (try f.rpc.call("sso.get", ["workspaceId": .string(s.w.id)])["bypassMemberIds"]?.arrayValue ?? []).compactMap(\.stringValue)
  }

  @Test(arguments: ["setRole", "attribute", "group", "deactivate"])
  func s9ADemotedAdminLeavesTheBypassList(_ how: String) throws {
    let admins = try s.createGroup("Admins")["id"]!.stringValue!
    try mapRole(admins, "admin", 1)
    let attribute: JSONValue = how == "attribute" ? "admin" : "default"
    let a = try s.createUser("breakglass@acme.test", extra: ["loomMemberRole": attribute])["id"]!.stringValue!
    if how == "group" { _ = try s.patch("/scim/v2/Groups/\(admins)", [["op": "add", "path": "members", "value": [["value": .string(a)]]]]) }
    if how == "setRole" || how == "deactivate" {
      try f.rpc.call("member.setRole", ["workspaceId": .string(s.w.id), "memberId": .string(a), "role": "admin", "actor": f.admin(s.w)])
    }
    #expect(try s.member(a)["role"] == "admin")
    try enforceWithBypass(a)
    #expect(try bypassList() == [a])
    #expect(try f.signIn("breakglass@acme.test").workspace(s.w.id) != nil, "break-glass works while an admin")
    switch how {
    case "setRole":
      try f.rpc.call("member.setRole", ["workspaceId": .string(s.w.id), "memberId": .string(a), "role": "viewer", "actor": f.admin(s.w)])
    case "attribute":
      _ = try s.patch("/scim/v2/Users/\(a)", [["op": "replace", "path": "loomMemberRole", "value": "viewer"]])
    case "group":
      _ = try s.patch("/scim/v2/Groups/\(admins)", [["op": "remove", "path": "members"]])
    default:
      _ = try s.patch("/scim/v2/Users/\(a)", [["op": "replace", "value": ["active": false]]])
    }
    #expect(try s.member(a)["role"] != "admin" || s.member(a)["status"] == "deactivated")
    #expect(try bypassList().isEmpty, "\(how): only active admins stay on the list")
    let decision = try f.signIn("breakglass@acme.test")
    #expect(decision["allowed"] == false, "\(how): no password sign-in while SSO is enforced")
  }

  @Test func s9DemotionRacingTheBypassUpdateNeverLeavesANonAdminOnTheList() throws {
    try f.rpc.call("sso.configure", ["workspaceId": .string(s.w.id), "connection": ProvisioningFixture.samlConnection, "actor": f.admin(s.w)])
    for round in 0..<20 {
      let a = try f.addMember(s.w, "bg\(round)@acme.test", role: "admin")["memberId"]!.stringValue!
      let errors = Concurrently.run(2) { [self] i in
        let rpc = try f.process.client()
        if i == 0 {
          _ = try? rpc.call("sso.update", ["workspaceId": .string(s.w.id), "bypassMemberIds": [.string(a)], "actor": f.admin(s.w)])
        } else {
          _ = try rpc.call("member.setRole", ["workspaceId": .string(s.w.id), "memberId": .string(a), "role": "creator", "actor": f.admin(s.w)])
        }
      }
      #expect(errors.isEmpty)
      #expect(try !bypassList().contains(a), "round \(round)")
    }
  }

  // MARK: 7. One job and one folder per move (R6)

  @Test func r6ConcurrentMovesMakeOneJobAndOneFolder() throws {
    let mine = try f.workspace("Mine", plan: "business", owner: "owner@acme.test")
    let user = try f.signIn("owner@acme.test")["user"]!["userId"]!.stringValue!
    let ownerInEnterprise = s.w.owner
    for i in 0..<5 {
      try jobs.call("content.create", ["workspaceId": .string(mine.id), "ownerMemberId": .string(mine.owner), "title": .string("v\(i)"), "posted": false])
    }
    let ids = Mutex<[String]>([])
    let errors = Concurrently.run(8) { [self] _ in
      let rpc = try d.client()
      let job = try rpc.call("content.moveToWorkspace", ["userId": .string(user), "fromWorkspaceId": .string(mine.id), "toWorkspaceId": .string(s.w.id)])
      ids.withLock { $0.append(job["jobId"]!.stringValue!) }
    }
    #expect(errors.isEmpty, "\(errors)")
    #expect(Set(ids.withLock { $0 }).count == 1, "one job")
    _ = TestProcess.waitUntil(timeout: 15) {
      (try? self.jobs.call("job.get", ["jobId": .string(ids.withLock { $0[0] })]))?["status"] == "done"
    }
    let again = try jobs.call("content.moveToWorkspace", ["userId": .string(user), "fromWorkspaceId": .string(mine.id), "toWorkspaceId": .string(s.w.id)])
    #expect(again["jobId"]?.stringValue == ids.withLock { $0[0] }, "a repeat after the move is the same job")
    let folders = try jobs.call("folder.list", ["workspaceId": .string(s.w.id), "ownerMemberId": .string(ownerInEnterprise)])["folders"]?.arrayValue ?? []
    #expect(folders.count == 1)
    #expect(folders.first?["contentCount"] == 5)
  }
}
