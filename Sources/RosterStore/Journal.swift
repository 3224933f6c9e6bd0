import Foundation
import JSON
import Postgres

/// The journal (schema 8): the event feed and the audit log in one
/// append-only table. A change that is announced and audited is one row.
/// This file is the only writer; `EventLog` reads the feed (view `events`),
/// `AuditLog` the audit entries (view `audit_log`).
public enum Journal {
  /// An event for the feed.
  public struct Event: Sendable {
    public var type: String
    public var memberId: String?
    public var data: JSONValue

    public init(_ type: String, memberId: String? = nil, data: JSONValue = [:]) {
      self.type = type
      self.memberId = memberId
      self.data = data
    }
  }

  /// An audit entry: who did what to which target.
  public struct Audit: Sendable {
    public var actor: ActorRef
    public var action: String
    public var targetType: String
    public var targetId: String?
    public var before: JSONValue?
    public var after: JSONValue?

    public init(actor: ActorRef, action: String, targetType: String, targetId: String?, before: JSONValue? = nil, after: JSONValue? = nil) {
      self.actor = actor
      self.action = action
      self.targetType = targetType
      self.targetId = targetId
      self.before = before
      self.after = after
    }
  }

  /// Wakes feed subscribers in every process once a transaction that wrote
  /// events has committed (`PGTransaction.notifyAfterCommit`; a statement
  /// run outside `PGPool.transaction` calls `PGNotifySender` itself).
  public static let channel = "roster_events"

  /// Writes one row: an event, an audit entry, or both.
  ///
  /// An event about a member takes its place in the feed under that
  /// member's row lock: the member's `feed_key` is raised to this
  /// transaction's id in the same statement (see EventLog for why).
  public static func write(_ tx: PGTransaction, workspaceId: String?, event: Event?, audit: Audit?) throws {
    precondition(event != nil || audit != nil, "a journal row is an event, an audit entry or both")
    let memberId = event?.memberId
    let columns: SQL = """
      \(workspaceId)::uuid, \(memberId)::uuid, \(event?.type), \(event.map { $0.data })::jsonb,
      \(audit.map { $0.actor.json })::jsonb, \(audit?.action), \(audit?.targetType), \(audit?.targetId),
      \(audit?.before)::jsonb, \(audit?.after)::jsonb
      """
    if let memberId {
      try tx.query(
        """
        WITH k AS (
          UPDATE members SET feed_key = greatest(feed_key, pg_current_xact_id()) WHERE id = \(memberId)::uuid RETURNING feed_key
        )
        INSERT INTO journal (\(sql: insertColumns), feed_key)
        VALUES (\(sql: columns), coalesce((SELECT feed_key FROM k), pg_current_xact_id()))
        """)
    } else {
      try tx.query("INSERT INTO journal (\(sql: insertColumns)) VALUES (\(sql: columns))")
    }
    if event != nil { tx.notifyAfterCommit(channel) }
  }

  /// One event of the same type for each of many members (set-based: one
  /// statement for ten thousand role changes); `data` per member.
  public static func writeMany(_ tx: PGTransaction, type: String, workspaceId: String, memberIds: [String], data: [JSONValue]) throws {
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
      INSERT INTO journal (type, workspace_id, member_id, data, feed_key)
      SELECT \(type), \(workspaceId)::uuid, input.member_id, input.data, coalesce(k.feed_key, pg_current_xact_id())
      FROM input LEFT JOIN k ON k.id = input.member_id ORDER BY input.n
      """)
    tx.notifyAfterCommit(channel)
  }

  /// A CTE body for single-statement fast paths that create the member they
  /// write about: one journal row per row of `source` (a CTE name), whose
  /// `id` column is the member (`eventData` may read it as `src`). A new member's feed key is its creating
  /// transaction's id, the default. The caller wakes `channel` after the
  /// statement commits (it knows whether a row was written).
  public static func insertForNewMember(
    from source: StaticString, workspaceId: String, eventType: String, eventData: SQL, audit: Audit
  ) -> SQL {
    var q: SQL = """
      INSERT INTO journal (\(sql: insertColumns))
      SELECT \(workspaceId)::uuid, src.id, \(eventType), \(sql: eventData), \(audit.actor.json)::jsonb, \(audit.action),
             \(audit.targetType), src.id::text, \(audit.before)::jsonb, \(audit.after)::jsonb
      FROM 
      """
    q.append(SQL(stringLiteral: source))
    q.append(" src")
    return q
  }

  /// A CTE body for statements that update members and announce it: one
  /// event per row of `source` (a CTE over `UPDATE members … RETURNING`)
  /// that passes `condition`, in the order of its `n` column, with the
  /// `feed_key` the update gave the member (it must raise it as `write` does).
  /// `data` and `condition` may read the source row as `src`. The caller
  /// marks `channel` for after its commit.
  public static func insertEventsForUpdatedMembers(
    from source: StaticString, type: String, workspaceId: String, data: StaticString, where condition: StaticString
  ) -> SQL {
    var q: SQL = "INSERT INTO journal (type, workspace_id, member_id, data, feed_key) SELECT \(type), \(workspaceId)::uuid, src.id, "
    q.append(SQL(stringLiteral: data))
    q.append(", src.feed_key FROM ")
    q.append(SQL(stringLiteral: source))
    q.append(" src WHERE ")
    q.append(SQL(stringLiteral: condition))
    q.append(" ORDER BY src.n")
    return q
  }

  /// An audit-only CTE body for single-statement paths: one entry per row of `source`.
  public static func insertAudit(from source: StaticString, workspaceId: String?, _ audit: Audit) -> SQL {
    var q: SQL = """
      INSERT INTO journal (workspace_id, actor, action, target_type, target_id, before, after)
      SELECT \(workspaceId)::uuid, \(audit.actor.json)::jsonb, \(audit.action), \(audit.targetType), \(audit.targetId),
             \(audit.before)::jsonb, \(audit.after)::jsonb
      FROM 
      """
    q.append(SQL(stringLiteral: source))
    return q
  }

  static let insertColumns: SQL = "workspace_id, member_id, type, data, actor, action, target_type, target_id, before, after"
}
