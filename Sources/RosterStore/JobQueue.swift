import Foundation
import JSON
import Postgres
import Vocabulary

/// The durable job queue (R5): rows claimed with FOR UPDATE SKIP LOCKED by
/// the deprovisioning process, woken by NOTIFY roster_jobs.
public enum Jobs {
  public static let channel = "roster_jobs"

  /// Enqueues a job unless one with the same unique key is queued or running;
  /// returns the id of the job that now stands for it.
  @discardableResult
  public static func enqueue(
    _ tx: PGTransaction, kind: JobKind, workspaceId: String, memberId: String?, uniqueKey: String?, payload: JSONValue = [:]
  ) throws -> String {
    if let row = try tx.one(
      """
      INSERT INTO jobs (kind, workspace_id, member_id, unique_key, payload)
      VALUES (\(kind), \(workspaceId)::uuid, \(memberId)::uuid, \(uniqueKey), \(payload)::jsonb)
      ON CONFLICT (unique_key) WHERE status IN ('queued', 'running') DO NOTHING
      RETURNING id
      """)
    {
      tx.notifyAfterCommit("roster_jobs")  // after commit, coalesced (PGNotifySender)
      return try row.string("id")
    }
    return try tx.single("SELECT id FROM jobs WHERE unique_key = \(uniqueKey) AND status IN ('queued', 'running')", "the active job").string("id")
  }
}

/// What a `move_content` job carries (R6): whose content moves from which
/// workspace to which.
public struct MoveContentPayload: Sendable, Equatable {
  public var userId: String
  public var fromWorkspaceId: String
  public var toWorkspaceId: String
  public var fromMemberId: String
  public var toMemberId: String

  public init(userId: String, fromWorkspaceId: String, toWorkspaceId: String, fromMemberId: String, toMemberId: String) {
    self.userId = userId
    self.fromWorkspaceId = fromWorkspaceId
    self.toWorkspaceId = toWorkspaceId
    self.fromMemberId = fromMemberId
    self.toMemberId = toMemberId
  }

  public var json: JSONValue {
    [
      "userId": .string(userId), "fromWorkspaceId": .string(fromWorkspaceId), "toWorkspaceId": .string(toWorkspaceId),
      "fromMemberId": .string(fromMemberId), "toMemberId": .string(toMemberId),
    ]
  }

  /// Nil when a field is missing (a row written by hand, say).
  public init?(_ json: JSONValue) {
    guard let from = json["fromMemberId"]?.stringValue, let to = json["toMemberId"]?.stringValue,
      let fromWs = json["fromWorkspaceId"]?.stringValue, let toWs = json["toWorkspaceId"]?.stringValue
    else { return nil }
    self.init(userId: json["userId"]?.stringValue ?? "", fromWorkspaceId: fromWs, toWorkspaceId: toWs, fromMemberId: from, toMemberId: to)
  }
}

/// What a `deprovision` job carries: why, and who asked.
public struct DeprovisionPayload: Sendable, Equatable {
  public var reason: String
  public var requestedBy: JSONValue

  public init(reason: String, requestedBy: JSONValue) {
    self.reason = reason
    self.requestedBy = requestedBy
  }

  public var json: JSONValue { ["reason": .string(reason), "requestedBy": requestedBy] }
}
