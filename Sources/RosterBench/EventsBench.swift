import Foundation
import JSON
import LoadDriver
import Sockets
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// How soon the app hears of a deactivation: from a SCIM PATCH active:false
/// answering 200 to the subscriber holding member.deactivated
/// (events.subscribe), with 1 and 20 subscribers, against a 1 s polling
/// loop; and how many events/s one subscriber takes while SCIM creates run.
enum EventsBench {
  /// A subscriber reading on its own thread; `arrived` maps a member id to when its event came.
  final class Inbox: Sendable {
    let arrived = Mutex<[String: Double]>([:])
    let count = Atomic<Int>(0)
  }

  final class Subscriber: @unchecked Sendable {
    let client: LineClient
    let inbox = Inbox()
    let thread: Thread

    init(socket: String, params: JSONValue) throws {
      let client = try LineClient(unixPath: socket, timeoutSeconds: 3600)
      self.client = client
      try client.send(JSONWriter.bytes(["jsonrpc": "2.0", "id": 1, "method": "events.subscribe", "params": params]) + [0x0A])
      guard let line = try client.readLine(), (try JSONParser.parse(line))["result"] != nil else { throw BenchError("events.subscribe failed") }
      let inbox = self.inbox
      let box = UncheckedBox(client)
      thread = Thread {
        while let line = try? box.value.readLine() {
          let t = now()
          guard let n = try? JSONParser.parse(line), let member = n["params"]?["memberId"]?.stringValue else { continue }
          inbox.count.add(1, ordering: .relaxed)
          inbox.arrived.withLock { $0[member] = t }
        }
      }
      thread.start()
    }

    var arrived: [String: Double] { inbox.arrived.withLock { $0 } }
    func arrival(_ member: String) -> Double? { inbox.arrived.withLock { $0[member] } }
    var count: Int { inbox.count.load(ordering: .relaxed) }

    func close() { client.finishSending() }
  }

  static func patchOff(_ http: HTTPClient, _ id: String) throws {
    let body = JSONWriter.bytes([
      "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [["op": "replace", "value": ["active": false]]],
    ])
    let (status, reply) = try http.request("PATCH", "/scim/v2/Users/\(id)", body: body)
    if status != 200 { throw BenchError("PATCH → \(status) \(String(decoding: reply, as: UTF8.self))") }
  }

  static func createUsers(_ http: HTTPClient, _ count: Int, tag: String) throws -> [String] {
    try (0..<count).map { i in
      let (status, body) = try http.request("POST", "/scim/v2/Users", body: SCIMBench.userBody("e\(i)-\(tag)@events.bench"))
      guard status == 201, let id = (try JSONParser.parse(body))["id"]?.stringValue else { throw BenchError("POST /Users → \(status)") }
      return id
    }
  }

  static func run(rpcSocket: String, scimSocket: String, samples: Int, seconds: Double) throws {
    let (wid, token) = try SCIMBench.directory(rpcSocket: rpcSocket, name: "events\(getpid())")
    let http = try HTTPClient(unix: scimSocket, token: token)
    var rows: [[String]] = []
    let filter: JSONValue = ["workspaceId": .string(wid), "types": ["member.deactivated"]]

    for subscribers in [1, 20] {
      let subs = try (0..<subscribers).map { _ in try Subscriber(socket: rpcSocket, params: filter) }
      let users = try createUsers(http, samples, tag: "s\(subscribers)-\(getpid())")
      var fromOK = Samples()
      var fromSend = Samples()
      var early = 0
      for id in users {
        let t0 = now()
        try patchOff(http, id)
        let t1 = now()
        // Wait until every subscriber holds this member's event (at most 5 s).
        let deadline = t1 + 5
        var times: [Double] = []
        while now() < deadline {
          times = subs.compactMap { s in s.arrival(id) }
          if times.count == subs.count { break }
          usleep(200)
        }
        guard times.count == subs.count else { throw BenchError("a subscriber did not get member.deactivated within 5 s") }
        for t in times {
          if t < t1 { early += 1 }
          fromOK.add(max(0, t - t1) * 1000)
          fromSend.add((t - t0) * 1000)
        }
        usleep(2000)
      }
      for s in subs { s.close() }
      rows.append([
        "events.subscribe, \(subscribers) subscriber\(subscribers == 1 ? "" : "s")", "\(fromOK.values.count)", fmt(fromOK.percentile(50), 2),
        fmt(fromOK.percentile(99), 2), fmt(fromSend.percentile(50), 2), fmt(fromSend.percentile(99), 2), "\(early)",
      ])
    }

    // The comparison: events.list every second, as a polling app would.
    do {
      let users = try createUsers(http, 20, tag: "poll-\(getpid())")
      let rpc = try LineClientBox(rpcSocket)
      func page(_ after: String) throws -> JSONValue {
        try rpc.roundTrip(
          JSONWriter.bytes([
            "jsonrpc": "2.0", "id": 1, "method": "events.list",
            "params": ["after": .string(after), "workspaceId": .string(wid), "limit": 1000],
          ]) + [0x0A])["result"] ?? .null
      }
      let start = try page("now")["nextCursor"]?.stringValue ?? "0"
      let seen = Mutex<[String: Double]>([:])
      let stop = Atomic<Bool>(false)
      let box = UncheckedBox(rpc)
      let poller = Thread {
        var cursor = start
        while !stop.load(ordering: .relaxed) {
          let t0 = now()
          if let p = try? box.value.roundTrip(
            JSONWriter.bytes([
              "jsonrpc": "2.0", "id": 1, "method": "events.list", "params": ["after": .string(cursor), "workspaceId": .string(wid), "limit": 1000],
            ]) + [0x0A])["result"]
          {
            let t = now()
            for e in p["events"]?.arrayValue ?? [] where e["type"] == "member.deactivated" {
              if let m = e["memberId"]?.stringValue { seen.withLock { $0[m] = t } }
            }
            cursor = p["nextCursor"]?.stringValue ?? cursor
          }
          let left = 1.0 - (now() - t0)
          if left > 0 { usleep(UInt32(left * 1e6)) }
        }
      }
      poller.start()
      var polled = Samples()
      for id in users {
        usleep(UInt32.random(in: 100_000...900_000))
        try patchOff(http, id)
        let t1 = now()
        let deadline = t1 + 5
        while now() < deadline, seen.withLock({ $0[id] }) == nil { usleep(1000) }
        if let t = seen.withLock({ $0[id] }) { polled.add(max(0, t - t1) * 1000) }
      }
      stop.store(true, ordering: .relaxed)
      rows.append(["events.list polled every 1 s", "\(polled.values.count)", fmt(polled.percentile(50), 1), fmt(polled.percentile(99), 1), "–", "–", "–"])
    }
    table(["feed", "samples", "p50 ms after the 200", "p99 ms after the 200", "p50 ms after sending", "p99 ms after sending", "arrived before the 200"], rows)

    // Throughput: one subscriber while 8 SCIM clients create users.
    print()
    let all = try Subscriber(socket: rpcSocket, params: ["workspaceId": .string(wid), "types": ["member.created"]])
    let counter = Counter()
    let created = Counter()
    let tag = "load-\(getpid())"
    let (rps, _) = closedLoop(clients: 8, seconds: seconds) {
      let c = try HTTPClient(unix: scimSocket, token: token)
      return {
        let (status, _) = try c.request("POST", "/scim/v2/Users", body: SCIMBench.userBody("l\(counter.next())-\(tag)@events.bench"))
        if status != 201 { throw BenchError("POST /Users → \(status)") }
        _ = created.next()
      }
    }
    let atEnd = all.count
    let drainStart = now()
    let written = created.current
    while all.count < written, now() - drainStart < 30 { usleep(1000) }
    let drained = now() - drainStart
    let received = all.count
    all.close()
    table(
      ["load", "events written/s", "events received/s by one subscriber", "received when the load stopped", "caught up after"],
      [["8 SCIM clients creating users, \(fmt(seconds, 0)) s", fmt(rps, 0), fmt(Double(atEnd) / seconds, 0), "\(atEnd) of \(written)", "\(fmt(drained * 1000, 0)) ms (\(received) events)"]])
  }
}
