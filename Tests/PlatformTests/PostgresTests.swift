import Foundation
import JSON
import Postgres
import RosterStore
import RosterTestSupport
import Testing

@Suite struct PostgresTests {
  let pool: PGPool

  init() throws {
    pool = PGPool(config: PGConfig(conninfo: try TestPostgres.shared.freshDatabase()), size: 4)
  }

  @Test func interpolatedValuesAreBoundNotSpliced() throws {
    let hostile = "x'); DROP TABLE users; --"
    let row = try pool.transaction { tx in
      try tx.one("INSERT INTO users (email, name) VALUES (\(hostile), \("o'brien")) RETURNING email, name")
    }
    #expect(row?["email"] == hostile)
    #expect(row?["name"] == "o'brien")
    #expect(try pool.query("SELECT count(*) AS n FROM users").first?["n"] == "1")
  }

  @Test func fragmentsRenumberTheirParameters() throws {
    var q: SQL = "SELECT \(1)::int + \(2)::int AS a"
    q.append(", \(30) AS b")
    let r = try pool.query(q + ", \("z") AS c")
    #expect(q.binds.count == 3)
    #expect(r.first?["a"] == "3")
    #expect(r.first?["b"] == "30")
    #expect(r.first?["c"] == "z")
  }

  @Test func nullsAndArraysAndJSON() throws {
    let none: String? = nil
    let r = try pool.query(
      "SELECT \(none)::text AS n, \(PGTextArray(["a", "b\"c", "d,e"]))::text[] AS arr, \(JSONValue.object(["k": [1, 2]]))::jsonb AS j")
    #expect(r.first?["n"] == nil)
    #expect(r.first.map { try! $0.json("j") } == ["k": [1, 2]])
    #expect(try pool.query("SELECT array_length(\(PGTextArray(["a", "b\"c", "d,e"]))::text[], 1) AS l").first?["l"] == "3")
  }

  @Test func errorsCarrySQLStateButDoNotPrintData() throws {
    let secret = "secret-token-value@example.com"
    try pool.transaction { tx in try tx.query("INSERT INTO users (email) VALUES (\(secret))") }
    do {
      try pool.transaction { tx in try tx.query("INSERT INTO users (email) VALUES (\(secret.uppercased()))") }
      Issue.record("expected a unique violation")
    } catch let e as PGError {
      #expect(e.isUniqueViolation)
      #expect(e.constraint == "users_email_key")
      #expect(!e.description.lowercased().contains("secret"))
      #expect(e.debugDescription.contains("duplicate key"))
    }
  }

  @Test func failedTransactionWritesNothing() throws {
    struct Abort: Error {}
    #expect(throws: Abort.self) {
      try pool.transaction { tx in
        try tx.query("INSERT INTO users (email) VALUES ('a@x.test')")
        throw Abort()
      }
    }
    #expect(try pool.query("SELECT count(*) AS n FROM users WHERE email = 'a@x.test'").first?["n"] == "0")
  }

  @Test func serializationFailuresAreRetried() throws {
    try pool.transaction { tx in try tx.query("INSERT INTO users (email, name) VALUES ('counter@x.test', '0')") }
    let threads = 4
    let perThread = 10
    let group = DispatchGroup()
    for _ in 0..<threads {
      group.enter()
      Thread {
        defer { group.leave() }
        for _ in 0..<perThread {
          _ = try? pool.transaction(isolation: .serializable) { tx in
            let n = Int(try tx.one("SELECT name FROM users WHERE email = 'counter@x.test'")!.string("name"))!
            usleep(1000)
            try tx.query("UPDATE users SET name = \(String(n + 1)) WHERE email = 'counter@x.test'")
          }
        }
      }.start()
    }
    group.wait()
    // Every increment landed despite conflicts: they were retried, not lost.
    #expect(try pool.query("SELECT name FROM users WHERE email = 'counter@x.test'").first?["name"] == String(threads * perThread))
  }
}

@Suite struct MigrationTests {
  @Test func concurrentMigrationsApplyEachFileOnce() throws {
    let db = try TestPostgres.shared.freshDatabase(migrated: false)
    let migrator = Migrator(directory: TestFiles.schemaDirectory)
    let group = DispatchGroup()
    let errors = ErrorBox()
    for _ in 0..<3 {
      group.enter()
      Thread {
        defer { group.leave() }
        let conn = PGConnection(config: PGConfig(conninfo: db))
        defer { conn.close() }
        do { _ = try migrator.migrate(connection: conn) } catch { errors.add(error) }
      }.start()
    }
    group.wait()
    #expect(errors.count == 0)
    let conn = PGConnection(config: PGConfig(conninfo: db))
    #expect(try Migrator.currentVersion(connection: conn) == Migrator.requiredVersion)
    #expect(try conn.query("SELECT count(*) AS n FROM schema_migrations").first?["n"] == String(try migrator.migrations().count))
    // Running again changes nothing.
    #expect(try migrator.migrate(connection: conn).isEmpty)
  }

  @Test func requiredVersionIsTheHighestSchemaFile() throws {
    #expect(try Migrator(directory: TestFiles.schemaDirectory).migrations().last?.version == Migrator.requiredVersion)
  }

  @Test func processRefusesToStartOnAnUnmigratedDatabase() throws {
    let db = try TestPostgres.shared.freshDatabase(migrated: false)
    let dir = try TestFiles.makeTempDirectory(prefix: "roster-nomig")
    let out = dir + "/out.log"
    var env = ProcessInfo.processInfo.environment
    env["ROSTER_DATABASE_URL"] = db
    env["ROSTER_RUN_DIR"] = dir
    let p = try TestProcess.start([TestFiles.rosterBinary, "provisioning"], environment: env, output: out)
    let status = p.wait()
    let log = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
    #expect(status == 1)
    #expect(log.contains("roster migrate"))
    #expect(!FileManager.default.fileExists(atPath: dir + "/provisioning.sock"))
  }

  @Test func migrateCommandWorksAndIsIdempotent() throws {
    let db = try TestPostgres.shared.freshDatabase(migrated: false)
    var env = ProcessInfo.processInfo.environment
    env["ROSTER_DATABASE_URL"] = db
    for expected in ["applied \(Migrator.requiredVersion)", "already up to date"] {
      let dir = try TestFiles.makeTempDirectory(prefix: "roster-mig")
      let p = try TestProcess.start([TestFiles.rosterBinary, "migrate"], environment: env, output: dir + "/out")
      #expect(p.wait() == 0)
      #expect(((try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? "").contains(expected))
    }
  }
}

final class ErrorBox: @unchecked Sendable {
  private let lock = NSLock()
  private var errors: [any Error] = []
  func add(_ e: any Error) { lock.withLock { errors.append(e) } }
  var count: Int { lock.withLock { errors.count } }
}
