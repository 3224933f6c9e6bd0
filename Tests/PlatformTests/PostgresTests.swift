import Foundation
import JSON
import Postgres
import RosterStore
import RosterTestSupport
import Synchronization
import Testing

@Suite struct PostgresTests {
  let pool: PGPool

  init() throws {
    pool = PGPool(config: PGConfig(conninfo: try TestPostgres.shared.freshDatabase()), size: 4)
  }

  /// #17 / E1: wake-ups are sent after the commit, off the writer's path
  /// (PGNotifySender): a rolled-back transaction wakes no one, a committed
  /// one wakes LISTENers, and a burst of commits is coalesced.
  @Test func notificationsFollowCommitsAndNeverRollbacks() throws {
    final class Count: Sendable { let n = Atomic<Int>(0) }
    let heard = Count()
    let channel = "roster_test_\(UInt32.random(in: 0...UInt32.max))"
    let listener = PGListener(config: pool.config, channels: [channel]) { _, _ in heard.n.add(1, ordering: .relaxed) }
    listener.start()
    defer { listener.stop() }
    #expect(TestProcess.waitUntil(timeout: 10) { listener.isListening })
    struct Refused: Error {}
    #expect(throws: Refused.self) {
      try pool.transaction { tx in
        tx.notifyAfterCommit(channel)
        throw Refused()
      }
    }
    usleep(300_000)
    #expect(heard.n.load(ordering: .relaxed) == 0, "a rollback wakes no one")
    try pool.transaction { tx in
      try tx.query("SELECT 1")
      tx.notifyAfterCommit(channel)
    }
    #expect(TestProcess.waitUntil(timeout: 10) { heard.n.load(ordering: .relaxed) == 1 }, "a commit wakes the listener")
    let before = PGNotifySender.shared.sent.load(ordering: .relaxed)
    DispatchQueue.concurrentPerform(iterations: 4) { _ in
      for _ in 0..<50 { try? pool.transaction { tx in tx.notifyAfterCommit(channel) } }
    }
    #expect(TestProcess.waitUntil(timeout: 10) { heard.n.load(ordering: .relaxed) > 1 })
    usleep(300_000)
    let sent = PGNotifySender.shared.sent.load(ordering: .relaxed) - before
    print("200 commits marking one channel: \(heard.n.load(ordering: .relaxed) - 1) wake-ups heard, \(sent) NOTIFYs sent by this process")
    #expect(heard.n.load(ordering: .relaxed) - 1 <= 200)
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
          // Enough attempts that a loaded CI machine cannot exhaust them
          // (the default 5 lost an increment once with four contenders).
          _ = try? pool.transaction(isolation: .serializable, maxAttempts: 30) { tx in
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
  /// A database filled by schema version 2 migrates to 3: addresses get
  /// their S10 keys (two spellings of one address are kept apart for an
  /// operator to merge), the break-glass list moves onto the members (only
  /// active admins keep it), and old event cursors stay valid.
  @Test func version3CarriesExistingDataOver() throws {
    let db = try TestPostgres.shared.freshDatabase(migrated: false)
    let v2 = try TestFiles.makeTempDirectory(prefix: "roster-v2")
    for f in ["001_init.sql", "002_shared_people.sql"] {
      try FileManager.default.copyItem(atPath: TestFiles.schemaDirectory + "/" + f, toPath: v2 + "/" + f)
    }
    let conn = PGConnection(config: PGConfig(conninfo: db))
    defer { conn.close() }
    _ = try Migrator(directory: v2).migrate(connection: conn)
    try conn.execute(
      script: """
        INSERT INTO users (id, email, name) VALUES ('00000000-0000-7000-8000-000000000001', 'jürgen@seca.com', 'J'),
          ('00000000-0000-7000-8000-000000000002', 'JÜRGEN@seca.com', 'J2'), ('00000000-0000-7000-8000-000000000003', 'Ann@seca.com', 'A');
        INSERT INTO workspaces (id, name, plan) VALUES ('00000000-0000-7000-8000-0000000000a1', 'Seca', 'enterprise');
        INSERT INTO members (id, workspace_id, user_id, role, role_source, status, joined) VALUES
          ('00000000-0000-7000-8000-0000000000b1', '00000000-0000-7000-8000-0000000000a1', '00000000-0000-7000-8000-000000000001', 'admin', 'manual', 'active', 'owner'),
          ('00000000-0000-7000-8000-0000000000b3', '00000000-0000-7000-8000-0000000000a1', '00000000-0000-7000-8000-000000000003', 'viewer', 'manual', 'active', 'invite');
        UPDATE workspaces SET owner_member_id = '00000000-0000-7000-8000-0000000000b1',
          sso_bypass_member_ids = '{00000000-0000-7000-8000-0000000000b1,00000000-0000-7000-8000-0000000000b3}';
        INSERT INTO events (type, workspace_id, member_id) VALUES ('member.created', '00000000-0000-7000-8000-0000000000a1', '00000000-0000-7000-8000-0000000000b1');
        """)
    let oldCursor = try conn.single("SELECT xid::text || '-' || id AS c FROM events").string("c")
    var log: [String] = []
    let applied = try Migrator(directory: TestFiles.schemaDirectory).migrate(connection: conn) { log.append($0) }
    #expect(applied.contains("003_order_and_addresses.sql"))
    let keys = try conn.query("SELECT id, email_key FROM users ORDER BY id").rows.map { $0["email_key"] ?? "" }
    #expect(keys[0] == "jürgen@seca.com")
    #expect(keys[1].hasPrefix("duplicate:"), "the second spelling is kept apart")
    #expect(keys[2] == "ann@seca.com")
    #expect(log.contains { $0.contains("00000000-0000-7000-8000-000000000002") }, "reported for an operator")
    let bypass = try conn.query("SELECT id FROM members WHERE sso_bypass ORDER BY id").rows.compactMap { $0["id"] }
    #expect(bypass == ["00000000-0000-7000-8000-0000000000b1"], "the viewer did not keep break-glass")
    #expect(try conn.single("SELECT feed_key::text || '-' || id AS c FROM events").string("c") == oldCursor)
    // New rows work with the new columns.
    try conn.query("INSERT INTO users (email, email_key, name) VALUES ('new@seca.com', 'new@seca.com', 'N')")
    #expect(throws: PGError.self) { try conn.query("INSERT INTO users (email, email_key, name) VALUES ('NEW@seca.com', 'new@seca.com', 'N')") }
  }

  /// #17: a database filled by schema version 7 migrates to 8 — events and
  /// audit entries move into the journal, feed cursors stay valid, every
  /// row keeps its content and order, and the old names still read and
  /// accept writes (a version-7 process running during the upgrade).
  @Test func version8MovesEventsAndAuditIntoOneJournal() throws {
    let db = try TestPostgres.shared.freshDatabase(migrated: false)
    let v7 = try TestFiles.makeTempDirectory(prefix: "roster-v7")
    for f in try Migrator(directory: TestFiles.schemaDirectory).migrations().filter({ $0.version <= 7 }) {
      try FileManager.default.copyItem(atPath: TestFiles.schemaDirectory + "/" + f.name, toPath: v7 + "/" + f.name)
    }
    let conn = PGConnection(config: PGConfig(conninfo: db))
    defer { conn.close() }
    _ = try Migrator(directory: v7).migrate(connection: conn)
    #expect(try Migrator.currentVersion(connection: conn) == 7)
    try conn.execute(
      script: """
        INSERT INTO workspaces (id, name, plan) VALUES ('00000000-0000-7000-8000-0000000000a1', 'Seca', 'enterprise');
        INSERT INTO events (type, workspace_id, data) SELECT 'domain.verified', '00000000-0000-7000-8000-0000000000a1', jsonb_build_object('n', n)
          FROM generate_series(1, 5) n;
        INSERT INTO audit_log (workspace_id, actor, action, target_type, target_id, before, after)
          SELECT '00000000-0000-7000-8000-0000000000a1', '{"ops": "ann"}', 'domain.add', 'domain', n::text, NULL, jsonb_build_object('n', n)
          FROM generate_series(1, 4) n;
        """)
    let feedSQL: SQL = "SELECT string_agg(feed_key::text || '-' || id || ' ' || type || ' ' || data::text, '|' ORDER BY feed_key, id) AS s FROM events"
    let auditSQL: SQL = "SELECT string_agg(concat_ws(' ', actor::text, action, target_id, after::text, at::text), '|' ORDER BY id) AS s FROM audit_log"
    let feedBefore = try conn.single(feedSQL).string("s")
    let auditBefore = try conn.single(auditSQL).string("s")
    let cursor = try conn.single("SELECT feed_key::text || '-' || id AS c FROM events ORDER BY feed_key, id OFFSET 1 LIMIT 1").string("c")
    let applied = try Migrator(directory: TestFiles.schemaDirectory).migrate(connection: conn)
    #expect(applied.contains("008_journal.sql"))
    #expect(try conn.single(feedSQL).string("s") == feedBefore)
    #expect(try conn.single(auditSQL).string("s") == auditBefore)
    #expect(try conn.query("SELECT count(*) AS n FROM journal").first?["n"] == "9")
    let pool = PGPool(config: PGConfig(conninfo: db), size: 2)
    // The feed after an old cursor is what it was.
    // (Shown once no older transaction runs anywhere in the shared test cluster.)
    let after = try #require(EventLog.Cursor(cursor))
    _ = TestProcess.waitUntil(timeout: 20) { ((try? EventLog.list(pool, after: after, limit: 10, workspaceId: nil))?.events.count ?? 0) >= 3 }
    let page = try EventLog.list(pool, after: after, limit: 10, workspaceId: nil)
    #expect(page.events.count == 3)
    #expect(page.events.first?["data"]?["n"] == 3)
    // A change that is announced and audited is one row, in both views.
    try pool.transaction { tx in
      try AuditLog.record(
        tx, workspaceId: "00000000-0000-7000-8000-0000000000a1", actor: .ops(name: "ann", uid: nil), action: "domain.remove",
        targetType: "domain", targetId: "1", event: .init("domain.removed", data: ["n": 1]))
    }
    #expect(try conn.query("SELECT count(*) AS n FROM journal WHERE type = 'domain.removed' AND action = 'domain.remove'").first?["n"] == "1")
    let audit = try AuditLog.list(pool, workspaceId: "00000000-0000-7000-8000-0000000000a1", after: 0, limit: 50)
    #expect(audit.entries.map { $0["action"]?.stringValue ?? "" } == ["domain.add", "domain.add", "domain.add", "domain.add", "domain.remove"])
    _ = TestProcess.waitUntil(timeout: 20) { (try? EventLog.list(pool, after: .start, limit: 50, workspaceId: nil))?.events.count == 6 }
    #expect(try EventLog.list(pool, after: .start, limit: 50, workspaceId: nil).events.last?["type"] == "domain.removed")
    // What a version-7 process writes through the old names lands in the journal.
    try conn.query("INSERT INTO events (type, workspace_id) VALUES ('member.created', '00000000-0000-7000-8000-0000000000a1')")
    try conn.query(
      "INSERT INTO audit_log (workspace_id, actor, action, target_type) VALUES ('00000000-0000-7000-8000-0000000000a1', '{}', 'x.y', 'workspace')")
    #expect(try conn.query("SELECT data::text AS d FROM journal WHERE type = 'member.created'").first?["d"] == "{}")
    #expect(try conn.query("SELECT count(*) AS n FROM audit_log").first?["n"] == "6")
    // A row that is neither is refused.
    #expect(throws: PGError.self) { try conn.query("INSERT INTO journal (workspace_id) VALUES (NULL)") }
  }

  /// #17: every index earns its place — each carries a comment naming the
  /// query it serves (schema/008_journal.sql), so a new one cannot slip in
  /// without saying why.
  @Test func everyIndexNamesTheQueryItServes() throws {
    let conn = PGConnection(config: PGConfig(conninfo: try TestPostgres.shared.freshDatabase()))
    defer { conn.close() }
    let undocumented = try conn.query(
      """
      SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'i' AND n.nspname = 'public' AND coalesce(obj_description(c.oid, 'pg_class'), '') = ''
      ORDER BY 1
      """
    ).rows.compactMap { $0["relname"] }
    #expect(undocumented == [], "indexes without a comment naming their query: \(undocumented)")
  }

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
