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

/// The audit log: every mutation with its actor, target and before/after —
/// the journal rows that are audit entries (the view `audit_log`).
public enum AuditLog {
  /// Records a mutation; with `event`, the same row is also that change's
  /// event in the feed (one write for a change that is both).
  public static func record(
    _ tx: PGTransaction, workspaceId: String?, actor: ActorRef, action: String, targetType: String, targetId: String?,
    before: JSONValue? = nil, after: JSONValue? = nil, event: Journal.Event? = nil
  ) throws {
    try Journal.write(
      tx, workspaceId: workspaceId, event: event,
      audit: .init(actor: actor, action: action, targetType: targetType, targetId: targetId, before: before, after: after))
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
