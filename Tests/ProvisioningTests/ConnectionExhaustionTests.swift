import Foundation
import JSON
import JSONRPC
import RosterTestSupport
import Sockets
import Synchronization
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Connection exhaustion: idle and byte-at-a-time (slowloris) clients beyond
/// the cap on provisioning.sock and on the SCIM listener. The limits under
/// test: ROSTER_MAX_CONNECTIONS (at the cap a newcomer replaces the half-sent
/// or longest-idle connection; one working on a request is never replaced)
/// and ROSTER_REQUEST_TIMEOUT (a line or HTTP headers must arrive within it of
/// their first byte).
@Suite(.serialized) final class ConnectionExhaustionTests: @unchecked Sendable {
  let f: ProvisioningFixture
  let scim: SCIMFixture

  init() throws {
    f = try ProvisioningFixture(environment: ["ROSTER_MAX_CONNECTIONS": "64", "ROSTER_REQUEST_TIMEOUT": "2"])
    scim = try SCIMFixture(f)
  }

  /// Opens `count` connections: half send nothing, half send `slowPrefix`
  /// one byte at a time (a background thread drips a byte into each every
  /// 100 ms until `stop`).
  final class Attack: @unchecked Sendable {
    var fds: [Int32] = []
    let stopped = Atomic<Bool>(false)
    let done = DispatchSemaphore(value: 0)

    init(path: String, count: Int, slowPrefix: [UInt8]) throws {
      for _ in 0..<count { fds.append(try SocketCalls.connectUnix(path)) }
      let slow = Array(fds[(count / 2)...])
      let t = Thread { [self] in
        var i = 0
        while !self.stopped.load(ordering: .relaxed) {
          for fd in slow { _ = slowPrefix.withUnsafeBytes { send(fd, $0.baseAddress! + (i % slowPrefix.count), 1, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) } }
          i += 1
          usleep(100_000)
        }
        self.done.signal()
      }
      t.start()
    }

    func stop() {
      stopped.store(true, ordering: .relaxed)
      done.wait()
      for fd in fds { close(fd) }
    }
  }

  /// Ten well-behaved clients one after another, each served within a
  /// second (`request` makes one and checks its answer); the slowest, in s.
  static func tenNewClientsServed(_ what: String, _ request: () throws -> Void) rethrows -> Double {
    var slowest = 0.0
    for _ in 0..<10 {
      let took = try seconds(request)
      slowest = max(slowest, took)
      #expect(took < 1, "a new \(what) client took \(took) s")
    }
    return slowest
  }

  static func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
  }

  @Test func thousandIdleAndSlowClientsOnTheRPCSocketDoNotKeepANewClientOut() async throws { try await OwnThread.run { try MachineHogs.exclusively { try self.thousandIdleAndSlowClientsOnTheRPCSocketDoNotKeepANewClientOutBlocking() } } }

  func thousandIdleAndSlowClientsOnTheRPCSocketDoNotKeepANewClientOutBlocking() throws {
    let attack = try Attack(path: f.process.socketPath, count: 1000, slowPrefix: Array("{\"jsonrpc\":\"2.0\",\"method\":\"system.health\"".utf8))
    defer { attack.stop() }
    usleep(300_000)
    // Well-behaved clients, one after another, each served within a second.
    let slowest = try Self.tenNewClientsServed("JSON-RPC") {
      let c = try f.process.client()
      let health = try c.call("system.health")
      #expect(health["status"] == "ok")
    }
    print("provisioning.sock under 1,000 idle/slow connections (cap 64): slowest new client \(Int(slowest * 1000)) ms, \(f.process.host.rpcConnectionCount) open")
    // The cap holds: never more than the cap (plus connections being evicted).
    #expect(f.process.host.rpcConnectionCount <= 64 + 8)
    // A client in the middle of a request is never the one evicted.
    let slow = try f.process.client()
    f.process.host.dispatcher.register(MethodSpec("test.sleep", summary: "") { _, _ in usleep(1_500_000); return "slept" })
    try slow.client.send(Array("{\"jsonrpc\":\"2.0\",\"method\":\"test.sleep\",\"id\":1}\n".utf8))
    usleep(100_000)
    for _ in 0..<200 { _ = try? SocketCalls.connectUnix(f.process.socketPath).closing() }
    let reply = try JSONParser.parse(try #require(try slow.client.readLine()))
    #expect(reply["result"] == "slept")
  }

  @Test func aLineThatDoesNotFinishWithinTheRequestTimeoutIsAnsweredAndClosed() throws {
    let c = try f.process.client()
    try c.client.send(Array("{\"jsonrpc\":\"2.0\",".utf8))
    let took = try Self.seconds {
      let line = try #require(try c.client.readLine())
      let reply = try JSONParser.parse(line)
      #expect(reply["error"]?["data"]?["reason"] == "request_timeout")
      #expect(reply["error"]?["code"] == -32600)
      #expect(try c.client.readLine() == nil)
    }
    #expect(took > 1.5 && took < 4, "timed out after \(took) s")
    // Dripping a byte a second does not extend it.
    let d = try f.process.client()
    let dripTook = try Self.seconds {
      var closed = false
      for b in Array("{\"jsonrpc\":\"2.0\",\"method\":".utf8) {
        if (try? d.client.send([b])) == nil { closed = true; break }
        usleep(500_000)
        if closed { break }
      }
      let line = try #require(try d.client.readLine())
      #expect(try JSONParser.parse(line)["error"]?["data"]?["reason"] == "request_timeout")
    }
    #expect(dripTook < 6)
    // Idle between lines has no limit: a connection quiet for longer than the timeout still works.
    let idle = try f.process.client()
    usleep(2_500_000)
    #expect(try idle.call("system.health")["status"] == "ok")
  }

  @Test func thousandIdleAndSlowClientsOnTheSCIMListenerDoNotKeepANewClientOut() async throws { try await OwnThread.run { try MachineHogs.exclusively { try self.thousandIdleAndSlowClientsOnTheSCIMListenerDoNotKeepANewClientOutBlocking() } } }

  func thousandIdleAndSlowClientsOnTheSCIMListenerDoNotKeepANewClientOutBlocking() throws {
    let path = f.process.runDir + "/scim.sock"
    let attack = try Attack(path: path, count: 1000, slowPrefix: Array("GET /scim/v2/Users HTTP/1.1\r\nHost: roster\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaa".utf8))
    defer { attack.stop() }
    usleep(300_000)
    let slowest = try Self.tenNewClientsServed("SCIM") {
      let http = try TestHTTP(socket: path, token: scim.token)
      let r = try http.request("GET", "/scim/v2/Users?count=1")
      #expect(r.status == 200)
    }
    print("SCIM listener under 1,000 idle/slow connections (cap 64): slowest new client \(Int(slowest * 1000)) ms")
  }

  /// The browser-facing listener (/sso/…, /setup/…) has the same cap and
  /// timeouts: a flood of half-sent ACS posts does not keep a person's
  /// sign-in out, and a post that never finishes is answered 408 (P10).
  @Test func thousandIdleAndSlowClientsOnTheWebListenerDoNotKeepANewClientOut() async throws { try await OwnThread.run { try MachineHogs.exclusively { try self.thousandIdleAndSlowClientsOnTheWebListenerDoNotKeepANewClientOutBlocking() } } }

  func thousandIdleAndSlowClientsOnTheWebListenerDoNotKeepANewClientOutBlocking() throws {
    let path = f.process.runDir + "/web.sock"
    let acs = "/sso/saml/\(UUID().uuidString.lowercased())/acs"
    let attack = try Attack(path: path, count: 1000, slowPrefix: Array("POST \(acs) HTTP/1.1\r\nHost: roster\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaa".utf8))
    defer { attack.stop() }
    usleep(300_000)
    let slowest = try Self.tenNewClientsServed("web") {
      let r = try TestHTTP(socket: path).request("GET", "/sso/saml/\(UUID().uuidString.lowercased())/metadata")
      // Served: an unknown connection's page (404), not a hang or a reset.
      #expect(r.status == 404)
      #expect(String(decoding: r.body, as: UTF8.self).contains("No such connection"))
    }
    print("web listener under 1,000 idle/slow connections (cap 64): slowest new client \(Int(slowest * 1000)) ms")
    // An ACS post whose body never finishes: 408, within 3× the request timeout.
    let c = try LineClient(unixPath: path, timeoutSeconds: 10)
    let took = try Self.seconds {
      try c.send(Array("POST \(acs) HTTP/1.1\r\nHost: roster\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000\r\n\r\nSAMLResponse=PHN".utf8))
      let status = String(decoding: try #require(try c.readLine()), as: UTF8.self)
      #expect(status.hasPrefix("HTTP/1.1 408"), "\(status)")
    }
    #expect(took > 5 && took < 8, "the body timed out after \(took) s")
  }

  @Test func slowHeadersGet408AndSlowBodiesToo() throws {
    let path = f.process.runDir + "/scim.sock"
    let c = try LineClient(unixPath: path, timeoutSeconds: 10)
    try c.send(Array("GET /scim/v2/Users HTTP/1.1\r\nHost: roster\r\n".utf8))
    let took = try Self.seconds {
      let status = String(decoding: try #require(try c.readLine()), as: UTF8.self)
      #expect(status.hasPrefix("HTTP/1.1 408"), "\(status)")
    }
    #expect(took > 1.5 && took < 4, "headers timed out after \(took) s")
    // A body arriving slower than 3× the timeout allows.
    let http = try TestHTTP(socket: path, token: scim.token)
    let body = JSONWriter.bytes(SCIMFixture.user("slow@acme.test"))
    let head = "POST /scim/v2/Users HTTP/1.1\r\nHost: roster\r\nAuthorization: Bearer \(scim.token)\r\nContent-Type: application/scim+json\r\nContent-Length: \(body.count)\r\n\r\n"
    let bodyTook = try Self.seconds {
      try http.client.send(Array(head.utf8) + body.prefix(10))
      let r = try http.readResponse()
      #expect(r.status == 408)
      #expect(r.json?["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"])
    }
    #expect(bodyTook > 5 && bodyTook < 8, "body timed out after \(bodyTook) s")
    // Nothing was created from the half body.
    let list = try scim.http.request("GET", "/scim/v2/Users?filter=" + SCIMFixture.q("userName eq \"slow@acme.test\""))
    #expect(list.json?["totalResults"] == 0)
  }
}

extension Int32 {
  /// Closes a test's raw socket right away.
  fileprivate func closing() { close(self) }
}
