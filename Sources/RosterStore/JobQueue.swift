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
      try tx.query("SELECT pg_notify('roster_jobs', \(try row.string("id")))")
      return try row.string("id")
    }
    return try tx.single("SELECT id FROM jobs WHERE unique_key = \(uniqueKey) AND status IN ('queued', 'running')", "the active job").string("id")
  }
}
