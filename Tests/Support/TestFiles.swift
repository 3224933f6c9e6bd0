import Foundation
import ProcessSpawn
import RosterRuntime

#if canImport(Glibc)
  import Glibc
#endif

public enum TestFiles {
  /// The repository root, found from this file's location.
  public static let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
  }()

  public static var schemaDirectory: String { repositoryRoot + "/schema" }

  /// The built `roster` executable next to the test bundle.
  public static var rosterBinary: String {
    let candidates = [
      repositoryRoot + "/.build/debug/roster",
      Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("roster").path,
    ]
    for c in candidates where FileManager.default.isExecutableFile(atPath: c) { return c }
    return candidates[0]
  }

  /// Python with the test peers installed (aiosmtpd, dnslib, scim2-tester): the
  /// virtualenv made by deploy/test.sh, or $ROSTER_TEST_PYTHON.
  public static var python: String {
    if let p = ProcessInfo.processInfo.environment["ROSTER_TEST_PYTHON"], !p.isEmpty { return p }
    return repositoryRoot + "/.venv/bin/python"
  }

  public static func makeTempDirectory(prefix: String) throws -> String {
    // Short paths: Unix socket paths must stay under 108 bytes.
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    guard let p = mkdtemp(&template) else { throw TestError("mkdtemp failed") }
    let path = String(cString: p)
    chmod(path, 0o755)
    return path
  }
}

public struct TestError: Error, CustomStringConvertible {
  public let description: String
  public init(_ d: String) { description = d }
}

/// Runs helper programs for the test fixtures.
public enum TestProcess {
  /// Runs a program to completion (see `Spawn`) and returns its output; throws if it fails.
  @discardableResult
  public static func run(_ argv: [String], asPostgres: Bool = false) throws -> String {
    let args = asPostgres ? ["runuser", "-u", "postgres", "--"] + argv : argv
    let outPath = "/tmp/roster-test-out-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    defer { unlink(outPath) }
    let pid = try Spawn.start(args, output: outPath)
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let text = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    let exited = (status & 0x7f) == 0
    let code = (status >> 8) & 0xff
    guard exited && code == 0 else {
      throw TestError("\(args.joined(separator: " ")) failed (status \(status)): \(text)")
    }
    return text
  }

  /// Starts a long-running helper (posix_spawn; the caller stops it).
  public static func start(_ argv: [String], environment: [String: String]? = nil, output: String? = nil) throws -> Spawned {
    Spawned(pid: try Spawn.start(argv, environment: environment, output: output ?? "/dev/null"))
  }

  /// Waits until `condition` holds, polling; false on timeout.
  public static func waitUntil(timeout: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
      if condition() { return true }
      usleep(20_000)
    }
    return condition()
  }
}

/// A child process started by `TestProcess.start`.
public final class Spawned: @unchecked Sendable {
  public let pid: pid_t
  private let lock = NSLock()
  private var status: Int32?

  init(pid: pid_t) { self.pid = pid }

  /// Exit status once it has exited (reaps it), else nil.
  public func poll() -> Int32? {
    lock.withLock {
      if let status { return status }
      var st: Int32 = 0
      if waitpid(pid, &st, WNOHANG) == pid { status = st }
      return status
    }
  }

  public var isRunning: Bool { poll() == nil }

  /// Waits for exit; returns the exit code (128+signal if killed).
  @discardableResult
  public func wait() -> Int32 {
    let st: Int32 = lock.withLock {
      if let status { return status }
      var st: Int32 = 0
      while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
      status = st
      return st
    }
    return (st & 0x7f) == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f)
  }

  /// Signals the child only while it is not reaped: once reaped its pid may
  /// belong to another process (a test peer, say).
  public func signal(_ sig: Int32) { lock.withLock { if status == nil { _ = kill(pid, sig) } } }

  /// SIGTERM, then SIGKILL after `grace` seconds.
  public func stop(grace: Double = 5) {
    guard isRunning else { return }
    kill(pid, SIGTERM)
    let deadline = Date().addingTimeInterval(grace)
    while isRunning && Date() < deadline { usleep(10_000) }
    if isRunning { kill(pid, SIGKILL) }
    wait()
  }
}
