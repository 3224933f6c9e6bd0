import Foundation

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
  /// Runs a program to completion (posix_spawn + waitpid). Not Foundation's
  /// Process: it watches an inherited descriptor to see its child exit, and
  /// `pg_ctl start` leaves a server holding that descriptor forever.
  @discardableResult
  public static func run(_ argv: [String], asPostgres: Bool = false) throws -> String {
    let args = asPostgres ? ["runuser", "-u", "postgres", "--"] + argv : argv
    let outPath = "/tmp/roster-test-out-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    defer { unlink(outPath) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let cArgs = (["/usr/bin/env"] + args).map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, "/usr/bin/env", &actions, nil, cArgs, environ)
    guard rc == 0 else { throw TestError("posix_spawn \(args[0]) failed: \(rc)") }
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
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attr, &empty)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK))
    let cArgs = (["/usr/bin/env"] + argv).map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { env.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, "/usr/bin/env", &actions, &attr, cArgs, env)
    guard rc == 0 else { throw TestError("posix_spawn \(argv[0]) failed: \(rc)") }
    return Spawned(pid: pid)
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

  public func signal(_ sig: Int32) { kill(pid, sig) }

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
