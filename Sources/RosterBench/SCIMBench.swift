import Foundation
import JSON
import LoadDriver
import Postgres
import Sockets
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif


enum SCIMBench {
  static func userBody(_ email: String) -> [UInt8] {
    JSONWriter.bytes([
      "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": .string(email),
      "name": ["givenName": "Bench", "familyName": "User"], "emails": [["primary": true, "value": .string(email), "type": "work"]],
      "displayName": "Bench User", "active": true, "externalId": .string(UUID().uuidString),
    ])
  }

  /// Creates a workspace and a directory through provisioning.sock; returns (workspaceId, token).
  static func directory(rpcSocket: String, name: String) throws -> (String, String) {
    let c = try LineClientBox(rpcSocket)
    let w = try c.roundTrip(
      JSONWriter.bytes([
        "jsonrpc": "2.0", "id": 1, "method": "workspace.create",
        "params": ["name": .string(name), "plan": "enterprise", "owner": ["email": .string("owner@\(name).bench")]],
      ]) + [0x0A])
    guard let wid = w["result"]?["workspaceId"]?.stringValue, let owner = w["result"]?["ownerMemberId"]?.stringValue else {
      throw BenchError("workspace.create failed: \(w)")
    }
    let d = try c.roundTrip(
      JSONWriter.bytes([
        "jsonrpc": "2.0", "id": 2, "method": "directory.enable", "params": ["workspaceId": .string(wid), "actor": ["memberId": .string(owner)]],
      ]) + [0x0A])
    guard let token = d["result"]?["bearerToken"]?.stringValue else { throw BenchError("directory.enable failed: \(d)") }
    return (wid, token)
  }

  /// POST /Users per second: Roster, scim2-server, and a raw insert+commit loop.
  /// Creates/s with 1 and 8 clients.
  struct CreateFigures {
    var raw: [Double], roster: [Double], ceiling: [Double], reference: [Double]?
  }

  @discardableResult
  static func create(conninfo: String, rpcSocket: String, scimSocket: String, scim2ServerPort: UInt16?, seconds: Double) throws -> CreateFigures {
    let (_, token) = try directory(rpcSocket: rpcSocket, name: "create\(getpid())")
    let counter = Counter()
    let run = "\(getpid())"
    var rows: [[String]] = []
    // Raw PostgreSQL: one INSERT + COMMIT per row (autocommit), same connection string.
    let setup = PGConnection(config: PGConfig(conninfo: conninfo))
    try setup.execute(script: "DROP TABLE IF EXISTS bench_raw; CREATE TABLE bench_raw (id bigserial PRIMARY KEY, email text NOT NULL, doc jsonb NOT NULL)")
    setup.close()
    var raw: [Double] = []
    for clients in [1, 8] {
      let (rps, _) = closedLoop(clients: clients, seconds: seconds) {
        let conn = PGConnection(config: PGConfig(conninfo: conninfo))
        let box = UncheckedBox(conn)
        return {
          let n = counter.next()
          try box.value.query("INSERT INTO bench_raw (email, doc) VALUES (\("raw\(n)@bench"), \(JSONValue.object(["n": .int(Int64(n))]))::jsonb)")
        }
      }
      raw.append(rps)
    }
    rows.append(["raw PostgreSQL INSERT + COMMIT", fmt(raw[0], 0), fmt(raw[1], 0)])
    var roster: [Double] = []
    for clients in [1, 8] {
      let (rps, _) = closedLoop(clients: clients, seconds: seconds) {
        let http = try HTTPClient(unix: scimSocket, token: token)
        return {
          let (status, body) = try http.request("POST", "/scim/v2/Users", body: userBody("u\(counter.next())-\(run)@create.bench"))
          if status != 201 { throw BenchError("POST /Users → \(status) \(String(decoding: body, as: UTF8.self))") }
        }
      }
      roster.append(rps)
    }
    rows.append(["Roster POST /Users (scim.sock)", fmt(roster[0], 0), fmt(roster[1], 0)])
    // The same writes as Roster's single statement, sent straight to PostgreSQL:
    // the ceiling for this data model (user, membership, SCIM row, and one journal row
    // that is both the event and the audit entry).
    let (cw, _) = try directory(rpcSocket: rpcSocket, name: "ceiling\(getpid())")
    let probe = PGConnection(config: PGConfig(conninfo: conninfo))
    let cd = try probe.single("SELECT id FROM directories WHERE workspace_id = \(cw)::uuid").string("id")
    probe.close()
    var ceiling: [Double] = []
    for clients in [1, 8] {
      let (rps, _) = closedLoop(clients: clients, seconds: seconds) {
        let box = UncheckedBox(PGConnection(config: PGConfig(conninfo: conninfo)))
        return {
          let email = "c\(counter.next())-\(run)@ceiling.bench"
          let doc = JSONValue.object(["emails": [["value": .string(email), "primary": true]], "active": true])
          try box.value.query(
            """
            WITH w AS (SELECT id, sso_default_role FROM workspaces WHERE id = \(cw)::uuid),
            u AS (INSERT INTO users (email, name) VALUES (\(email), 'Bench') RETURNING id),
            m AS (INSERT INTO members (workspace_id, user_id, role, role_source, status, joined)
                  SELECT w.id, u.id, w.sso_default_role, 'default', 'active', 'scim' FROM w, u RETURNING id, role),
            s AS (INSERT INTO scim_users (member_id, workspace_id, directory_id, user_name, active, email_values, resource)
                  SELECT m.id, \(cw)::uuid, \(cd)::uuid, \(email), true, ARRAY[\(email)], \(doc)::jsonb FROM m RETURNING member_id),
            j AS (INSERT INTO journal (workspace_id, member_id, type, data, actor, action, target_type, target_id, after)
                  SELECT \(cw)::uuid, m.id, 'member.created', '{}'::jsonb, '{}'::jsonb, 'bench', 'member', m.id::text, \(doc)::jsonb FROM m)
            SELECT member_id FROM s
            """)
        }
      }
      ceiling.append(rps)
    }
    rows.append(["the same writes as one SQL statement, no HTTP (ceiling)", fmt(ceiling[0], 0), fmt(ceiling[1], 0)])
    print("Roster / ceiling of its own writes: \(fmt(100 * roster[0] / ceiling[0], 0))% (1 client), \(fmt(100 * roster[1] / ceiling[1], 0))% (8 clients)")
    var reference: [Double]?
    if let port = scim2ServerPort {
      var ref: [Double] = []
      for clients in [1, 8] {
        let (rps, _) = closedLoop(clients: clients, seconds: seconds) {
          let http = try HTTPClient(port: port, token: "benchtoken")
          return {
            let (status, _) = try http.request("POST", "/Users", body: userBody("u\(counter.next())-\(run)@ref.bench"))
            if status != 201 { throw BenchError("scim2-server POST /Users → \(status)") }
          }
        }
        ref.append(rps)
      }
      rows.append(["scim2-server 0.8.3 POST /Users (in memory, TCP)", fmt(ref[0], 0), fmt(ref[1], 0)])
      print("Roster / scim2-server: \(fmt(roster[0] / ref[0], 1))× (1 client), \(fmt(roster[1] / ref[1], 1))× (8 clients)")
      reference = ref
    }
    print("Roster / raw insert+commit: \(fmt(100 * roster[0] / raw[0], 0))% (1 client), \(fmt(100 * roster[1] / raw[1], 0))% (8 clients)")
    print()
    table(["what", "creates/s, 1 client", "creates/s, 8 clients"], rows)
    return CreateFigures(raw: raw, roster: roster, ceiling: ceiling, reference: reference)
  }

  /// Seeds `total` SCIM users into a new directory with set-based SQL.
  static func seedUsers(conninfo: String, rpcSocket: String, total: Int) throws -> (workspace: String, token: String) {
    let (wid, token) = try directory(rpcSocket: rpcSocket, name: "lookup\(total)x\(getpid())")
    let conn = PGConnection(config: PGConfig(conninfo: conninfo, statementTimeoutMilliseconds: 0))
    defer { conn.close() }
    let started = now()
    let did = try conn.single("SELECT id FROM directories WHERE workspace_id = \(wid)::uuid").string("id")
    let batch = 100_000
    var done = 0
    while done < total {
      let from = done + 1
      let to = min(done + batch, total)
      _ = try PGPool.runTransaction(conn, maxAttempts: 1) { tx in
        try tx.query(
          """
          WITH s AS (
            SELECT roster_uuid7() AS uid, roster_uuid7() AS mid, 'user' || i || '@w' || \(wid)::text || '.bench' AS email
            FROM generate_series(\(from)::int, \(to)::int) i
          ), u AS (
            INSERT INTO users (id, email, name) SELECT uid, email, 'Bench User' FROM s
          ), m AS (
            INSERT INTO members (id, workspace_id, user_id, role, role_source, status, joined)
            SELECT mid, \(wid)::uuid, uid, 'creator', 'default', 'active', 'scim' FROM s
          )
          INSERT INTO scim_users (member_id, workspace_id, directory_id, user_name, external_id, active, display_name, email_values, resource)
          SELECT mid, \(wid)::uuid, \(did)::uuid, email, 'ext-' || email, true, 'Bench User', ARRAY[email],
                 jsonb_build_object('name', jsonb_build_object('givenName', 'Bench', 'familyName', 'User'),
                                    'emails', jsonb_build_array(jsonb_build_object('value', email, 'type', 'work', 'primary', true)),
                                    'displayName', 'Bench User', 'active', true, 'externalId', 'ext-' || email)
          FROM s
          """)
      }
      done = to
    }
    try conn.execute(script: "ANALYZE users; ANALYZE members; ANALYZE scim_users")
    print("seeded \(total) SCIM users in \(fmt(now() - started, 1)) s")
    return (wid, token)
  }

  /// GET /Users?filter=userName eq "…" latency over scim.sock.
  static func lookup(conninfo: String, rpcSocket: String, scimSocket: String, sizes: [Int], seconds: Double) throws {
    var rows: [[String]] = []
    for total in sizes {
      let (wid, token) = try seedUsers(conninfo: conninfo, rpcSocket: rpcSocket, total: total)
      let counter = Counter()
      let (rps, lat) = closedLoop(clients: 1, seconds: seconds) {
        let http = try HTTPClient(unix: scimSocket, token: token)
        return {
          let i = 1 + (counter.next() * 7919) % total
          let filter = "userName%20eq%20%22USER\(i)%40W\(wid)%2EBENCH%22"
          let (status, body) = try http.request("GET", "/scim/v2/Users?filter=\(filter)")
          guard status == 200, String(decoding: body, as: UTF8.self).contains("\"totalResults\":1") else {
            throw BenchError("lookup failed: \(status) \(String(decoding: body.prefix(300), as: UTF8.self))")
          }
        }
      }
      rows.append([String(total), fmt(rps, 0), fmt(lat.percentile(50) / 1000, 2), fmt(lat.percentile(99) / 1000, 2)])
    }
    table(["SCIM users in the workspace", "lookups/s (1 client)", "p50 ms", "p99 ms"], rows)
  }

  /// One PATCH that adds 10,000 members to a group.
  /// Returns the ms of the PATCH on the group mapped to a role.
  @discardableResult
  static func bigPatch(conninfo: String, rpcSocket: String, scimSocket: String, members: Int) throws -> Double {
    let (wid, token) = try seedUsers(conninfo: conninfo, rpcSocket: rpcSocket, total: members)
    let conn = PGConnection(config: PGConfig(conninfo: conninfo))
    let ids = try conn.query("SELECT member_id FROM scim_users WHERE workspace_id = \(wid)::uuid").rows.compactMap { $0["member_id"] }
    conn.close()
    let http = try HTTPClient(unix: scimSocket, token: token)
    var rows: [[String]] = []
    var mappedMs = 0.0
    for mapped in [false, true] {
      let (status, body) = try http.request(
        "POST", "/scim/v2/Groups", body: JSONWriter.bytes(["schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": .string("Big \(mapped)")]))
      guard status == 201, let gid = try JSONParser.parse(body)["id"]?.stringValue else { throw BenchError("group create failed") }
      if mapped {
        let c = try LineClientBox(rpcSocket)
        let owner = try PGConnection(config: PGConfig(conninfo: conninfo)).single("SELECT owner_member_id FROM workspaces WHERE id = \(wid)::uuid").string("owner_member_id")
        let r = try c.roundTrip(
          JSONWriter.bytes([
            "jsonrpc": "2.0", "id": 1, "method": "group.mapRole",
            "params": ["workspaceId": .string(wid), "groupId": .string(gid), "role": "admin", "priority": 1, "actor": ["memberId": .string(owner)]],
          ]) + [0x0A])
        if r["error"] != nil { throw BenchError("mapRole failed: \(r)") }
      }
      let patch = JSONWriter.bytes([
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [["op": "add", "path": "members", "value": .array(ids.map { ["value": .string($0)] })]],
      ])
      let t0 = now()
      let (ps, pb) = try http.request("PATCH", "/scim/v2/Groups/\(gid)", body: patch)
      let elapsed = now() - t0
      if mapped { mappedMs = elapsed * 1000 }
      guard ps < 300 else { throw BenchError("PATCH failed: \(ps) \(String(decoding: pb.prefix(300), as: UTF8.self))") }
      rows.append([
        mapped ? "group mapped to a role (every member's role recomputed, 10,000 role_changed events)" : "unmapped group",
        String(ids.count), String(patch.count / 1024), fmt(elapsed * 1000, 0),
      ])
    }
    table(["PATCH add members", "members", "body KiB", "ms"], rows)
    return mappedMs
  }
}
