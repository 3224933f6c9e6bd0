import Addresses
import JSONRPC
import Crypto
import Foundation
import HTTP1
import JSON
import Postgres
import RosterStore
import SAML
import WebPages

extension SSOService {
  /// The connection behind an id in a path, when it is a SAML one.
  func samlConnection(_ rawId: String) throws -> (WorkspaceRow, StoredConnection.SAMLSettings)? {
    guard isUUID(rawId) else { return nil }
    let id = rawId.lowercased()
    if let (w, c) = connections.lookup(id) {
      guard case .saml(let s) = c else { return nil }
      return (w, s)
    }
    guard let row = try ctx.pool.query(WorkspaceRow.select + " WHERE sso_connection_id = \(id)::uuid").first, let w = try? WorkspaceRow(row),
      let c = StoredConnection(w.ssoConnection)
    else { return nil }
    connections.store(id, workspace: w, connection: c)
    guard case .saml(let s) = c else { return nil }
    return (w, s)
  }

  /// GET /sso/saml/{connectionId}/metadata (P1).
  func metadata(connectionId: String) throws -> HTTPResponse {
    // Also for an id the guided setup allocated before any connection:
    // some IdPs (Google, others) want the SP metadata first.
    func allocated() throws -> Bool {
      guard isUUID(connectionId) else { return false }
      return try ctx.pool.query(
        "SELECT 1 FROM workspaces WHERE sso_connection_id = \(connectionId.lowercased())::uuid AND sso_connection IS NULL"
      ).first != nil
    }
    guard try samlConnection(connectionId) != nil || (try allocated()) else {
      return WebPage.error(status: 404, title: "No such connection", message: "There is no SAML connection with this id.", traceId: nil)
    }
    let id = connectionId.lowercased()
    let xml = SPMetadata.xml(entityId: spEntityId(id), acsURL: acsURL(id))
    return HTTPResponse(status: 200, headers: [("Content-Type", "application/samlmetadata+xml; charset=utf-8")], body: Array(xml.utf8))
  }

  /// POST /sso/saml/{connectionId}/acs (P2–P6, then P8–P9).
  func acs(connectionId rawId: String, request r: HTTPRequest) throws -> WebOutcome {
    var attempt = Attempt(workspaceId: nil, connectionId: nil, protocolName: "saml", email: nil)
    guard let (w, settings) = try samlConnection(rawId) else {
      return fail(attempt, request: nil, SSOFailure("unknown_connection", "No SAML connection has the id in this ACS URL.", status: 404))
    }
    let connectionId = rawId.lowercased()
    attempt.workspaceId = w.id
    attempt.connectionId = connectionId
    guard w.ssoConfigured else {
      return fail(attempt, request: nil, SSOFailure("sso_not_configured", "The workspace's SSO is not active (plan or configuration)."))
    }
    guard r.body.count <= SAMLResponseValidator.maxBytes * 2 else {
      return fail(attempt, request: nil, SSOFailure("too_large", "The posted form is larger than the ACS accepts.", status: 413))
    }
    let form = HTTPRequest.parseQuery(String(decoding: r.body, as: UTF8.self))
    let relayState = form.first { $0.0 == "RelayState" }?.1
    // The flow's pending request, if RelayState names one: where a refusal
    // can be sent (P8). It is consumed only through InResponseTo below.
    let pending = try relayState.flatMap { rs -> PendingRequest? in
      guard SSOService.isToken(rs) else { return nil }
      return try ctx.pool.query("SELECT " + Self.requestColumns + " FROM sso_requests WHERE id = \(rs) AND protocol = 'saml' AND consumed_at IS NULL")
        .first.map(PendingRequest.init).flatMap { $0.connectionId == connectionId ? $0 : nil }
    }
    func refuse(_ f: SSOFailure) throws -> WebOutcome {
      // The flow ends: a pending request it belonged to cannot be used again.
      if let pending { try ctx.pool.query("UPDATE sso_requests SET consumed_at = now() WHERE id = \(pending.id) AND consumed_at IS NULL") }
      return fail(attempt, request: pending, f)
    }
    guard let encoded = form.first(where: { $0.0 == "SAMLResponse" })?.1, !encoded.isEmpty else {
      return try refuse(SSOFailure("malformed_request", "The POST has no SAMLResponse field."))
    }
    guard let xml = Base64.decode(encoded) else { return try refuse(SSOFailure("malformed_request", "The SAMLResponse is not valid base64.")) }
    let connection = SAMLConnection(
      idpEntityId: settings.idpEntityId, certificates: settings.certificates, spEntityId: spEntityId(connectionId), acsURL: acsURL(connectionId),
      allowSHA1: settings.allowSHA1)
    let assertion: ValidatedAssertion
    do {
      assertion = try SAMLResponseValidator.validate(xml: xml, connection: connection, now: Date())
    } catch {
      return try refuse(SSOFailure(error.reason, error.detail))
    }
    let profile = SAMLProfile(assertion)
    attempt.email = profile.email
    // The pending request (P3 InResponseTo, once) or the IdP-initiated
    // policy (P5); replay (P4) is checked when the code is written.
    var request: PendingRequest?
    let initiatedBy: String
    if let inResponseTo = assertion.inResponseTo {
      switch try consumeRequest(inResponseTo, connectionId: connectionId, protocolName: "saml", attempt: &attempt) {
      case .success(let r): request = r
      case .failure(let f): return try refuse(f)
      }
      initiatedBy = "app"
    } else {
      guard w.ssoAllowIdpInitiated else {
        return try refuse(
          SSOFailure(
            "idp_initiated_not_allowed",
            "The IdP started this sign-in (no InResponseTo); allow IdP-initiated sign-in for the connection (sso.update allowIdpInitiated) or start from the app."))
      }
      guard Date().timeIntervalSince(assertion.issueInstant) <= Self.idpInitiatedMaxAge + SAMLResponseValidator.skew else {
        return try refuse(SSOFailure("assertion_too_old", "An IdP-initiated assertion must be used within 5 minutes of being issued."))
      }
      initiatedBy = "idp"
    }
    guard let email = profile.email, !email.isEmpty else {
      return fail(attempt, request: request, SSOFailure("no_email", "The assertion carries no email: send the NameID in emailAddress format or an 'email' attribute."))
    }
    var attributes: [String: JSONValue] = [:]
    for (k, v) in assertion.attributes { attributes[k] = .array(v.map { .string($0) }) }
    let profileJSON: JSONValue = [
      "idpUserId": .string(assertion.nameId), "email": .string(email), "name": .string(profile.name ?? ""), "givenName": .orNull(profile.givenName),
      "familyName": .orNull(profile.familyName), "groups": .array(profile.groups.map { .string($0) }), "attributes": .object(attributes),
    ]
    return try complete(
      attempt: attempt, workspace: w, request: request, initiatedBy: initiatedBy, profile: profileJSON, email: email, name: profile.name,
      groups: profile.groups,
      replay: ReplayRecord(connectionId: connectionId, assertionId: assertion.assertionId, validUntil: assertion.validUntil))
  }
}
