import Foundation
import JSON
import Postgres

/// Who did something: an admin the app vouches for, an operator, a SCIM
/// directory, or Roster itself (sign-in, background jobs).
public enum ActorRef: Sendable, Equatable {
  case member(String)
  case ops(name: String, uid: UInt32?)
  case directory(String)
  case system(String)
  /// The holder of a guided-setup link (G1).
  case setupLink(String)

  public var json: JSONValue {
    switch self {
    case .member(let id): return ["memberId": .string(id)]
    case .ops(let name, let uid): return ["ops": .string(name), "uid": uid.map { .int(Int64($0)) } ?? .null]
    case .directory(let id): return ["directory": .string(id)]
    case .system(let what): return ["system": .string(what)]
    case .setupLink(let id): return ["setupLink": .string(id)]
    }
  }
}

/// The audit log: every mutation with its actor, target and before/after.
public enum AuditLog {
  public static func record(
    _ tx: PGTransaction, workspaceId: String?, actor: ActorRef, action: String, targetType: String, targetId: String?,
    before: JSONValue? = nil, after: JSONValue? = nil
  ) throws {
    try tx.query(
      """
      INSERT INTO audit_log (workspace_id, actor, action, target_type, target_id, before, after)
      VALUES (\(workspaceId)::uuid, \(actor.json)::jsonb, \(action), \(targetType), \(targetId), \(before)::jsonb, \(after)::jsonb)
      """)
  }

  public static func list(_ pool: PGPool, workspaceId: String, after: Int64, limit: Int) throws -> (entries: [JSONValue], next: String?) {
    let rows = try pool.query(
      """
      SELECT id, actor, action, target_type, target_id, before, after, at FROM audit_log
      WHERE workspace_id = \(workspaceId)::uuid AND id > \(after) ORDER BY id LIMIT \(limit + 1)
      """
    ).rows
    let page = rows.prefix(limit)
    let entries: [JSONValue] = try page.map { r in
      [
        "cursor": .string(try r.string("id")), "actor": try r.json("actor"), "action": .string(try r.string("action")),
        "targetType": .orNull(r["target_type"]), "targetId": .orNull(r["target_id"]), "before": try r.json("before"),
        "after": try r.json("after"), "at": .orNull(r.time("at")),
      ]
    }
    return (entries, rows.count > limit ? page.last?["id"] : nil)
  }
}

/// The event feed the app follows.
///
/// Order without a global lock. Each event has a `feed_key`: the id of the
/// transaction that wrote it (xid8), raised to the key of the previous event
/// about the same member (kept on the member row, updated in the statement
/// that inserts the event, so under the member's row lock). A reader sees
/// only events whose key is older than the oldest transaction still
/// running, ordered by (feed_key, id):
/// - no gaps: an event that commits later has a key at least its own
///   transaction id, which is at least that oldest running transaction, so
///   it sorts after everything already shown;
/// - commit order per member: writers of one member's events hold its row
///   lock, so a later writer reads the earlier one's key and sorts after it
///   even when its own transaction id is smaller (it started first and waited).
/// Replaying the feed therefore ends in each member's committed state. The
/// cursor is "KEY-ID".
public enum EventLog {
  public static let channel = "roster_events"

  public static func emit(
    _ tx: PGTransaction, type: String, workspaceId: String?, memberId: String? = nil, data: JSONValue = [:]
  ) throws {
    if let memberId {
      try tx.query(
        """
        WITH k AS (
          UPDATE members SET feed_key = greatest(feed_key, pg_current_xact_id()) WHERE id = \(memberId)::uuid RETURNING feed_key
        ), e AS (
          INSERT INTO events (type, workspace_id, member_id, data, feed_key)
          VALUES (\(type), \(workspaceId)::uuid, \(memberId)::uuid, \(data)::jsonb, coalesce((SELECT feed_key FROM k), pg_current_xact_id()))
          RETURNING id
        )
        SELECT pg_notify('roster_events', id::text) FROM e
        """)
    } else {
      try tx.query(
        """
        WITH e AS (
          INSERT INTO events (type, workspace_id, data) VALUES (\(type), \(workspaceId)::uuid, \(data)::jsonb) RETURNING id
        )
        SELECT pg_notify('roster_events', id::text) FROM e
        """)
    }
  }

  /// One event of the same type for each of many members (set-based: one
  /// statement for ten thousand role changes); `data` per member.
  public static func emitMany(_ tx: PGTransaction, type: String, workspaceId: String, memberIds: [String], data: [JSONValue]) throws {
    guard !memberIds.isEmpty else { return }
    try tx.query(
      """
      WITH input AS (
        SELECT * FROM unnest(\(PGTextArray(memberIds))::uuid[], \(PGTextArray(data.map { JSONWriter.string($0) }))::jsonb[]) WITH ORDINALITY
          AS i(member_id, data, n)
      ), k AS (
        UPDATE members m SET feed_key = greatest(m.feed_key, pg_current_xact_id()) FROM input
        WHERE m.id = input.member_id RETURNING m.id, m.feed_key
      )
      INSERT INTO events (type, workspace_id, member_id, data, feed_key)
      SELECT \(type), \(workspaceId)::uuid, input.member_id, input.data, coalesce(k.feed_key, pg_current_xact_id())
      FROM input LEFT JOIN k ON k.id = input.member_id ORDER BY input.n
      """)
    try tx.query("SELECT pg_notify('roster_events', 'batch')")
  }

  /// A position in the feed; (0, 0) is the beginning.
  public struct Cursor: Sendable, Equatable {
    public var key: UInt64
    public var id: Int64
    public static let start = Cursor(key: 0, id: 0)

    public init(key: UInt64, id: Int64) {
      self.key = key
      self.id = id
    }

    /// "KEY-ID", or "0" for the start.
    public init?(_ text: String) {
      if text == "0" || text.isEmpty {
        self = .start
        return
      }
      let parts = text.split(separator: "-")
      guard parts.count == 2, let x = UInt64(parts[0]), let i = Int64(parts[1]), i >= 0 else { return nil }
      self.init(key: x, id: i)
    }

    public var text: String { "\(key)-\(id)" }
  }

  public static func list(_ pool: PGPool, after: Cursor, limit: Int, workspaceId: String?) throws -> (events: [JSONValue], next: String?) {
    var q: SQL = """
      SELECT id, feed_key::text AS key_text, type, workspace_id, member_id, data, at FROM events
      WHERE (feed_key, id) > (\(String(after.key))::xid8, \(after.id)) AND feed_key < pg_snapshot_xmin(pg_current_snapshot())
      """
    if let workspaceId { q.append(" AND workspace_id = \(workspaceId)::uuid") }
    q.append(" ORDER BY feed_key, id LIMIT \(limit + 1)")
    let rows = try pool.query(q).rows
    let page = rows.prefix(limit)
    var last: String?
    let events: [JSONValue] = try page.map { r in
      let cursor = "\(try r.string("key_text"))-\(try r.string("id"))"
      last = cursor
      return [
        "cursor": .string(cursor), "type": .string(try r.string("type")), "workspaceId": .orNull(r["workspace_id"]),
        "memberId": .orNull(r["member_id"]), "at": .orNull(r.time("at")), "data": try r.json("data"),
      ]
    }
    return (events, rows.count > limit ? last : nil)
  }
}

/// The email outbox (N1): a row written in the same transaction as its cause;
/// the notifications process delivers it.
public enum Outbox {
  public static let channel = "roster_outbox"

  @discardableResult
  public static func enqueue(
    _ tx: PGTransaction, template: String, to: String, data: JSONValue, workspaceId: String?, mailDomain: String
  ) throws -> String {
    let id = UUID().uuidString.lowercased()
    // Stable for the row's whole life: a retry is the same logical message (N2).
    let messageId = "<\(id)@\(mailDomain)>"
    try tx.query(
      """
      INSERT INTO notifications (id, template, to_address, data, workspace_id, message_id)
      VALUES (\(id)::uuid, \(template), \(to), \(data)::jsonb, \(workspaceId)::uuid, \(messageId))
      """)
    try tx.query("SELECT pg_notify('roster_outbox', \(id))")
    return id
  }
}
