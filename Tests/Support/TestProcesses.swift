import Foundation
import JSON
import Postgres
import RosterApp
import RosterRuntime

/// One Roster process started in-process against a test database, serving
/// its real socket in a temporary run directory.
public final class RunningProcess: Sendable {
  public let host: ProcessHost
  public let runDir: String

  public var socketPath: String { host.config.socketPath(host.name) }

  public init(_ name: String, database: String, runDir: String? = nil, environment: [String: String] = [:]) throws {
    let dir = try runDir ?? TestFiles.makeTempDirectory(prefix: "roster-run")
    self.runDir = dir
    var env = [
      "ROSTER_DATABASE_URL": database, "ROSTER_RUN_DIR": dir, "ROSTER_LOG_LEVEL": "error",
      "ROSTER_PUBLIC_URL": "https://app.example.test", "ROSTER_MAIL_FROM": "roster@app.example.test",
      "ROSTER_SCIM_LISTEN": "unix:\(dir)/scim.sock",
    ]
    for (k, v) in environment { env[k] = v }
    let config = try Config.fromEnvironment(env)
    host = ProcessHost(name: name, config: config)
    try Services.install(name, host: host)
    try host.serveRPC()
  }

  public func client() throws -> TestRPC { try TestRPC(socketPath) }

  public func stop() { host.shutdown() }
}
