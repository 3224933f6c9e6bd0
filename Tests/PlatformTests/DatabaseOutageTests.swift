import Foundation
import JSON
import Postgres
import RosterStore
import RosterTestSupport
import Testing

/// Stops and starts a private PostgreSQL cluster under a running process.
@Suite struct DatabaseOutageTests {
  @Test func healthReportsDownWithinASecondAndRecoversByItself() throws {
    let pg = try TestPostgres(withTemplate: true)
    defer { pg.destroy() }
    let db = try pg.freshDatabase()
    let p = try RunningProcess("provisioning", database: db)
    defer { p.stop() }
    let c = try p.client()
    #expect(try c.call("system.health")["database"] == "ok")

    try pg.stopServer()
    let stoppedAt = Date()
    #expect(TestProcess.waitUntil(timeout: 1) { (try? c.call("system.health")["database"]) == "down" })
    #expect(Date().timeIntervalSince(stoppedAt) < 1)
    // Answers at once while down.
    let t0 = Date()
    let down = try c.call("system.health")
    #expect(Date().timeIntervalSince(t0) < 0.2)
    #expect(down["status"] == "degraded")

    // A pooled connection made before the outage recovers too.
    let pool = PGPool(config: PGConfig(conninfo: db), size: 1)
    try pg.startServer()
    #expect(TestProcess.waitUntil(timeout: 5) { (try? c.call("system.health")["database"]) == "ok" })
    #expect(try pool.query("SELECT 1 AS one").first?["one"] == "1")
  }

  @Test func pooledConnectionsReconnectAfterARestart() throws {
    let pg = try TestPostgres(withTemplate: true)
    defer { pg.destroy() }
    let pool = PGPool(config: PGConfig(conninfo: try pg.freshDatabase()), size: 2)
    #expect(try pool.query("SELECT 1 AS one").first?["one"] == "1")
    try pg.stopServer()
    #expect(throws: PGError.self) { try pool.transaction { tx in try tx.query("SELECT 1") } }
    try pg.startServer()
    #expect(try pool.transaction { tx in try tx.one("SELECT 2 AS two")?["two"] } == "2")
    #expect(pool.reconnects >= 1)
  }
}
