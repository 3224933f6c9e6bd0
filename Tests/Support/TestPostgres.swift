import Foundation
import Postgres
import RosterStore
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// A throwaway PostgreSQL cluster for the whole test process: initdb + pg_ctl
/// in a temporary folder (as the `postgres` user when running as root),
/// stopped when the process exits. Each suite gets its own database, cloned
/// from a migrated template.
public final class TestPostgres: Sendable {
  public let root: String
  public let socketDir: String
  public let dataDir: String
  public let port = 5432
  let counter = Atomic<Int>(0)

  public static let shared: TestPostgres = {
    do {
      let pg = try TestPostgres()
      registerExitCleanup(pg)
      return pg
    } catch {
      fatalError("cannot start the test PostgreSQL cluster: \(error)")
    }
  }()

  /// fsync and synchronous commit on: a crash (`-m immediate`) loses nothing committed.
  public let durable: Bool

  /// A separate cluster (tests that stop the server use their own).
  public init(withTemplate: Bool = true, durable: Bool = false) throws {
    self.durable = durable
    Self.removeAbandonedClusters()
    root = try TestFiles.makeTempDirectory(prefix: "roster-test-pg")
    dataDir = root + "/data"
    socketDir = root + "/sock"
    let asPostgres = getuid() == 0
    for d in [dataDir, socketDir] {
      try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }
    try String(getpid()).write(toFile: root + "/owner.pid", atomically: true, encoding: .utf8)
    if asPostgres {
      try TestProcess.run(["chown", "-R", "postgres:postgres", root])
      chmod(root, 0o755)
    }
    try TestProcess.run(
      [Self.binary("initdb"), "-D", dataDir, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"],
      asPostgres: asPostgres)
    try startServer()
    if withTemplate { try createTemplate() }
  }

  /// Clusters left by a test process that died without cleaning up (a
  /// crash skips atexit) are stopped and removed, so failed runs do not
  /// pile up servers.
  static func removeAbandonedClusters() {
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? [] where name.hasPrefix("roster-test-pg-") {
      let dir = "/tmp/" + name
      guard let text = try? String(contentsOfFile: dir + "/owner.pid", encoding: .utf8), let owner = pid_t(text),
        kill(owner, 0) != 0 && errno == ESRCH
      else { continue }
      _ = try? TestProcess.run([binary("pg_ctl"), "-D", dir + "/data", "-m", "immediate", "-w", "stop"], asPostgres: getuid() == 0)
      try? FileManager.default.removeItem(atPath: dir)
    }
  }

  /// Finds a PostgreSQL program on PATH or in Debian's versioned folder.
  public static func binary(_ name: String) -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
      return "\(dir)/\(name)"
    }
    if let versions = try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql") {
      for v in versions.sorted(by: >) where FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\(v)/bin/\(name)") {
        return "/usr/lib/postgresql/\(v)/bin/\(name)"
      }
    }
    return name
  }

  public func conninfo(database: String) -> String {
    "host=\(socketDir) port=\(port) user=postgres dbname=\(database)"
  }

  static let templateName = "roster_template"

  func createTemplate() throws {
    let admin = PGConnection(config: PGConfig(conninfo: conninfo(database: "postgres")))
    defer { admin.close() }
    try admin.execute(script: "CREATE DATABASE \(Self.templateName)")
    let conn = PGConnection(config: PGConfig(conninfo: conninfo(database: Self.templateName)))
    defer { conn.close() }
    _ = try Migrator(directory: TestFiles.schemaDirectory).migrate(connection: conn)
  }

  /// A new database with the current schema; returns its conninfo.
  public func freshDatabase(migrated: Bool = true) throws -> String {
    let n = counter.add(1, ordering: .relaxed).newValue
    let name = "t\(getpid())_\(n)"
    let admin = PGConnection(config: PGConfig(conninfo: conninfo(database: "postgres")))
    defer { admin.close() }
    // The name is built from two integers above, not from input.
    try admin.execute(script: migrated ? "CREATE DATABASE \(name) TEMPLATE \(Self.templateName)" : "CREATE DATABASE \(name)")
    return conninfo(database: name)
  }

  /// Stops the server (for tests of behaviour while the database is down).
  public func stopServer(mode: String = "fast") throws {
    try TestProcess.run([Self.binary("pg_ctl"), "-D", dataDir, "-m", mode, "-w", "stop"], asPostgres: getuid() == 0)
  }

  public func startServer() throws {
    // fsync off: a throwaway cluster; durability is not what these tests measure.
    let safety = durable ? "-c fsync=on -c synchronous_commit=on -c full_page_writes=on" : "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    let options = "-k \(socketDir) -c listen_addresses='' -p \(port) \(safety) -c max_connections=400 -c shared_buffers=128MB"
    try TestProcess.run(
      [Self.binary("pg_ctl"), "-D", dataDir, "-l", root + "/server.log", "-o", options, "-w", "-t", "60", "start"],
      asPostgres: getuid() == 0)
  }

  /// Stops the cluster for good and removes its files.
  public func destroy() {
    _ = try? TestProcess.run([Self.binary("pg_ctl"), "-D", dataDir, "-m", "immediate", "-w", "stop"], asPostgres: getuid() == 0)
    try? FileManager.default.removeItem(atPath: root)
  }
}

private let exitCleanup = Mutex<TestPostgres?>(nil)

private func registerExitCleanup(_ pg: TestPostgres) {
  exitCleanup.withLock { $0 = pg }
  atexit {
    let pg = exitCleanup.withLock { $0 }
    pg?.destroy()
  }
}
