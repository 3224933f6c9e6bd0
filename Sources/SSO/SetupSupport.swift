import Foundation
import JSON
import JSONRPC
import Postgres
import RosterStore

/// What the guided setup (G2) needs from SSO: Roster's values before any
/// connection exists, the test sign-in, and what came of it.
extension SSOService {
  package struct SPValues: Sendable {
    package let entityId: String
    package let acsURL: String
    package let metadataURL: String
    package let oidcRedirectURI: String
  }

  package func spValues(connectionId id: String) -> SPValues {
    SPValues(entityId: spEntityId(id), acsURL: acsURL(id), metadataURL: spEntityId(id) + "/metadata", oidcRedirectURI: oidcCallbackURL)
  }

  /// The connection id Roster's SAML values are built from. An IT admin
  /// creates the app in the IdP before there is a connection, so the id is
  /// allocated on first sight; sso.configure keeps it.
  package func connectionId(forWorkspace wid: String) throws -> String {
    try ctx.pool.transaction { tx in
      try tx.query("UPDATE workspaces SET sso_connection_id = roster_uuid7() WHERE id = \(wid)::uuid AND sso_connection_id IS NULL")
      return try tx.single("SELECT sso_connection_id FROM workspaces WHERE id = \(wid)::uuid", "the workspace").string("sso_connection_id")
    }
  }

  /// Starts a test sign-in through the workspace's connection; the IdP
  /// sends the browser back to the setup pages, not to the app (G2).
  package func startTest(workspaceId wid: String, setupLinkId: String, returnURL: String) throws -> String {
    guard let w = try ctx.pool.transaction({ tx in try WorkspaceRow.load(tx, wid) }) else { throw RPCError.workspaceNotFound() }
    guard w.ssoConfigured, let connectionId = w.ssoConnectionId, let connection = StoredConnection(w.ssoConnection) else {
      throw RPCError.conflict("sso_not_configured", "Save the identity provider's details first; then the test sign-in can run.")
    }
    return try start(
      workspace: w, connectionId: connectionId, connection: connection, redirectURI: returnURL, appState: nil, codeChallenge: nil,
      loginHint: nil, setupLinkId: setupLinkId
    ).url
  }

  package struct TestResult: Sendable {
    package let traceId: String
    package let at: String?
    package let succeeded: Bool
    package let reason: String?
    package let detail: String?
    package let email: String?
    package let protocolName: String?
    /// What the IdP sent (a success): idpUserId, email, name, groups, attributes.
    package let profile: JSONValue?
    /// The sign-in decision (P9) the test produced.
    package let decision: JSONValue?
  }

  /// A test sign-in's outcome by its trace id, if it belongs to the workspace.
  package func testResult(traceId: String, workspaceId wid: String) throws -> TestResult? {
    guard SSOService.isToken(traceId),
      let t = try ctx.pool.query(
        "SELECT at, outcome, reason, detail, email, protocol FROM sso_traces WHERE trace_id = \(traceId) AND workspace_id = \(wid)::uuid"
      ).first
    else { return nil }
    let code = try ctx.pool.query("SELECT profile, decision FROM sso_codes WHERE trace_id = \(traceId) AND workspace_id = \(wid)::uuid").first
    return TestResult(
      traceId: traceId, at: t.time("at"), succeeded: t["outcome"] == "success", reason: t["reason"], detail: t["detail"], email: t["email"],
      protocolName: t["protocol"], profile: try code?.json("profile"), decision: try code?.json("decision"))
  }
}
