import Foundation
import JSON
import Postgres

/// The event feed the app follows: the journal rows that are events (the
/// view `events`; `Journal` writes them).
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
  public static let channel = Journal.channel

  /// An event without an audit entry (see `AuditLog.record(…, event:)` for
  /// a change that is both).
  public static func emit(
    _ tx: PGTransaction, type: String, workspaceId: String?, memberId: String? = nil, data: JSONValue = [:]
  ) throws {
    try Journal.write(tx, workspaceId: workspaceId, event: .init(type, memberId: memberId, data: data), audit: nil)
  }

  /// One event of the same type for each of many members, in one statement.
  public static func emitMany(_ tx: PGTransaction, type: String, workspaceId: String, memberIds: [String], data: [JSONValue]) throws {
    try Journal.writeMany(tx, type: type, workspaceId: workspaceId, memberIds: memberIds, data: data)
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

  /// A page of the feed after `after`, and the cursor to poll from next —
  /// never nil: the last event of a full page; once caught up, the tail of
  /// the whole feed (so a filtered follower does not rescan others' events),
  /// and never before `after`. Page and tail come from one statement, hence
  /// one snapshot: nothing between them can be skipped.
  public static func list(_ pool: PGPool, after: Cursor, limit: Int, workspaceId: String?, types: [String]? = nil) throws -> (events: [JSONValue], next: String) {
    var page: SQL = """
      SELECT e.id, e.feed_key::text AS key_text, e.type, e.workspace_id, e.member_id, e.data, e.at, false AS tail FROM events e, h
      WHERE (e.feed_key, e.id) > (\(String(after.key))::xid8, \(after.id)) AND e.feed_key < h.xmin
      """
    if let workspaceId { page.append(" AND e.workspace_id = \(workspaceId)::uuid") }
    if let types { page.append(" AND e.type = ANY(\(PGTextArray(types))::text[])") }
    page.append(" ORDER BY e.feed_key, e.id LIMIT \(limit + 1)")
    var q: SQL = "WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin), p AS ("
    q.append(page)
    q.append(
      """
      ), t AS (
        SELECT e.id, e.feed_key::text AS key_text, NULL::text AS type, NULL::uuid AS workspace_id, NULL::uuid AS member_id, NULL::jsonb AS data,
               NULL::timestamptz AS at, true AS tail
        FROM events e, h WHERE e.feed_key < h.xmin ORDER BY e.feed_key DESC, e.id DESC LIMIT 1
      )
      SELECT * FROM p UNION ALL SELECT * FROM t
      """)
    let rows = try pool.query(q).rows
    let pageRows = rows.filter { $0["tail"] == "f" }
    var events: [JSONValue] = []
    var next = after
    for r in pageRows.prefix(limit) {
      let cursor = Cursor(key: UInt64(try r.string("key_text")) ?? 0, id: try r.int("id"))
      next = cursor
      events.append([
        "cursor": .string(cursor.text), "type": .string(try r.string("type")), "workspaceId": .orNull(r["workspace_id"]),
        "memberId": .orNull(r["member_id"]), "at": .orNull(r.time("at")), "data": try r.json("data"),
      ])
    }
    if pageRows.count <= limit, let t = rows.first(where: { $0["tail"] == "t" }) {
      let tail = Cursor(key: UInt64(try t.string("key_text")) ?? 0, id: try t.int("id"))
      if tail > next { next = tail }
    }
    return (events, next == .start ? "0" : next.text)
  }
}

extension EventLog {
  /// The feed's tail: the cursor after which only events not yet visible can
  /// come ("now"). Every later event has a key at or above the oldest
  /// running transaction, which is above this cursor.
  public static func tail(_ pool: PGPool) throws -> String {
    guard
      let r = try pool.query(
        "SELECT feed_key::text AS key_text, id FROM events WHERE feed_key < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY feed_key DESC, id DESC LIMIT 1"
      ).first
    else { return "0" }
    return Cursor(key: UInt64(try r.string("key_text")) ?? 0, id: try r.int("id")).text
  }
}

extension EventLog {
  /// How many visible events after `after` match, counting at most `limit`
  /// (how far behind a subscriber is).
  public static func count(_ pool: PGPool, after: Cursor, workspaceId: String?, types: [String]?, limit: Int) throws -> Int {
    var q: SQL = """
      SELECT count(*) AS n FROM (SELECT 1 FROM events e
      WHERE (e.feed_key, e.id) > (\(String(after.key))::xid8, \(after.id)) AND e.feed_key < pg_snapshot_xmin(pg_current_snapshot())
      """
    if let workspaceId { q.append(" AND e.workspace_id = \(workspaceId)::uuid") }
    if let types { q.append(" AND e.type = ANY(\(PGTextArray(types))::text[])") }
    q.append(" LIMIT \(limit)) s")
    return Int(try pool.query(q).first?.int("n") ?? 0)
  }
}

extension EventLog.Cursor: Comparable {
  public static func < (a: Self, b: Self) -> Bool { (a.key, a.id) < (b.key, b.id) }
}
