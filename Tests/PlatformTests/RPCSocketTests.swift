import Foundation
import JSON
import JSONRPC
import RosterTestSupport
import Sockets
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// JSON-RPC over the real Unix socket of a running process, against a real
/// PostgreSQL: framing, limits and bad input, after each of which the
/// process must still answer system.health.
@Suite(.serialized) final class RPCSocketTests {
  let process: RunningProcess

  init() throws {
    process = try RunningProcess("provisioning", database: try TestPostgres.shared.freshDatabase())
  }

  deinit { process.stop() }

  func assertHealthy() throws {
    let health = try process.client().call("system.health")
    #expect(health["status"] == "ok")
    #expect(health["process"] == "provisioning")
    #expect(health["database"] == "ok")
    #expect(health["version"]?.stringValue != nil)
  }

  @Test func healthOverSocat() throws {
    let out = try TestProcess.run([
      "sh", "-c", "echo '{\"jsonrpc\":\"2.0\",\"method\":\"system.health\",\"id\":1}' | socat -t 5 - UNIX-CONNECT:\(process.socketPath)",
    ])
    let reply = try JSONParser.parse(out.trimmingCharacters(in: .whitespacesAndNewlines))
    #expect(reply["id"] == 1)
    #expect(reply["result"]?["status"] == "ok")
  }

  @Test func socketAndDirectoryPermissions() throws {
    var st = stat()
    #expect(stat(process.socketPath, &st) == 0)
    #expect(st.st_mode & 0o777 == 0o660)
    #expect((st.st_mode & S_IFMT) == S_IFSOCK)
  }

  @Test func manyRequestsOnOneConnectionAndALastLineWithoutNewline() throws {
    let c = try process.client()
    var text = ""
    for i in 1...50 { text += "{\"jsonrpc\":\"2.0\",\"method\":\"system.health\",\"id\":\(i)}\n" }
    text += "{\"jsonrpc\":\"2.0\",\"method\":\"system.health\",\"id\":\"last\"}"
    try c.client.send(Array(text.utf8))
    c.client.finishSending()
    var ids: [JSONValue] = []
    while let line = try c.client.readLine() { ids.append(try JSONParser.parse(line)["id"] ?? .null) }
    #expect(ids.count == 51)
    #expect(ids.last == "last")
  }

  @Test func invalidUTF8GetsAParseError() throws {
    let c = try process.client()
    let reply = try c.raw([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D, 0x0A])
    #expect(reply?["error"]?["code"] == -32700)
    #expect(reply?["id"] == .null)
    try assertHealthy()
  }

  @Test func truncatedLineGetsAParseError() throws {
    let c = try process.client()
    let reply = try c.raw("{\"jsonrpc\":\"2.0\",\"method\":\"system.hea\n")
    #expect(reply?["error"]?["code"] == -32700)
    // The same connection keeps working.
    #expect(try c.call("system.health")["status"] == "ok")
  }

  @Test func twoMiBLineIsRefusedAndTheConnectionGoesOn() throws {
    let c = try process.client()
    let big = "{\"jsonrpc\":\"2.0\",\"method\":\"system.health\",\"id\":1,\"params\":{\"x\":\"" + String(repeating: "a", count: 2 << 20) + "\"}}\n"
    let reply = try c.raw(big)
    #expect(reply?["error"]?["code"] == -32600)
    #expect(reply?["error"]?["data"]?["reason"] == "line_too_long")
    #expect(try c.call("system.health")["status"] == "ok")
    try assertHealthy()
  }

  @Test func thousandDeepNestingIsRefused() throws {
    let c = try process.client()
    let deep = "{\"jsonrpc\":\"2.0\",\"method\":\"system.health\",\"id\":1,\"params\":" + String(repeating: "[", count: 1000)
      + String(repeating: "]", count: 1000) + "}\n"
    let reply = try c.raw(deep)
    #expect(reply?["error"]?["code"] == -32700)
    #expect(reply?["error"]?["message"]?.stringValue?.contains("64") == true)
    try assertHealthy()
  }

  @Test func batchOf101IsRefused() throws {
    let c = try process.client()
    let entries = Array(repeating: "{\"jsonrpc\":\"2.0\",\"method\":\"system.health\",\"id\":1}", count: 101).joined(separator: ",")
    let reply = try c.raw("[\(entries)]\n")
    #expect(reply?["error"]?["data"]?["reason"] == "batch_too_large")
    let ok = Array(repeating: "{\"jsonrpc\":\"2.0\",\"method\":\"system.health\",\"id\":1}", count: 100).joined(separator: ",")
    #expect(try c.raw("[\(ok)]\n")?.arrayValue?.count == 100)
    try assertHealthy()
  }

  @Test func clientThatDisconnectsMidRequest() throws {
    for _ in 0..<20 {
      let c = try LineClient(unixPath: process.socketPath)
      try c.send(Array("{\"jsonrpc\":\"2.0\",\"method\":\"system.".utf8))
      _ = c  // closed when released, half a request sent
    }
    for _ in 0..<20 {
      let c = try LineClient(unixPath: process.socketPath)
      try c.send(Array("{\"jsonrpc\":\"2.0\",\"method\":\"system.health\",\"id\":1}\n".utf8))
      // gone before reading the reply
    }
    try assertHealthy()
  }

  @Test func clientThatNeverReadsDoesNotStallOthers() throws {
    let hog = try LineClient(unixPath: process.socketPath, timeoutSeconds: 2)
    // Write requests for as long as the server accepts them, never reading replies.
    let batch = "[" + Array(repeating: "{\"jsonrpc\":\"2.0\",\"method\":\"rpc.discover\",\"id\":1}", count: 100).joined(separator: ",") + "]\n"
    let line = Array(batch.utf8)
    for _ in 0..<200 {
      do { try hog.send(line) } catch { break }
    }
    let started = Date()
    try assertHealthy()
    #expect(Date().timeIntervalSince(started) < 2)
  }

  @Test func peerCredentialsReachTheHandlers() throws {
    process.host.dispatcher.register(
      MethodSpec("test.whoami", summary: "") { _, ctx in
        ["uid": .int(Int64(ctx.peerUID ?? 999_999)), "pid": .int(Int64(ctx.peerPID ?? 0))]
      })
    let me = try process.client().call("test.whoami")
    #expect(me["uid"] == .int(Int64(getuid())))
    #expect(me["pid"] == .int(Int64(getpid())))
  }

  @Test func discoverListsTheSystemMethods() throws {
    let doc = try process.client().call("rpc.discover")
    let names = (doc["methods"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
    #expect(names.contains("system.health"))
    #expect(names.contains("system.metrics"))
  }

  @Test func metricsAreInPrometheusFormat() throws {
    let c = try process.client()
    _ = try c.call("system.health")
    let text = try c.call("system.metrics")["text"]?.stringValue ?? ""
    #expect(text.contains("# TYPE roster_rpc_requests_total counter"))
    #expect(text.contains("roster_rpc_requests_total{method=\"system.health\",outcome=\"ok\"}"))
    #expect(text.contains("roster_rpc_request_duration_seconds_bucket{method=\"system.health\",le=\"+Inf\"}"))
    #expect(text.contains("roster_database_up 1"))
  }
}

@Suite struct SocketLifecycleTests {
  @Test func staleSocketIsReplacedLiveOneAndFilesAreRefused() throws {
    let dir = try TestFiles.makeTempDirectory(prefix: "roster-sock")
    let path = dir + "/x.sock"
    // A stale socket (bound, then its process gone) is replaced.
    let first = try Listener.bind(.unix(path))
    Glibc.close(first.fd)  // the file stays: like a crashed process
    let second = try Listener.bind(.unix(path))
    // A live one is refused.
    #expect(throws: SocketError.self) { try Listener.bind(.unix(path)) }
    second.close()
    // A regular file is never replaced.
    _ = FileManager.default.createFile(atPath: path, contents: Data("keep".utf8))
    #expect(throws: SocketError.self) { try Listener.bind(.unix(path)) }
    #expect(FileManager.default.contents(atPath: path) == Data("keep".utf8))
    // Too long a path is refused up front.
    #expect(throws: SocketError.self) { try Listener.bind(.unix(dir + "/" + String(repeating: "x", count: 120))) }
  }

  @Test func runDirectoryIsCreated0750AndSocketRemovedOnStop() throws {
    let base = try TestFiles.makeTempDirectory(prefix: "roster-rd")
    let p = try RunningProcess("notifications", database: try TestPostgres.shared.freshDatabase(), runDir: base + "/run")
    var st = stat()
    #expect(stat(base + "/run", &st) == 0)
    #expect(st.st_mode & 0o777 == 0o750)
    #expect(FileManager.default.fileExists(atPath: p.socketPath))
    p.stop()
    #expect(!FileManager.default.fileExists(atPath: p.socketPath))
  }

  @Test func connectionCapRefusesOnlyWhenEveryConnectionIsWorking() throws {
    let p = try RunningProcess(
      "deprovisioning", database: try TestPostgres.shared.freshDatabase(), environment: ["ROSTER_MAX_CONNECTIONS": "2"])
    defer { p.stop() }
    p.host.dispatcher.register(MethodSpec("test.sleep", summary: "") { _, _ in usleep(800_000); return "slept" })
    // Both connections working on a request: a third is refused with a clear error.
    let a = try p.client()
    let b = try p.client()
    for c in [a, b] { try c.client.send(Array("{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"id\":1}\n".utf8)) }
    usleep(200_000)
    let c = try LineClient(unixPath: p.socketPath)
    let reply = try JSONParser.parse(try #require(try c.readLine()))
    #expect(reply["error"]?["data"]?["reason"] == "too_many_connections")
    for x in [a, b] { #expect(try JSONParser.parse(try #require(try x.client.readLine()))["result"] == "slept") }
    // Both idle: a newcomer is served and the longest idle one is closed for it.
    // (Activity is kept in milliseconds: let b's next request be clearly later
    // than a's last reply, or the two can tie.)
    usleep(20_000)
    _ = try b.call("system.health")
    let d = try p.client()
    #expect(try d.call("system.health")["status"] == "ok")
    #expect(try a.client.readLine() == nil)
    #expect(try b.call("system.health")["status"] == "ok")
  }

  @Test func gracefulStopFinishesRequestsInFlight() throws {
    let p = try RunningProcess("provisioning", database: try TestPostgres.shared.freshDatabase())
    p.host.dispatcher.register(
      MethodSpec("test.slow", summary: "") { _, _ in
        usleep(400_000)
        return "finished"
      })
    let c = try p.client()
    try c.client.send(Array("{\"jsonrpc\":\"2.0\",\"method\":\"test.slow\",\"id\":7}\n".utf8))
    usleep(100_000)
    let stopper = Thread { p.stop() }
    stopper.start()
    let line = try #require(try c.client.readLine())
    #expect(try JSONParser.parse(line)["result"] == "finished")
    #expect(TestProcess.waitUntil { !FileManager.default.fileExists(atPath: p.socketPath) })
  }
}
