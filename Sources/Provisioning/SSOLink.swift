import Foundation
import JSON
import Postgres
import RosterStore

extension ProvisioningService {
  /// S4, set-based: every member who exists now (active or deactivated)
  /// must sign in once via SSO before the workspace recognises them; the
  /// active ones have their sessions revoked (one event each) and get the
  /// "sign in again via SSO" email — all in the configuring transaction. A
  /// deactivated member gets the email when reactivated.
  package func requireSSOLink(_ tx: PGTransaction, workspace w: WorkspaceRow) throws {
    let active = try tx.query(
      """
      UPDATE members SET sso_link_required = true, sso_linked = false, updated_at = now()
      WHERE workspace_id = \(w.id)::uuid AND status IN ('active', 'deactivated') RETURNING id, status
      """
    ).rows.filter { $0["status"] == "active" }.compactMap { $0["id"] }.sorted()
    try EventLog.emitMany(
      tx, type: "member.sessions_revoked", workspaceId: w.id, memberIds: active, data: active.map { _ in ["reason": "sso_configured"] })
    try ctx.enqueueSSOLinkMail(tx, workspace: w, memberIds: active)
  }
}
