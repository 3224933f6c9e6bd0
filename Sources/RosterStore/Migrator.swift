import Foundation
import Postgres

/// Applies the numbered SQL files in `schema/` in order, each once and each in
/// its own transaction, under an advisory lock so concurrent runs are safe.
public struct Migrator: Sendable {
  /// The schema version this build needs (the highest file number in schema/).
  public static let requiredVersion = 8
  /// Arbitrary constant for pg_advisory_lock: "roster migrate".
  static let lockKey: Int64 = 0x526F_7374_6572_4D67

  public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String
  }

  public let directory: String

  /// Where a migration file hands over to its Swift step.
  static let swiftStepMarker = "-- roster:swift-step"
  typealias Step = @Sendable (PGTransaction, (String) -> Void) throws -> Void
  /// Swift steps by schema version.
  static let swiftSteps: [Int: Step] = [3: { tx, log in try AddressKeys.backfill(tx, log: log) }]

  public init(directory: String) { self.directory = directory }

  /// Finds schema/: $ROSTER_SCHEMA_DIR, then next to the executable
  /// (…/share/roster/schema, …/schema), then up from it (a source checkout).
  public static func locateSchemaDirectory(env: [String: String] = ProcessInfo.processInfo.environment) -> String? {
    if let d = env["ROSTER_SCHEMA_DIR"], !d.isEmpty { return d }
    // /proc/self/exe, not argv[0]: a command found through PATH has a bare name there.
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    var candidates = [
      exe.appendingPathComponent("../share/roster/schema").path, exe.appendingPathComponent("schema").path,
      "/usr/local/share/roster/schema", "/usr/share/roster/schema",
    ]
    var dir = exe
    for _ in 0..<6 {
      candidates.append(dir.appendingPathComponent("schema").path)
      dir = dir.deletingLastPathComponent()
    }
    candidates.append(FileManager.default.currentDirectoryPath + "/schema")
    for c in candidates where FileManager.default.fileExists(atPath: c + "/001_init.sql") {
      return URL(fileURLWithPath: c).standardizedFileURL.path
    }
    return nil
  }

  public func migrations() throws -> [Migration] {
    let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql") }.sorted()
    var out: [Migration] = []
    for f in files {
      guard let us = f.firstIndex(of: "_"), let v = Int(f[..<us]) else {
        throw MigrationError("schema file '\(f)' does not start with a number and '_'")
      }
      if out.contains(where: { $0.version == v }) { throw MigrationError("two schema files have number \(v)") }
      let sql = try String(contentsOfFile: directory + "/" + f, encoding: .utf8)
      out.append(Migration(version: v, name: f, sql: sql))
    }
    return out.sorted { $0.version < $1.version }
  }

  /// Applies what is missing; returns the names applied.
  public func migrate(connection conn: PGConnection, log: (String) -> Void = { _ in }) throws -> [String] {
    let all = try migrations()
    try conn.query("SELECT pg_advisory_lock(\(Self.lockKey))")
    defer { _ = try? conn.query("SELECT pg_advisory_unlock(\(Self.lockKey))") }
    try conn.execute(
      script: """
        CREATE TABLE IF NOT EXISTS schema_migrations (
          version integer PRIMARY KEY,
          name text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )
        """)
    let applied = Set(try conn.query("SELECT version FROM schema_migrations").rows.map { try $0.int("version") })
    var done: [String] = []
    for m in all where !applied.contains(Int64(m.version)) {
      _ = try PGPool.runTransaction(conn, maxAttempts: 1) { tx in
        // A file may hand over to Swift in the middle (data that SQL cannot
        // compute, such as S10's address keys): SQL, the step, the rest.
        let parts = m.sql.components(separatedBy: Self.swiftStepMarker)
        guard parts.count <= 2, parts.count == 1 || Self.swiftSteps[m.version] != nil else {
          throw MigrationError("\(m.name) asks for a Swift step this build does not have")
        }
        try tx.connection.execute(script: parts[0])
        if parts.count == 2, let step = Self.swiftSteps[m.version] {
          try step(tx, log)
          try tx.connection.execute(script: parts[1])
        }
        try tx.query("INSERT INTO schema_migrations (version, name) VALUES (\(m.version), \(m.name))")
      }
      log("applied \(m.name)")
      done.append(m.name)
    }
    return done
  }

  /// The highest applied version (0 for an empty database).
  public static func currentVersion(connection conn: PGConnection) throws -> Int {
    do {
      let row = try conn.query("SELECT coalesce(max(version), 0) AS v FROM schema_migrations").first
      return Int(row?.optionalInt("v") ?? 0)
    } catch {
      // 42P01: schema_migrations does not exist yet (an empty database).
      if error.sqlState == "42P01" { return 0 }
      throw error
    }
  }
}

public struct MigrationError: Error, CustomStringConvertible {
  public let description: String
  init(_ d: String) { description = d }
}
