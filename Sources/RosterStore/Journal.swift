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

  public var json: JSONValue {
    switch self {
    case .member(let id): return ["memberId": .string(id)]
    case .ops(let name, let uid): return ["ops": .string(name), "uid": uid.map { .int(Int64($0)) } ?? .null]
    case .directory(let id): return ["directory": .string(id)]
    case .system(let what): return ["system": .string(what)]
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
/// Ordering without a global lock: each event carries the id of the
/// transaction that wrote it (xid8). A reader sees only events of
/// transactions older than the oldest one still running, ordered by
/// (xid, id). Every event that commits later has a larger xid than anything
/// already shown, so the feed only grows at its end and a cursor never skips
/// an event, while writers commit in parallel. The cursor is "XID-ID".
public enum EventLog {
  public static let channel = "roster_events"

  public static func emit(
    _ tx: PGTransaction, type: String, workspaceId: String?, memberId: String? = nil, data: JSONValue = [:]
  ) throws {
    try tx.query(
      """
      WITH e AS (
        INSERT INTO events (type, workspace_id, member_id, data)
        VALUES (\(type), \(workspaceId)::uuid, \(memberId)::uuid, \(data)::jsonb) RETURNING id
      )
      SELECT pg_notify('roster_events', id::text) FROM e
      """)
  }

  /// A position in the feed; (0, 0) is the beginning.
  public struct Cursor: Sendable, Equatable {
    public var xid: UInt64
    public var id: Int64
    public static let start = Cursor(xid: 0, id: 0)

    public init(xid: UInt64, id: Int64) {
      self.xid = xid
      self.id = id
    }

    /// "XID-ID", or "0" for the start.
    public init?(_ text: String) {
      if text == "0" || text.isEmpty {
        self = .start
        return
      }
      let parts = text.split(separator: "-")
      guard parts.count == 2, let x = UInt64(parts[0]), let i = Int64(parts[1]), i >= 0 else { return nil }
      self.init(xid: x, id: i)
    }

    public var text: String { "\(xid)-\(id)" }
  }

  public static func list(_ pool: PGPool, after: Cursor, limit: Int, workspaceId: String?) throws -> (events: [JSONValue], next: String?) {
    var q: SQL = """
      SELECT id, xid::text AS xid_text, type, workspace_id, member_id, data, at FROM events
      WHERE (xid, id) > (\(String(after.xid))::xid8, \(after.id)) AND xid < pg_snapshot_xmin(pg_current_snapshot())
      """
    if let workspaceId { q.append(" AND workspace_id = \(workspaceId)::uuid") }
    // Order by the xid8 column itself (an output alias named xid would sort as text).
    q.append(" ORDER BY events.xid, events.id LIMIT \(limit + 1)")
    let rows = try pool.query(q).rows
    let page = rows.prefix(limit)
    var last: String?
    let events: [JSONValue] = try page.map { r in
      let cursor = "\(try r.string("xid_text"))-\(try r.string("id"))"
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
