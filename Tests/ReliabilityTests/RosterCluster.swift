import Foundation
import JSON
import LoadDriver
import Postgres
import RosterTestSupport
import Sockets

#if canImport(Glibc)
  import Glibc
#endif

/// The whole system as it runs in production, on one machine: the real
/// `roster` binaries (one or more copies of each process, each copy in its
/// own run directory as on its own host), a durable PostgreSQL cluster of
/// its own, a real SMTP relay and DNS server. Processes can be killed with
/// SIGKILL and restarted; the database and the relay stopped and started.
final class RosterCluster: @unchecked Sendable {
  static let processes = ["provisioning", "deprovisioning", "notifications"]

  let pg: TestPostgres
  let database: String
  let smtp: TestSMTP
  let dns: TestDNS
  /// The IdPs the load signs in through (SAML and OIDC on loopback).
  let samlIdP: TestSAMLLoadIdP
  let oidc: TestOIDCProvider
  static let publicURL = "https://app.example.test"
  let copies: Int
  let root: String
  /// [process][copy]
  var running: [String: [Spawned]] = [:]
  let pool: PGPool

  init(copies: Int) throws {
    pg = try TestPostgres(withTemplate: true, durable: true)
    database = try pg.freshDatabase()
    smtp = try TestSMTP()
    dns = try TestDNS()
    samlIdP = try TestSAMLLoadIdP()
    oidc = try TestOIDCProvider()
    self.copies = copies
    root = try TestFiles.makeTempDirectory(prefix: "roster-cl")
    pool = PGPool(config: PGConfig(conninfo: database), size: 2)
    for name in Self.processes {
      running[name] = []
      for copy in 0..<copies { running[name]!.append(try spawn(name, copy: copy)) }
    }
    for name in Self.processes {
      for copy in 0..<copies { guard waitHealthy(name, copy: copy, timeout: 30) != nil else { throw TestError("\(name) #\(copy) did not start: \(log(name, copy: copy))") } }
    }
  }

  /// Encrypts the OIDC client secret at rest (the same on every copy).
  static let secretKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()

  func runDir(_ copy: Int) -> String { root + "/host\(copy)" }
  func socket(_ name: String, copy: Int) -> String { runDir(copy) + "/\(name).sock" }
  func logPath(_ name: String, copy: Int) -> String { root + "/\(name)-\(copy).log" }
  func log(_ name: String, copy: Int) -> String { (try? String(contentsOfFile: logPath(name, copy: copy), encoding: .utf8)) ?? "" }

  var targets: LoadTargets { LoadTargets.runDirectories((0..<copies).map(runDir)) }
  var ssoPeers: SSOPeers { SSOPeers(samlIdPPort: samlIdP.port, oidcProviderPort: oidc.port, publicURL: Self.publicURL, mailDir: smtp.dir + "/mail") }

  func spawn(_ name: String, copy: Int) throws -> Spawned {
    var env = ProcessInfo.processInfo.environment
    let dir = runDir(copy)
    for (k, v) in [
      "ROSTER_DATABASE_URL": database, "ROSTER_RUN_DIR": dir, "ROSTER_SCIM_LISTEN": "unix:\(dir)/scim.sock", "ROSTER_WEB_LISTEN": "unix:\(dir)/web.sock",
      "ROSTER_SMTP_URL": smtp.url, "ROSTER_DNS_SERVER": dns.address, "ROSTER_PUBLIC_URL": Self.publicURL,
      "ROSTER_MAIL_FROM": "roster@app.example.test", "ROSTER_LOG_LEVEL": "debug", "ROSTER_DB_POOL_SIZE": "8",
      "ROSTER_IDP_ALLOW_HTTP_LOOPBACK": "true", "ROSTER_SECRET_KEY": Self.secretKey,
    ] { env[k] = v }
    // Appends: a restarted process's log follows the killed one's.
    return try TestProcess.start([TestFiles.rosterBinary, name], environment: env, output: logPath(name, copy: copy))
  }

  /// Seconds until the copy answers system.health with the database up, or nil.
  @discardableResult
  func waitHealthy(_ name: String, copy: Int, timeout: Double = 30) -> Double? {
    let t0 = Date()
    let ok = TestProcess.waitUntil(timeout: timeout) {
      guard let c = try? LineClient(unixPath: socket(name, copy: copy), timeoutSeconds: 2) else { return false }
      guard (try? c.send(Array("{\"jsonrpc\":\"2.0\",\"method\":\"system.health\",\"id\":1}\n".utf8))) != nil,
        let line = try? c.readLine(), let v = try? JSONParser.parse(line)
      else { return false }
      return v["result"]?["database"] == "ok"
    }
    return ok ? Date().timeIntervalSince(t0) : nil
  }

  /// SIGKILL, no warning (the process cannot clean up anything).
  func kill9(_ name: String, copy: Int) {
    let p = running[name]![copy]
    p.signal(SIGKILL)
    p.wait()
  }

  /// Starts the copy again; returns seconds until it is healthy.
  func restart(_ name: String, copy: Int) throws -> Double {
    running[name]![copy] = try spawn(name, copy: copy)
    guard let s = waitHealthy(name, copy: copy) else { throw TestError("\(name) #\(copy) did not come back: \(log(name, copy: copy).suffix(2000))") }
    return s
  }

  /// Every process still running (none needed a restart it did not get).
  var deadProcesses: [String] {
    var out: [String] = []
    for (name, list) in running { for (i, p) in list.enumerated() where !p.isRunning { out.append("\(name) #\(i)") } }
    return out
  }

  var allLogs: String { Self.processes.flatMap { n in (0..<copies).map { log(n, copy: $0) } }.joined(separator: "\n") }

  func stop() {
    for list in running.values { for p in list { p.stop() } }
    // A full run scans every log for secrets (deploy/scan-logs.sh).
    if let dir = ProcessInfo.processInfo.environment["ROSTER_TEST_LOG_DIR"], !dir.isEmpty {
      for name in Self.processes {
        for copy in 0..<copies { try? FileManager.default.copyItem(atPath: logPath(name, copy: copy), toPath: "\(dir)/cluster-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(name)-\(copy).log") }
      }
    }
    pool.closeAll()
    smtp.stop()
    dns.stop()
    pg.destroy()
  }
}
