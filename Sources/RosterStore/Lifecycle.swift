import Foundation
import JSON
import Postgres
import Vocabulary

/// Membership lifecycle steps shared by SCIM (C6), `deprovision.member` and
/// the jobs: each writes its events and audit entry in the caller's transaction.
public enum Lifecycle {
  /// Deactivation is immediate (C6, R1): sign-in refused, sessions revoked;
  /// the workspace's deprovisioning policy then runs as a durable job.
  /// Returns the job id.
  @discardableResult
  public static func deactivate(_ tx: PGTransaction, member m: MemberRow, actor: ActorRef, reason: String) throws -> String {
    if m.status == .active {
      try tx.query(
        "UPDATE members SET status = 'deactivated', deactivated_at = now(), updated_at = now() WHERE id = \(m.id)::uuid")
      try EventLog.emit(tx, type: "member.sessions_revoked", workspaceId: m.workspaceId, memberId: m.id, data: ["reason": .string(reason)])
      try AuditLog.record(
        tx, workspaceId: m.workspaceId, actor: actor, action: "member.deactivate", targetType: "member", targetId: m.id,
        before: ["status": .string(m.status.rawValue)], after: ["status": "deactivated", "reason": .string(reason)],
        event: .init("member.deactivated", memberId: m.id, data: ["reason": .string(reason)]))
    }
    return try Jobs.enqueue(
      tx, kind: .deprovision, workspaceId: m.workspaceId, memberId: m.id, uniqueKey: "deprovision:\(m.id)",
      payload: DeprovisionPayload(reason: reason, requestedBy: actor.json).json)
  }

  /// C6 `active:true`: a deactivated member is active again; a deleted one
  /// gets a new membership (same id, fresh role, no content). Returns true
  /// when the member must still sign in once via SSO (S4: they existed when
  /// SSO was configured): the caller sends them the email.
  @discardableResult
  public static func reactivate(_ tx: PGTransaction, member m: MemberRow, role: Role, roleSource: RoleSource, actor: ActorRef) throws -> Bool {
    var linkRequired = false
    switch m.status {
    case .deactivated:
      try tx.query("UPDATE members SET status = 'active', deactivated_at = NULL, updated_at = now() WHERE id = \(m.id)::uuid")
      linkRequired = m.ssoLinkRequired && !m.ssoLinked
    case .deleted:
      try tx.query(
        """
        UPDATE members SET status = 'active', joined = 'scim', role = \(role), role_source = \(roleSource), sso_linked = false,
          sso_link_required = false, deactivated_at = NULL, deleted_at = NULL, created_at = now(), updated_at = now()
        WHERE id = \(m.id)::uuid
        """)
    case .active:
      return false
    }
    try AuditLog.record(
      tx, workspaceId: m.workspaceId, actor: actor, action: "member.reactivate", targetType: "member", targetId: m.id,
      before: ["status": .string(m.status.rawValue)], after: ["status": "active"],
      event: .init("member.reactivated", memberId: m.id, data: ["newMembership": .bool(m.status == .deleted)]))
    return linkRequired
  }
}
