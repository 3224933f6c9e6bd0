import Foundation
import JSON
import Postgres
import RosterApp
import RosterRuntime
import Synchronization

/// One Roster process started in-process against a test database, serving
/// its real socket in a temporary run directory.
public final class RunningProcess: Sendable {
  static let serial = Atomic<Int>(0)

  public let host: ProcessHost
  public let runDir: String

  public var socketPath: String { host.config.socketPath(host.name) }

  /// The service object the process installed (e.g. ProvisioningService).
  public let service: (any Sendable)?

  public init(
    _ name: String, database: String, runDir: String? = nil, environment: [String: String] = [:],
    options: Services.Options = { var o = Services.Options(); o.domainRecheckInterval = 0; return o }(), logFile: String? = nil
  ) throws {
    let dir = try runDir ?? TestFiles.makeTempDirectory(prefix: "roster-run")
    self.runDir = dir
    var env = [
      "ROSTER_DATABASE_URL": database, "ROSTER_RUN_DIR": dir, "ROSTER_LOG_LEVEL": "error",
      "ROSTER_PUBLIC_URL": "https://app.example.test", "ROSTER_MAIL_FROM": "roster@app.example.test",
      "ROSTER_SCIM_LISTEN": "unix:\(dir)/scim.sock",
    ]
    for (k, v) in environment { env[k] = v }
    var logger: Logger?
    // A full run (deploy/test.sh) keeps every process's log at debug in
    // ROSTER_TEST_LOG_DIR and scans them for secrets afterwards.
    var logFile = logFile
    if logFile == nil, let dir = ProcessInfo.processInfo.environment["ROSTER_TEST_LOG_DIR"], !dir.isEmpty {
      logFile = "\(dir)/\(name)-\(getpid())-\(RunningProcess.serial.add(1, ordering: .relaxed).newValue).log"
      env["ROSTER_LOG_LEVEL"] = "debug"
    }
    let config = try Config.fromEnvironment(env)
    if let logFile {
      // Opened for appending and left open for the process's life (a test's log).
      let fd = open(logFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
      logger = Logger(process: name, level: config.logLevel, format: config.logFormat, fd: fd)
    }
    host = ProcessHost(name: name, config: config, logger: logger)
    service = try Services.install(name, host: host, options: options)
    try host.serveRPC()
  }

  public func client() throws -> TestRPC { try TestRPC(socketPath) }

  public func stop() { host.shutdown() }
}
