import Foundation
import JSON
import Postgres
import RosterStore
import ServiceKit

/// What the jobs do (R1–R3, R5, R6). Everything a job changes happens in the
/// transaction that holds the job's row lock; it is written to be safe to run
/// again (a retried job finds its folder by `created_by_job`, and moves only
/// what the member still owns).
struct JobRunner: Sendable {
  let ctx: ServiceContext

  func run(_ tx: PGTransaction, _ job: JobRow) throws -> JSONValue {
    switch job.kind {
    case .deprovision: return try deprovision(tx, job)
    case .moveContent: return try moveContent(tx, job)
    }
  }

  /// The folder a job creates in a library, created once however often the job runs.
  func folder(_ tx: PGTransaction, job: JobRow, workspaceId: String, owner: String, name: String) throws -> String {
    if let r = try tx.one(
      """
      INSERT INTO folders (workspace_id, owner_member_id, name, created_by_job) VALUES (\(workspaceId)::uuid, \(owner)::uuid, \(name), \(job.id)::uuid)
      ON CONFLICT (created_by_job) DO NOTHING RETURNING id
      """)
    {
      return try r.string("id")
    }
    return try tx.single("SELECT id FROM folders WHERE created_by_job = \(job.id)::uuid", "the job's folder").string("id")
  }

  func deprovision(_ tx: PGTransaction, _ job: JobRow) throws -> JSONValue {
    // Workspace, then member (the one lock order): the policy and its
    // target cannot change while the job acts on them.
    guard let w = try WorkspaceRow.load(tx, job.workspaceId, lock: .share) else { throw JobError("the workspace no longer exists") }
    guard let mid = job.memberId,
      let m = try MemberRow.load(tx, workspaceId: job.workspaceId, memberId: mid, forUpdate: true, includeDeleted: true)
    else { throw JobError("the member no longer exists") }
    switch m.status {
    case .active: return ["skipped": "reactivated before the job ran"]
    case .deleted: return ["skipped": "already deleted"]
    case .deactivated: break
    }
    var result: [String: JSONValue] = ["mode": .string(w.deprovisionMode.rawValue)]
    var summary: [String: JSONValue] = [
      "workspaceName": .string(w.name), "memberEmail": .string(m.email), "memberName": .string(m.name), "mode": .string(w.deprovisionMode.rawValue),
    ]
    switch (w.deprovisionMode, w.deprovisionContent) {
    case (.delete, .transfer):
      // R2, checked again at run time: the target must be an active Admin or Creator.
      guard let tid = w.deprovisionTargetMemberId, tid != m.id,
        let target = try MemberRow.load(tx, workspaceId: w.id, memberId: tid), target.status == .active,
        target.role == .admin || target.role == .creator
      else {
        throw JobError(
          "the transfer target is missing, inactive or a Viewer; choose a new target with deprovision.configure, then job.retry")
      }
      let folderName = "\(m.email) - \(m.name.isEmpty ? m.email : m.name)'s content"
      // A member who owns nothing gets no empty folder in the target's library.
      var fid: String?
      var moved = 0
      if try tx.one("SELECT 1 FROM content WHERE owner_member_id = \(m.id)::uuid LIMIT 1") != nil {
        let folderId = try folder(tx, job: job, workspaceId: w.id, owner: target.id, name: folderName)
        fid = folderId
        // Set-based: one statement moves every item, posted or not.
        moved = try tx.query(
          """
          UPDATE content SET owner_member_id = \(target.id)::uuid, folder_id = \(folderId)::uuid, updated_at = now()
          WHERE owner_member_id = \(m.id)::uuid
          """
        ).affected
      }
      try releaseFolders(tx, of: m.id)
      try markDeleted(tx, m)
      let total = Int64(moved)
      try EventLog.emit(
        tx, type: "content.transferred", workspaceId: w.id, memberId: m.id,
        data: ["count": .int(Int64(moved)), "targetMemberId": .string(target.id), "folderId": .orNull(fid)])
      result["content"] = "transfer"
      result["moved"] = .int(total)
      result["folderId"] = .orNull(fid)
      result["targetMemberId"] = .string(target.id)
      summary["content"] = "transferred"
      summary["count"] = .int(total)
      summary["targetEmail"] = .string(target.email)
      if fid != nil { summary["folderName"] = .string(folderName) }
    case (.delete, _):
      let deleted = try tx.query("DELETE FROM content WHERE owner_member_id = \(m.id)::uuid").affected
      try releaseFolders(tx, of: m.id)
      try markDeleted(tx, m)
      result["content"] = "delete"
      result["deleted"] = .int(Int64(deleted))
      summary["content"] = "deleted"
      summary["count"] = .int(Int64(deleted))
    default:
      // R1: deactivated only; the content stays the member's.
      result["content"] = "kept"
      summary["content"] = "kept"
    }
    for admin in try TargetProtection.admins(tx, workspaceId: w.id) {
      var data = summary
      data["adminName"] = .string(admin.name)
      try ctx.enqueueMail(tx, template: .deprovisionSummary, to: admin.email, data: .object(data), workspaceId: w.id)
    }
    try AuditLog.record(
      tx, workspaceId: w.id, actor: .system("deprovisioning"), action: "member.deprovisioned", targetType: "member", targetId: m.id,
      after: .object(result))
    return .object(result)
  }

  /// Folders of a departing member: content of others inside them is kept
  /// (moved out to no folder), then the folders go.
  func releaseFolders(_ tx: PGTransaction, of memberId: String) throws {
    try tx.query(
      """
      UPDATE content SET folder_id = NULL WHERE folder_id IN (SELECT id FROM folders WHERE owner_member_id = \(memberId)::uuid)
      """)
    try tx.query("DELETE FROM folders WHERE owner_member_id = \(memberId)::uuid")
  }

  func markDeleted(_ tx: PGTransaction, _ m: MemberRow) throws {
    // The row trigger takes a removed member off the break-glass list (S9).
    try tx.query("UPDATE members SET status = 'deleted', deleted_at = now(), updated_at = now() WHERE id = \(m.id)::uuid")
    try EventLog.emit(tx, type: "member.deleted", workspaceId: m.workspaceId, memberId: m.id)
  }

  /// R6: everything the user owns in their own workspace moves into a folder
  /// of their library in the Enterprise workspace that captured them.
  func moveContent(_ tx: PGTransaction, _ job: JobRow) throws -> JSONValue {
    guard let move = MoveContentPayload(job.payload) else { throw JobError("the job's payload is incomplete") }
    let (from, to, fromWs, toWs) = (move.fromMemberId, move.toMemberId, move.fromWorkspaceId, move.toWorkspaceId)
    guard let source = try WorkspaceRow.load(tx, fromWs), try WorkspaceRow.load(tx, toWs) != nil else {
      throw JobError("a workspace no longer exists")
    }
    guard let toMember = try MemberRow.load(tx, workspaceId: toWs, memberId: to, forUpdate: true), toMember.status == .active,
      let fromMember = try MemberRow.load(tx, workspaceId: fromWs, memberId: from, forUpdate: true), fromMember.status == .active
    else { throw JobError("the user is no longer an active member of both workspaces; reactivate them in both, then job.retry") }
    // Nothing to move (a repeated request): no empty folder.
    guard try tx.one("SELECT 1 FROM content WHERE owner_member_id = \(from)::uuid AND workspace_id = \(fromWs)::uuid LIMIT 1") != nil else {
      return ["moved": 0, "folderId": .null]
    }
    let fid = try folder(tx, job: job, workspaceId: toWs, owner: to, name: "\(source.name) content")
    let moved = try tx.query(
      """
      UPDATE content SET workspace_id = \(toWs)::uuid, owner_member_id = \(to)::uuid, folder_id = \(fid)::uuid, updated_at = now()
      WHERE owner_member_id = \(from)::uuid AND workspace_id = \(fromWs)::uuid
      """
    ).affected
    try releaseFolders(tx, of: from)
    try AuditLog.record(
      tx, workspaceId: toWs, actor: .system("content-move"), action: "content.move_to_workspace", targetType: "member", targetId: to,
      after: ["moved": .int(Int64(moved)), "fromWorkspaceId": .string(fromWs), "folderId": .string(fid)],
      event: .init("content.moved", memberId: to, data: ["count": .int(Int64(moved)), "fromWorkspaceId": .string(fromWs), "folderId": .string(fid)]))
    return ["moved": .int(Int64(moved)), "folderId": .string(fid)]
  }
}
