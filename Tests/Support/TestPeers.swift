import Foundation
import JSON
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Ports this test process has handed out: two tests running side by side
/// must never be given the same one (each checks, then its peer binds later).
private let handedOutPorts = Mutex<Set<UInt16>>([])

/// A free loopback port (bound and released; good enough for test peers).
/// Below Linux's ephemeral range (32768–60999), so no outgoing connection
/// can take it between the check and the peer's bind.
public func freeLoopbackPort(udp: Bool = false) -> UInt16 {
  for _ in 0..<200 {
    let port = UInt16.random(in: 20_000...32_700)
    guard handedOutPorts.withLock({ $0.insert(port).inserted }) else { continue }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var free = true
    for type in [SOCK_STREAM, SOCK_DGRAM] {
      let fd = socket(AF_INET, Int32(type.rawValue), 0)
      let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
      close(fd)
      if rc != 0 { free = false }
    }
    if free { return port }
  }
  return 0
}

/// The dnslib test server (Tests/Support/peers/dns_server.py) on loopback.
public final class TestDNS: @unchecked Sendable {
  public let port: UInt16
  let dir: String
  let process: Spawned
  private let lock = NSLock()
  private var records: [String: JSONValue] = [:]

  public init() throws {
    dir = try TestFiles.makeTempDirectory(prefix: "roster-dns")
    port = freeLoopbackPort()
    try Data("{}".utf8).write(to: URL(fileURLWithPath: dir + "/records.json"))
    process = try TestProcess.start(
      [TestFiles.python, TestFiles.repositoryRoot + "/Tests/Support/peers/dns_server.py", dir + "/records.json", String(port)],
      output: dir + "/server.log")
    let ready = TestProcess.waitUntil(timeout: 15) {
      ((try? String(contentsOfFile: self.dir + "/server.log", encoding: .utf8)) ?? "").contains("ready")
    }
    if !ready {
      process.stop()
      let log = (try? String(contentsOfFile: dir + "/server.log", encoding: .utf8)) ?? ""
      throw TestError("the DNS test server did not start (is the .venv from deploy/test.sh there?): \(log)")
    }
  }

  deinit { stop() }

  public func stop() {
    process.stop()
  }

  public var address: String { "127.0.0.1:\(port)" }

  /// Publishes TXT records for a name (replacing earlier ones).
  public func setTXT(_ name: String, _ values: [String]) { set(name, .array(values.map { .string($0) })) }
  public func setServfail(_ name: String) { set(name, "servfail") }
  public func setTimeout(_ name: String) { set(name, "timeout") }
  public func remove(_ name: String) { set(name, nil) }

  private func set(_ name: String, _ value: JSONValue?) {
    lock.withLock {
      records[name.lowercased()] = value
      let text = JSONWriter.string(.object(records))
      let tmp = dir + "/records.tmp"
      try? Data(text.utf8).write(to: URL(fileURLWithPath: tmp))
      rename(tmp, dir + "/records.json")
    }
  }
}

/// The aiosmtpd test server (Tests/Support/peers/smtp_server.py) on loopback:
/// stores every message, and can refuse recipients with scripted replies.
public final class TestSMTP: @unchecked Sendable {
  public let port: UInt16
  public let dir: String
  private var process: Spawned?
  private let lock = NSLock()

  public init(port: UInt16 = freeLoopbackPort(), start: Bool = true) throws {
    self.port = port
    dir = try TestFiles.makeTempDirectory(prefix: "roster-smtp")
    try Data("{}".utf8).write(to: URL(fileURLWithPath: dir + "/rules.json"))
    if start { try self.start() }
  }

  deinit { stop() }

  public var url: String { "smtp://127.0.0.1:\(port)" }

  public func start() throws {
    let log = dir + "/server-\(UInt32.random(in: 0...UInt32.max)).log"
    let p = try TestProcess.start(
      [TestFiles.python, TestFiles.repositoryRoot + "/Tests/Support/peers/smtp_server.py", String(port), dir + "/mail", dir + "/rules.json"],
      output: log)
    lock.withLock { process = p }
    let ready = TestProcess.waitUntil(timeout: 15) {
      ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("ready")
    }
    if !ready {
      p.stop()
      throw TestError("the SMTP test server did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }
  }

  public func stop() {
    let p = lock.withLock { () -> Spawned? in
      let p = process
      process = nil
      return p
    }
    p?.stop()
  }

  /// Scripted replies per recipient (see smtp_server.py).
  public func setRules(_ rules: [String: JSONValue]) throws {
    try Data(JSONWriter.string(.object(rules)).utf8).write(to: URL(fileURLWithPath: dir + "/rules.tmp"))
    rename(dir + "/rules.tmp", dir + "/rules.json")
  }

  /// Every stored message, oldest first, as raw text.
  public func messages() -> [String] {
    let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/mail")) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    return files.compactMap { try? String(contentsOfFile: dir + "/mail/" + $0, encoding: .utf8) }
  }
}
