import Foundation
import JSON
import JSONRPC
import Postgres
import RosterTestSupport
import Testing

/// Actors, bad input, members, the audit log and the event feed.
@Suite(.serialized) final class AdminSafetyTests {
  let f: ProvisioningFixture

  init() throws { f = try ProvisioningFixture() }

  @Test func workspaceShapeAndOwner() throws {
    let w = try f.rpc.call("workspace.create", ["name": "Acme", "plan": "enterprise", "owner": ["email": "Owner@Acme.test", "name": "Olive"]])
    for key in ["workspaceId", "name", "plan", "ownerMemberId", "sso", "deprovisioning"] { #expect(w[key] != nil, "\(key)") }
    #expect(w["deprovisioning"]?["mode"] == "deactivate", "R1 default")
    #expect(w["sso"]?["domainCapture"] == true, "S6 default on")
    #expect(w["sso"]?["enforceSso"] == false, "S2 default off")
    let owner = try f.rpc.call("member.get", ["workspaceId": w["workspaceId"]!, "memberId": w["ownerMemberId"]!])
    #expect(owner["role"] == "admin")
    #expect(owner["email"] == "Owner@acme.test")
    #expect(owner["status"] == "active")
    for key in ["memberId", "workspaceId", "userId", "email", "name", "role", "roleSource", "status", "ssoLinked", "joined"] {
      #expect(owner[key] != nil, "\(key)")
    }
  }

  @Test func actorMustBeAnActiveAdminOfThatWorkspace() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let other = try f.workspace("Other", owner: "o@other.test")
    let creator = try f.addMember(w, "c@acme.test")
    let byCreator = try f.rpc.error("member.add", ["workspaceId": .string(w.id), "email": "x@acme.test", "actor": ["memberId": creator["memberId"]!]])
    #expect(byCreator?.code == -32003)
    let byOtherAdmin = try f.rpc.error("member.add", ["workspaceId": .string(w.id), "email": "x@acme.test", "actor": f.admin(other)])
    #expect(byOtherAdmin?.code == -32003)
    let both = try f.rpc.error("member.add", ["workspaceId": .string(w.id), "email": "x@acme.test", "actor": ["memberId": .string(w.owner), "ops": "x"]])
    #expect(both?.code == -32602)
    #expect(try f.pool.query("SELECT count(*) AS n FROM users WHERE email = 'x@acme.test'").first?["n"] == "0", "nothing written")
  }

  @Test func membersAddListAndRoles() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let jane = try f.addMember(w, "jane@acme.test", role: "viewer")
    #expect(jane["role"] == "viewer")
    #expect(jane["roleSource"] == "manual")
    #expect(try f.rpc.error("member.add", ["workspaceId": .string(w.id), "email": "JANE@acme.test", "actor": f.admin(w)])?.reason == "member_exists")
    for i in 0..<5 { try f.addMember(w, "m\(i)@acme.test") }
    var seen: [String] = []
    var cursor: JSONValue = .null
    repeat {
      var p: [String: JSONValue] = ["workspaceId": .string(w.id), "limit": 3]
      if !cursor.isNull { p["cursor"] = cursor }
      let page = try f.rpc.call("member.list", .object(p))
      seen += (page["members"]?.arrayValue ?? []).compactMap { $0["email"]?.stringValue }
      cursor = page["nextCursor"] ?? .null
    } while !cursor.isNull
    #expect(seen.count == 7)
    #expect(Set(seen).count == 7)
    #expect(try f.rpc.call("member.list", ["workspaceId": .string(w.id), "role": "viewer"])["members"]?.arrayValue?.count == 1)
    #expect(try f.rpc.call("member.list", ["workspaceId": .string(w.id), "email": "JANE@ACME.TEST"])["members"]?.arrayValue?.count == 1)
    let promoted = try f.rpc.call("member.setRole", ["workspaceId": .string(w.id), "memberId": jane["memberId"]!, "role": "admin", "actor": f.admin(w)])
    #expect(promoted["role"] == "admin")
    let changes = try f.events("member.role_changed", workspace: w)
    #expect(changes.last?["data"]?["from"] == "viewer")
    #expect(changes.last?["data"]?["to"] == "admin")
  }

  @Test func theLastAdminCannotBeDemoted() throws {
    let w = try f.workspace(owner: "owner@acme.test")
    let e = try f.rpc.error("member.setRole", ["workspaceId": .string(w.id), "memberId": .string(w.owner), "role": "creator", "actor": f.admin(w)])
    #expect(e?.reason == "last_admin")
  }

  @Test func badInputGetsSpecificErrorsAndWritesNothing() throws {
    let w = try f.workspace()
    let unknown = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    #expect(try f.rpc.error("workspace.get", ["workspaceId": .string(unknown)])?.reason == "workspace_not_found")
    #expect(try f.rpc.error("workspace.get", ["workspaceId": .string(unknown)])?.code == -32001)
    #expect(try f.rpc.error("member.get", ["workspaceId": .string(w.id), "memberId": .string(unknown)])?.code == -32001)
    #expect(try f.rpc.error("workspace.create", ["name": "X", "plan": "platinum", "owner": ["email": "a@b.test"]])?.data?["param"] == "plan")
    #expect(try f.rpc.error("workspace.create", ["name": "X", "plan": "starter"])?.data?["param"] == "owner")
    #expect(try f.rpc.error("workspace.create", ["name": "X", "plan": "starter", "owner": ["email": "nope"]])?.data?["param"] == "owner.email")
    #expect(try f.rpc.error("workspace.create", ["name": "  ", "plan": "starter", "owner": ["email": "a@b.test"]])?.data?["param"] == "name")
    #expect(try f.rpc.error("auth.signIn", ["email": "a@acme.test", "method": "sso"])?.data?["param"] == "workspaceId")
    #expect(try f.rpc.error("auth.signIn", ["email": "a@acme.test", "method": "magic"])?.data?["param"] == "method")
    #expect(try f.rpc.error("auth.signIn", ["email": "a@acme.test", "method": "sso", "workspaceId": .string(w.id)])?.reason == "sso_not_configured")
    #expect(try f.rpc.error("events.list", ["after": "yesterday"])?.reason == "invalid_cursor")
    #expect(try f.pool.query("SELECT count(*) AS n FROM workspaces").first?["n"] == "1")
  }

  @Test func eventsHaveIncreasingCursorsAndPage() throws {
    let w = try f.workspace()
    for i in 0..<5 { try f.addMember(w, "e\(i)@acme.test") }
    f.waitForFeed()
    var cursor: JSONValue = .null
    var cursors: [[UInt64]] = []
    var pages = 0
    while true {
      var p: [String: JSONValue] = ["limit": 2, "workspaceId": .string(w.id)]
      if !cursor.isNull { p["after"] = cursor }
      let page = try f.rpc.call("events.list", .object(p))
      let events = page["events"]?.arrayValue ?? []
      cursors += events.compactMap { $0["cursor"]?.stringValue?.split(separator: "-").compactMap { UInt64($0) } }
      let next = try #require(page["nextCursor"]?.stringValue, "the feed's nextCursor is never null")
      if events.isEmpty {
        #expect(next == cursor.stringValue, "caught up: the cursor it was given")
        break
      }
      cursor = .string(next)
      pages += 1
    }
    #expect(pages == 3)
    #expect(cursors.count == 6)
    #expect(cursors == cursors.sorted { $0.lexicographicallyPrecedes($1) })
    #expect(Set(cursors).count == cursors.count)
  }

  /// A follower that always passes nextCursor back never sees an event twice;
  /// "now" starts at the tail; a missing 'after' starts at the oldest event.
  @Test func theFeedIsFollowedWithNextCursorAndNeverReplays() throws {
    let w = try f.workspace()
    try f.addMember(w, "a@acme.test")
    f.waitForFeed()
    let all = try f.rpc.call("events.list", ["limit": 1000])
    let first = try #require(all["nextCursor"]?.stringValue)
    #expect((all["events"]?.arrayValue ?? []).count == 2, "from the oldest kept event")
    let again = try f.rpc.call("events.list", ["after": .string(first)])
    #expect(again["events"] == [])
    #expect(again["nextCursor"] == .string(first), "nothing new: the same cursor, not null")
    let now = try f.rpc.call("events.list", ["after": "now"])
    #expect(now["events"] == [])
    #expect(now["nextCursor"] == .string(first), "the tail")
    // Another workspace's events move a filtered follower's cursor on without showing them.
    let other = try f.workspace("Other", owner: "o@other.test")
    f.waitForFeed()
    let filtered = try f.rpc.call("events.list", ["after": .string(first), "workspaceId": .string(w.id)])
    #expect(filtered["events"] == [])
    let moved = try #require(filtered["nextCursor"]?.stringValue)
    #expect(moved != first)
    try f.addMember(w, "b@acme.test")
    _ = other
    f.waitForFeed()
    let next = try f.rpc.call("events.list", ["after": .string(moved), "workspaceId": .string(w.id)])
    #expect((next["events"]?.arrayValue ?? []).compactMap { $0["type"]?.stringValue } == ["member.created"])
    #expect(try f.rpc.call("events.list", ["after": next["nextCursor"]!])["events"] == [], "no replay")
  }

  @Test func everyMutationIsAudited() throws {
    let w = try f.workspace()
    try f.addMember(w, "a@acme.test")
    try f.rpc.call("workspace.setPlan", ["workspaceId": .string(w.id), "plan": "business", "actor": f.ops])
    let entries = try f.rpc.call("audit.list", ["workspaceId": .string(w.id)])["entries"]?.arrayValue ?? []
    #expect(entries.map { $0["action"]?.stringValue ?? "" } == ["workspace.create", "member.add", "workspace.set_plan"])
    #expect(entries[2]["actor"]?["ops"] == "alice")
    #expect(entries[2]["before"]?["plan"] == "enterprise")
  }
}
