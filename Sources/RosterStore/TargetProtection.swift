import JSON
import Postgres
import Vocabulary

/// R4: the member named as the transfer target of a Delete + Transfer policy
/// cannot be deactivated, deleted or demoted to Viewer.
public struct TargetProtectedError: Error, Sendable {
  public enum Attempt: String, Sendable {
    case deactivate = "deactivate"
    case delete = "delete"
    case demote = "demote to Viewer"
  }
  public let workspaceId: String
  public let memberId: String
  public let attempt: Attempt

  public var message: String {
    "This member is the transfer target of the workspace's deprovisioning policy and cannot be \(attempt == .demote ? "demoted to Viewer" : attempt == .delete ? "deleted" : "deactivated"); choose a new target first. The workspace's admins have been emailed."
  }
}

public enum TargetProtection {
  public static func isTarget(_ w: WorkspaceRow, memberId: String) -> Bool {
    w.deprovisionMode == .delete && w.deprovisionContent == .transfer && w.deprovisionTargetMemberId == memberId
  }

  public static func check(_ w: WorkspaceRow, memberId: String, attempt: TargetProtectedError.Attempt) throws {
    if isTarget(w, memberId: memberId) {
      throw TargetProtectedError(workspaceId: w.id, memberId: memberId, attempt: attempt)
    }
  }

  /// The workspace's active admins: who is told about a refused attempt, a break-glass sign-in or a finished deprovisioning.
  public static func admins(_ tx: PGTransaction, workspaceId: String) throws -> [MemberRow] {
    try tx.query(MemberRow.select + " WHERE m.workspace_id = \(workspaceId)::uuid AND m.role = 'admin' AND m.status = 'active' ORDER BY m.id")
      .rows.map(MemberRow.init)
  }
}

/// A workspace keeps at least one active admin.
public struct LastAdminError: Error, Sendable {}

public enum AdminGuard {
  /// Throws when `member` is the workspace's last active admin and is about to stop being one.
  public static func ensureNotLastAdmin(_ tx: PGTransaction, member m: MemberRow) throws {
    guard m.role == .admin, m.status == .active else { return }
    let admins = try tx.single("SELECT count(*) AS n FROM members WHERE workspace_id = \(m.workspaceId)::uuid AND role = 'admin' AND status = 'active'")
    if try admins.int("n") <= 1 { throw LastAdminError() }
  }
}
