import Foundation
import JSON
import JSONRPC
import Postgres
import RosterApp
import RosterTestSupport
import SCIM
import Sockets
import Synchronization
import Testing

/// A subscriber on a provisioning socket: the subscribe line, its reply,
/// then notification lines as the process pushes them.
final class TestSubscriber: @unchecked Sendable {
  let client: LineClient
  let reply: JSONValue

  init(socket: String, _ params: JSONValue = [:], timeout: Double = 10) throws {
    client = try LineClient(unixPath: socket, timeoutSeconds: timeout)
    try client.send(JSONWriter.bytes(["jsonrpc": "2.0", "id": 1, "method": "events.subscribe", "params": params]) + [0x0A])
    guard let line = try client.readLine() else { throw TestError("no reply to events.subscribe") }
    reply = try JSONParser.parse(line)
  }

  var cursor: String? { reply["result"]?["cursor"]?.stringValue }

  /// The next notification (nil at end of input or after the timeout).
  func next() -> JSONValue? {
    guard let line = try? client.readLine() else { return nil }
    return try? JSONParser.parse(line)
  }

  /// Events until `count` arrived (or the timeout between two ran out).
  func events(_ count: Int) -> [JSONValue] {
    var out: [JSONValue] = []
    while out.count < count, let n = next() {
      if n["method"] == "events.event", let e = n["params"] { out.append(e) }
    }
    return out
  }
}

/// E1: events.subscribe pushes what events.list returns, as it commits.
@Suite(.serialized) final class EventSubscribeTests: @unchecked Sendable {
  let f: ProvisioningFixture

  init() throws { f = try ProvisioningFixture(environment: ["ROSTER_EVENTS_BACKLOG": "50"]) }

  var socket: String { f.process.socketPath }

  func list(after: String, workspace: String? = nil) throws -> [JSONValue] {
    f.waitForFeed()
    var all: [JSONValue] = []
    var cursor = after
    while true {
      var p: [String: JSONValue] = ["after": .string(cursor), "limit": 500]
      if let workspace { p["workspaceId"] = .string(workspace) }
      let page = try f.rpc.call("events.list", .object(p))
      let events = page["events"]?.arrayValue ?? []
      all += events
      cursor = page["nextCursor"]!.stringValue!
      if events.isEmpty { return all }
    }
  }

  @Test func e1EventsArePushedAsTheyCommitWithTheCursorsOfEventsList() throws {
    let w = try f.workspace()
    // "now" is after what the feed shows: wait until it shows the workspace's
    // own events (a long transaction elsewhere in the cluster holds them back).
    f.waitForFeed()
    let sub = try TestSubscriber(socket: socket)
    let start = try #require(sub.cursor, "\(sub.reply)")
    // socat half-closes once its input ends: the stream goes on.
    let halfClosed = try TestSubscriber(socket: socket)
    halfClosed.client.finishSending()
    let started = Date()
    try f.addMember(w, "jane@acme.test")
    let first = sub.events(1)
    #expect(halfClosed.events(1) == first)
    #expect(first.first?["type"] == "member.created")
    #expect(Date().timeIntervalSince(started) < 2, "pushed, not polled")
    for i in 0..<5 { try f.addMember(w, "m\(i)@acme.test") }
    let pushed = first + sub.events(5)
    let listed = try list(after: start)
    #expect(pushed.compactMap { $0["cursor"]?.stringValue } == listed.compactMap { $0["cursor"]?.stringValue })
    #expect(pushed == listed, "the same events, byte for byte")
    // Not over a socket: refused, with the reason.
    #expect(f.process.host.dispatcher.call("events.subscribe", [:], context: CallContext()).failureReason == "socket_required")
    #expect(try f.rpc.error("events.subscribe", ["after": "yesterday"])?.reason == "invalid_cursor")
  }

  @Test func e1ConcurrentWritersArriveInFeedOrderWithoutGapsOrRepeats() throws {
    let w = try f.workspace()
    // "now" is after what the feed shows: wait until it shows the workspace's
    // own events (a long transaction elsewhere in the cluster holds them back).
    f.waitForFeed()
    let sub = try TestSubscriber(socket: socket)
    let start = try #require(sub.cursor)
    let s = try SCIMFixture(f, name: "Beta", owner: "o@beta.test")
    let errors = Concurrently.run(8) { [self] i in
      let rpc = try f.process.client()
      for j in 0..<10 { _ = try rpc.call("member.add", ["workspaceId": .string(w.id), "email": .string("w\(i)-\(j)@acme.test"), "actor": f.admin(w)]) }
    }
    #expect(errors.isEmpty)
    let users = try (0..<5).map { try s.createUser("u\($0)@beta.test")["id"]!.stringValue! }
    for u in users { _ = try s.http.request("PATCH", "/scim/v2/Users/\(u)", json: ["schemas": [.string(URN.patchOp)], "Operations": [["op": "replace", "value": ["active": false]]]]) }
    let listed = try list(after: start)
    #expect(listed.count >= 80 + 2 + 5 + 5)
    let pushed = sub.events(listed.count)
    #expect(pushed.compactMap { $0["cursor"]?.stringValue } == listed.compactMap { $0["cursor"]?.stringValue })
  }

  @Test func e1ResumingFromTheLastCursorMissesNothingAndRepeatsNothing() throws {
    let w = try f.workspace()
    f.waitForFeed()  // as above: start after the workspace's own events
    var sub: TestSubscriber? = try TestSubscriber(socket: socket)
    let start = try #require(sub?.cursor)
    for i in 0..<3 { try f.addMember(w, "a\(i)@acme.test") }
    let firstPart = sub!.events(3)
    let last = try #require(firstPart.last?["cursor"]?.stringValue)
    sub = nil  // disconnect: nothing of it stays in the process
    #expect(TestProcess.waitUntil(timeout: 5) {
      ((try? self.f.rpc.call("system.metrics")["text"]?.stringValue) ?? nil)?.contains("\nroster_event_subscribers 0") == true
    })
    for i in 0..<4 { try f.addMember(w, "b\(i)@acme.test") }
    let resumed = try TestSubscriber(socket: socket, ["after": .string(last)])
    #expect(resumed.cursor == last)
    let secondPart = resumed.events(4)
    let listed = try list(after: start)
    #expect((firstPart + secondPart).compactMap { $0["cursor"]?.stringValue } == listed.compactMap { $0["cursor"]?.stringValue })
    // From the beginning ("0"), everything again.
    let everything = try TestSubscriber(socket: socket, ["after": "0"])
    #expect(everything.events(listed.count + 1).count == listed.count + 1, "the workspace's owner event as well")
  }

  @Test func e1FiltersByWorkspaceAndType() throws {
    let a = try f.workspace("A", owner: "o@a.test")
    let b = try f.workspace("B", owner: "o@b.test")
    let onlyB = try TestSubscriber(socket: socket, ["workspaceId": .string(b.id)])
    let roles = try TestSubscriber(socket: socket, ["types": ["member.role_changed"]])
    let janeA = try f.addMember(a, "jane@a.test")["memberId"]!
    try f.addMember(b, "jim@b.test")
    _ = try f.rpc.call("member.setRole", ["workspaceId": .string(a.id), "memberId": janeA, "role": "viewer", "actor": f.admin(a)])
    let fromB = onlyB.events(1)
    #expect(fromB.count == 1 && fromB.first?["workspaceId"] == .string(b.id))
    let changed = roles.events(1)
    #expect(changed.first?["type"] == "member.role_changed" && changed.first?["memberId"] == janeA)
  }

  /// A subscriber that never reads is cut off once more than the backlog
  /// (50 here) waits beyond its socket; it finds events.closed when it
  /// reads at last; the process and a reading subscriber are unharmed.
  @Test func e1ASubscriberThatNeverReadsIsDisconnectedAndNobodyElseSuffers() throws {
    let w = try f.workspace()
    f.waitForFeed()  // start after the workspace's own events
    let stalled = try TestSubscriber(socket: socket, timeout: 30)
    let reader = try TestSubscriber(socket: socket)
    let start = try #require(reader.cursor)
    let made = 1000
    // The reading subscriber reads all along, on its own thread.
    let got = Mutex<[JSONValue]>([])
    let readerDone = DispatchSemaphore(value: 0)
    let readerThread = Thread {
      while got.withLock({ $0.count }) < made, let n = reader.next() {
        if n["method"] == "events.event", let e = n["params"] { got.withLock { $0.append(e) } }
      }
      readerDone.signal()
    }
    readerThread.start()
    // ~300 bytes an event: a few hundred fill the 128 KiB window, then the backlog.
    for batch in 0..<10 {
      let calls: [JSONValue] = (0..<100).map { i in
        ["jsonrpc": "2.0", "id": .int(Int64(i)), "method": "member.add",
         "params": ["workspaceId": .string(w.id), "email": .string("x\(batch)-\(i)@acme.test"), "actor": f.admin(w)]]
      }
      try f.rpc.client.send(JSONWriter.bytes(.array(calls)) + [0x0A])
      _ = try f.rpc.client.readLine()
    }
    readerDone.wait()
    #expect(got.withLock { $0.count } == made, "the reading subscriber has everything")
    // The stalled one is disconnected within a few seconds of passing the bound.
    let ended = TestProcess.waitUntil(timeout: 15) {
      ((try? self.f.rpc.call("system.metrics")["text"]?.stringValue) ?? nil)?.contains("roster_event_subscriptions_ended_total{reason=\"backlog_exceeded\"} 1") == true
    }
    #expect(ended)
    #expect(try f.rpc.call("system.health")["status"] == "ok")
    // Reading now: events, then the notice with where to resume, then the end.
    var seen: [String] = []
    var closing: JSONValue?
    while let n = stalled.next() {
      if n["method"] == "events.event" { seen.append(n["params"]!["cursor"]!.stringValue!) } else { closing = n }
    }
    #expect(closing?["method"] == "events.closed")
    #expect(closing?["params"]?["reason"] == "backlog_exceeded")
    let resumeAt = try #require(closing?["params"]?["cursor"]?.stringValue)
    #expect(resumeAt == seen.last, "the cursor of the last event it was sent")
    #expect(seen.count < made)
    let rest = try TestSubscriber(socket: socket, ["after": .string(resumeAt)])
    let remaining = rest.events(made - seen.count)
    let listed = try list(after: start)
    #expect(listed.count == made && remaining.count == made - seen.count, "seen \(seen.count), remaining \(remaining.count), listed \(listed.count), resume at \(resumeAt), first remaining \(remaining.first?["cursor"] ?? .null)")
    #expect((seen + remaining.compactMap { $0["cursor"]?.stringValue }) == listed.compactMap { $0["cursor"]?.stringValue }, "resuming loses nothing")
  }

  /// A process that stops tells its subscribers where to resume, at once.
  @Test func e1AStoppingProcessClosesItsSubscriptionsWithTheResumeCursor() throws {
    let other = try RunningProcess("provisioning", database: f.database)
    let sub = try TestSubscriber(socket: other.socketPath)
    let w = try f.workspace()
    let got = sub.events(1)
    #expect(got.count == 1)
    let t0 = Date()
    other.stop()
    #expect(Date().timeIntervalSince(t0) < 5, "not held up by the open subscription")
    let closing = sub.next()
    #expect(closing?["method"] == "events.closed")
    #expect(closing?["params"]?["reason"] == "shutting_down")
    #expect(closing?["params"]?["cursor"] == got.first?["cursor"])
    _ = w
  }

  /// Events from any copy of the provisioning process, and from the
  /// deprovisioning process, reach subscribers of every copy.
  @Test func e1EverySubscriberHearsEveryProcess() throws {
    let second = try RunningProcess("provisioning", database: f.database)
    defer { second.stop() }
    var o = Services.Options()
    o.deprovisioning.pollSeconds = 60
    let jobs = try RunningProcess("deprovisioning", database: f.database, options: o)
    defer { jobs.stop() }
    let w = try f.workspace()
    f.waitForFeed()  // start after the workspace's own events
    let onFirst = try TestSubscriber(socket: socket)
    let onSecond = try TestSubscriber(socket: second.socketPath)
    try f.addMember(w, "one@acme.test")
    let jane = try second.client().call("member.add", ["workspaceId": .string(w.id), "email": "two@acme.test", "actor": f.admin(w)])
    _ = try jobs.client().call("deprovision.configure", ["workspaceId": .string(w.id), "mode": "delete", "content": "delete", "actor": f.admin(w)])
    _ = try jobs.client().call("deprovision.member", ["workspaceId": .string(w.id), "memberId": jane["memberId"]!, "actor": f.admin(w)])
    let expected = ["member.created", "member.created", "member.sessions_revoked", "member.deactivated", "member.deleted"]
    let a = onFirst.events(5)
    let b = onSecond.events(5)
    #expect(a.compactMap { $0["type"]?.stringValue } == expected, "\(a)")
    #expect(a == b)
  }
}

extension Result where Failure == RPCError {
  var failureReason: String? { if case .failure(let e) = self { return e.reason } else { return nil } }
}
