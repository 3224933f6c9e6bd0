import Foundation
import JSON
import Postgres

/// `auth.signIn` with 100,000 members in 1,000 workspaces.
enum SignInBench {
  static let workspaces = 1000
  static let membersPerWorkspace = 100

  /// Seeds with set-based SQL: 1,000 Enterprise workspaces with a verified
  /// domain and SSO, 100 members each; plus one Starter workspace per 10 users.
  static func seed(conninfo: String) throws {
    let conn = PGConnection(config: PGConfig(conninfo: conninfo, statementTimeoutMilliseconds: 0))
    if let r = try conn.query("SELECT count(*) AS n FROM workspaces WHERE name LIKE 'bench-%' AND plan = 'enterprise'").first, r["n"] == String(workspaces) {
      print("already seeded")
      return
    }
    let started = now()
    try conn.execute(
      script: """
        BEGIN;
        INSERT INTO workspaces (id, name, plan, sso_connection, sso_configured_at, sso_tested, enforce_sso, domain_capture)
        SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'bench-' || i, 'enterprise',
               '{"protocol":"oidc","issuer":"https://login.bench","clientId":"c"}', now(), true, (i % 2 = 0), true
        FROM generate_series(1, \(workspaces)) i;
        INSERT INTO domains (workspace_id, domain, method, status, verified_at)
        SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, 'w' || i || '.bench', 'dns', 'verified', now()
        FROM generate_series(1, \(workspaces)) i;
        INSERT INTO users (id, email, name)
        SELECT ('00000000-0000-4000-9000-' || lpad(to_hex(u), 12, '0'))::uuid,
               'user' || u || '@w' || (1 + u % \(workspaces)) || '.bench', 'User ' || u
        FROM generate_series(1, \(workspaces * membersPerWorkspace)) u;
        INSERT INTO members (workspace_id, user_id, role, role_source, status, joined, sso_linked)
        SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(1 + u % \(workspaces)), 12, '0'))::uuid,
               ('00000000-0000-4000-9000-' || lpad(to_hex(u), 12, '0'))::uuid,
               CASE WHEN u % 50 = 0 THEN 'admin' WHEN u % 3 = 0 THEN 'viewer' ELSE 'creator' END, 'default',
               CASE WHEN u % 97 = 0 THEN 'deactivated' ELSE 'active' END, 'scim', true
        FROM generate_series(1, \(workspaces * membersPerWorkspace)) u;
        INSERT INTO workspaces (id, name, plan)
        SELECT ('00000000-0000-4000-a000-' || lpad(to_hex(u), 12, '0'))::uuid, 'bench-own-' || u, 'starter'
        FROM generate_series(10, \(workspaces * membersPerWorkspace), 10) u;
        INSERT INTO members (workspace_id, user_id, role, role_source, status, joined)
        SELECT ('00000000-0000-4000-a000-' || lpad(to_hex(u), 12, '0'))::uuid,
               ('00000000-0000-4000-9000-' || lpad(to_hex(u), 12, '0'))::uuid, 'admin', 'manual', 'active', 'owner'
        FROM generate_series(10, \(workspaces * membersPerWorkspace), 10) u;
        COMMIT;
        ANALYZE;
        """)
    print("seeded \(workspaces * membersPerWorkspace) members in \(workspaces) workspaces in \(fmt(now() - started, 1)) s")
  }

  static func run(socket: String, seconds: Double) throws {
    let total = workspaces * membersPerWorkspace
    @Sendable func request(_ i: Int) -> [UInt8] {
      let u = 1 + (i * 7919) % total
      let ws = 1 + u % workspaces
      let sso = i % 4 == 0
      var params: JSONValue = ["email": .string("user\(u)@w\(ws).bench"), "method": sso ? "sso" : "password"]
      if sso {
        params = ["email": .string("user\(u)@w\(ws).bench"), "method": "sso",
                  "workspaceId": .string("00000000-0000-4000-8000-" + String(String(ws, radix: 16)).leftPadded(12))]
      }
      return JSONWriter.bytes(["jsonrpc": "2.0", "id": 1, "method": "auth.signIn", "params": params]) + [0x0A]
    }
    var rows: [[String]] = []
    for clients in [1, 4, 16] {
      let counter = Counter()
      let (rps, lat) = closedLoop(clients: clients, seconds: seconds) {
        let client = try LineClientBox(socket)
        return {
          let line = request(counter.next())
          let reply = try client.roundTrip(line)
          if reply["error"] != nil { throw BenchError("auth.signIn failed: \(reply)") }
        }
      }
      rows.append([String(clients), fmt(rps, 0), fmt(lat.percentile(50) / 1000, 2), fmt(lat.percentile(99) / 1000, 2)])
    }
    table(["clients", "decisions/s", "p50 ms", "p99 ms"], rows)
  }
}

extension String {
  func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
