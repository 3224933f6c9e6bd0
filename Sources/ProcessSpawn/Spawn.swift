import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Starts programs with posix_spawn, for the benchmarks and the test
/// fixtures. Not Foundation's Process: it watches an inherited descriptor to
/// see its child exit, and `pg_ctl start` leaves a server holding that
/// descriptor forever. Children start with an empty signal mask: Roster
/// blocks SIGTERM and SIGINT in every thread, and a child would inherit that.
public enum Spawn {
  public struct Failure: Error, CustomStringConvertible {
    public let description: String
  }

  /// Starts `argv` (`argv[0]` is looked up in PATH) with stdin from
  /// /dev/null and stdout and stderr into `output` (created or truncated),
  /// or inherited when `output` is nil. Returns the child's pid; the caller reaps it.
  public static func start(_ argv: [String], environment: [String: String]? = nil, output: String?) throws(Failure) -> pid_t {
    guard let program = argv.first else { throw Failure(description: "nothing to start") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    if let output {
      posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
      posix_spawn_file_actions_adddup2(&actions, 1, 2)
    }
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attr, &empty)
    posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK))
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { cArgs.forEach { free($0) } }
    let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { env.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, program, &actions, &attr, cArgs, env)
    guard rc == 0 else { throw Failure(description: "cannot start \(program): \(String(cString: strerror(rc)))") }
    return pid
  }
}
