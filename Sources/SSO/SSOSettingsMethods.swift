import Vocabulary
import Crypto
import Foundation
import JSON
import JSONRPC
import OIDC
import Policy
import Postgres
import RosterStore
import SAML
import ServiceKit

let roles = ["admin", "creator", "viewer"]

extension SSOService {
  func settingsMethods() -> [MethodSpec] {
    [
      MethodSpec(
        "sso.configure",
        summary:
          "Configures the SSO connection: SAML by entity id, SSO URL and certificate(s), by IdP metadata (XML or URL), or OIDC by issuer and client (discovery is fetched at once). The first time, pre-existing members must sign in once via SSO.",
        params: [.workspaceId, ParamSpec("connection", .anyObject), .optional("defaultRole", .enumeration(roles)), .actor],
        result: "SSO settings with outsideDomainMembers"
      ) { p, c in try self.configure(p, c) },
      MethodSpec(
        "sso.update",
        summary:
          "Changes the default role, Enforce SSO, Domain Capture, break-glass admins, IdP-initiated sign-in, or rotates the SAML certificates (several may be valid at once; does not reset 'tested').",
        params: [
          .workspaceId, .optional("defaultRole", .enumeration(roles)), .optional("enforceSso", .boolean), .optional("domainCapture", .boolean),
          .optional("bypassMemberIds", .array(.uuid, maxItems: 10)), .optional("certificatesPem", .array(.string(maxLength: 20_000), maxItems: 10)),
          .optional("allowIdpInitiated", .boolean), .actor,
        ], result: "SSO settings"
      ) { p, c in try self.update(p, c) },
      MethodSpec("sso.get", summary: "The SSO settings, with the values to paste into the IdP.", params: [.workspaceId], result: "SSO settings") {
        p, _ in
        try self.ctx.pool.transaction { tx in
          guard let w = try WorkspaceRow.load(tx, try p.id("workspaceId")) else { throw RPCError.workspaceNotFound() }
          return w.ssoJSON(publicURL: self.publicURL)
        }
      },
    ]
  }

  /// Validates the input and fetches what it names (a metadata URL, the
  /// OIDC discovery document) before any transaction starts.
  func resolve(_ input: ConnectionInput, connectionId: String) throws -> (stored: JSONValue, secret: [UInt8]?) {
    func connectionJSON(_ s: StoredConnection) -> JSONValue {
      var o = s.json.objectValue ?? [:]
      o["certificates"] = s.certificatesJSON
      return .object(o)
    }
    switch input {
    case .saml(let entity, let url, let certs, let sha1):
      return (connectionJSON(.saml(.init(idpEntityId: entity, ssoURL: url, certificates: certs, allowSHA1: sha1))), nil)
    case .samlMetadataURL(let url, let sha1):
      let answer: IdPClient.Response
      do { answer = try idp.get(url) } catch {
        throw RPCError.conflict("idp_unreachable", "The metadata URL could not be fetched: \(error.message).")
      }
      guard answer.status == 200 else { throw RPCError.conflict("idp_unreachable", "The metadata URL answered HTTP \(answer.status).") }
      do {
        let parsed = try ConnectionInput.parse(
          ["protocol": "saml", "metadataXml": .string(String(decoding: answer.body, as: UTF8.self)), "allowSha1": .bool(sha1)],
          allowHTTPLoopback: ctx.config.idpAllowHTTPLoopback)
        return try resolve(parsed, connectionId: connectionId)
      } catch let e as ConnectionInvalid {
        throw RPCError.invalidParam("connection.metadataUrl", "The metadata at that URL is not usable: \(e.message)", reason: e.reason)
      }
    case .oidc(let issuer, let clientId, let secret):
      let provider = try discover(issuer)
      var sealed: [UInt8]?
      if let secret {
        guard let key = ctx.config.secretKey else {
          throw RPCError.conflict(
            "secret_key_required", "Set ROSTER_SECRET_KEY (base64 of 32 random bytes) before configuring an OIDC client secret: it is stored encrypted.")
        }
        sealed = try AESGCM.seal(Array(secret.utf8), key: key, associated: Array(connectionId.utf8))
      }
      let s = StoredConnection.oidc(
        .init(issuer: issuer, tokenIssuer: provider.issuer, clientId: clientId, hasClientSecret: secret != nil, provider: provider))
      return (connectionJSON(s), sealed)
    }
  }

  /// OpenID discovery (`/.well-known/openid-configuration`), fetched at once (S1).
  func discover(_ issuer: String) throws -> OIDCProviderMetadata {
    let answer: IdPClient.Response
    do {
      answer = try idp.get(issuer + "/.well-known/openid-configuration")
    } catch {
      throw RPCError.conflict("idp_unreachable", "The issuer's discovery document could not be fetched: \(error.message).")
    }
    guard answer.status == 200, let json = answer.json else {
      throw RPCError.conflict("idp_unreachable", "The issuer's discovery document answered HTTP \(answer.status), not a JSON document.")
    }
    do {
      return try OIDCProviderMetadata.parse(json, expectedIssuer: issuer)
    } catch {
      throw RPCError.invalidParam("connection.issuer", error.detail, reason: "invalid_connection")
    }
  }

  func configure(_ p: Params, _ c: CallContext) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    let input: ConnectionInput
    do {
      input = try ConnectionInput.parse(p["connection"] ?? .null, allowHTTPLoopback: ctx.config.idpAllowHTTPLoopback)
    } catch {
      throw RPCError.invalidParam(error.field, error.message, reason: error.reason)
    }
    // The id the SP values are built from: kept across reconfigurations.
    let existingId = try ctx.pool.query("SELECT sso_connection_id FROM workspaces WHERE id = \(wid)::uuid").first?["sso_connection_id"]
    let connectionId = existingId ?? UUID().uuidString.lowercased()
    let (stored, secret) = try resolve(input, connectionId: connectionId)
    defer { connections.clear() }  // this process at once; the others through NOTIFY roster_sso
    return try ctx.pool.transaction { tx in
      guard let w = try WorkspaceRow.load(tx, wid, forUpdate: true) else { throw RPCError.workspaceNotFound() }
      let actor = try ctx.resolveActor(p, workspaceId: wid, context: c, tx: tx)
      guard w.isEnterprise else { throw RPCError.planRequired("SSO") }
      guard try tx.one("SELECT 1 FROM domains WHERE workspace_id = \(wid)::uuid AND status = 'verified' LIMIT 1") != nil else {
        throw RPCError.conflict("no_verified_domain", "Verify at least one domain before configuring SSO.")
      }
      let id = w.ssoConnectionId ?? connectionId
      guard id == connectionId else {
        throw RPCError.conflict("concurrent_change", "The connection was configured by another request at the same moment; try again.")
      }
      let defaultRole: Role = try p.optionalWord("defaultRole") ?? w.defaultRole
      let firstTime = w.ssoConfiguredAt == nil
      let secretHex: String? = secret.map { "\\x" + hexString($0) }
      if firstTime {
        try tx.query(
          """
          UPDATE workspaces SET sso_connection = \(stored)::jsonb, sso_connection_id = \(id)::uuid, sso_client_secret = \(secretHex)::bytea,
            sso_configured_at = now(), sso_default_role = \(defaultRole), sso_tested = false, enforce_sso = false
          WHERE id = \(wid)::uuid
          """)
        try provisioning.requireSSOLink(tx, workspace: w)
        try EventLog.emit(tx, type: "sso.enabled", workspaceId: wid, data: ["protocol": stored["protocol"] ?? .null])
      } else if Self.sameIdP(stored, w.ssoConnection) && secret == nil {
        try tx.query(
          "UPDATE workspaces SET sso_connection = \(stored)::jsonb, sso_connection_id = \(id)::uuid, sso_default_role = \(defaultRole) WHERE id = \(wid)::uuid")
      } else {
        // A new connection must prove itself before it can lock anyone out (S2).
        try tx.query(
          """
          UPDATE workspaces SET sso_connection = \(stored)::jsonb, sso_connection_id = \(id)::uuid, sso_client_secret = \(secretHex)::bytea,
            sso_default_role = \(defaultRole), sso_tested = false, enforce_sso = false
          WHERE id = \(wid)::uuid
          """)
      }
      let after = try required(WorkspaceRow.load(tx, wid), "the workspace")
      try tx.query("SELECT pg_notify('roster_sso', \(wid))")  // every process's connection cache
      try AuditLog.record(
        tx, workspaceId: wid, actor: actor, action: "sso.configure", targetType: "workspace", targetId: wid,
        before: w.ssoJSON(publicURL: publicURL), after: after.ssoJSON(publicURL: publicURL))
      var out = after.ssoJSON(publicURL: publicURL).objectValue ?? [:]
      let outside = try provisioning.outsideDomainMembers(tx, workspaceId: wid, plus: nil)
      out["outsideDomainMembers"] = .array(outside.members.map(\.brief))
      out["outsideDomainMemberCount"] = .int(outside.count)
      return .object(out)
    }
  }

  /// The same IdP with the same signing keys (what a repeated configure of
  /// an unchanged connection sends): `tested` stays.
  static func sameIdP(_ a: JSONValue, _ b: JSONValue) -> Bool {
    guard let x = StoredConnection(a), let y = StoredConnection(b) else { return false }
    switch (x, y) {
    case (.saml(let s), .saml(let t)):
      return s.idpEntityId == t.idpEntityId && s.ssoURL == t.ssoURL && s.allowSHA1 == t.allowSHA1
        && Set(s.certificates.map(\.sha256Fingerprint)) == Set(t.certificates.map(\.sha256Fingerprint))
    case (.oidc(let s), .oidc(let t)):
      return s.issuer == t.issuer && s.clientId == t.clientId && s.hasClientSecret == t.hasClientSecret
    default:
      return false
    }
  }

  func update(_ p: Params, _ c: CallContext) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    var rotation: [Certificate]?
    if let list = p["certificatesPem"] {
      do { rotation = try ConnectionInput.certificates(list) } catch {
        throw RPCError.invalidParam(error.field, error.message, reason: "invalid_connection")
      }
    }
    defer { connections.clear() }
    return try ctx.pool.transaction { tx in
      guard let w = try WorkspaceRow.load(tx, wid, forUpdate: true) else { throw RPCError.workspaceNotFound() }
      let actor = try ctx.resolveActor(p, workspaceId: wid, context: c, tx: tx)
      guard w.isEnterprise else { throw RPCError.planRequired("SSO") }
      guard w.ssoConfiguredAt != nil else {
        throw RPCError.conflict("sso_not_configured", "Configure SSO (sso.configure) before changing its settings.")
      }
      let enforce = p.optionalBool("enforceSso") ?? w.enforceSso
      if enforce && !w.enforceSso && !w.ssoTested {
        throw RPCError.conflict(
          "sso_untested", "Enforce SSO can be switched on only after one successful sign-in through the configured connection.")
      }
      if let ids = p.optionalArray("bypassMemberIds") {
        try setBypass(tx, workspaceId: wid, ids: Array(Set(ids.compactMap { $0.stringValue?.lowercased() })).sorted())
      }
      if let rotation {
        // A rotation: the same IdP, new signing certificates; `tested` stays (S1).
        guard case .saml(var s)? = StoredConnection(w.ssoConnection) else {
          throw RPCError.conflict("not_saml", "Certificates belong to a SAML connection; this workspace's connection is OIDC.")
        }
        s.certificates = rotation
        let stored = StoredConnection.saml(s)
        var o = stored.json.objectValue ?? [:]
        o["certificates"] = stored.certificatesJSON
        try tx.query("UPDATE workspaces SET sso_connection = \(JSONValue.object(o))::jsonb WHERE id = \(wid)::uuid")
      }
      let capture = p.optionalBool("domainCapture") ?? w.domainCapture
      let role: Role = try p.optionalWord("defaultRole") ?? w.defaultRole
      let idpInitiated = p.optionalBool("allowIdpInitiated") ?? w.ssoAllowIdpInitiated
      try tx.query(
        """
        UPDATE workspaces SET enforce_sso = \(enforce), domain_capture = \(capture), sso_default_role = \(role),
          sso_allow_idp_initiated = \(idpInitiated)
        WHERE id = \(wid)::uuid
        """)
      let after = try required(WorkspaceRow.load(tx, wid), "the workspace")
      try tx.query("SELECT pg_notify('roster_sso', \(wid))")
      try AuditLog.record(
        tx, workspaceId: wid, actor: actor, action: rotation != nil ? "sso.rotate_certificates" : "sso.update", targetType: "workspace", targetId: wid,
        before: w.ssoJSON(publicURL: publicURL), after: after.ssoJSON(publicURL: publicURL))
      return after.ssoJSON(publicURL: publicURL)
    }
  }

  /// S9: checked under the members' row locks (after the workspace's), so a
  /// demotion cannot slip in between the check and the write.
  func setBypass(_ tx: PGTransaction, workspaceId wid: String, ids: [String]) throws {
    guard ids.count <= 2 else {
      throw RPCError.invalidParam("bypassMemberIds", "At most two admins may bypass SSO.", reason: "too_many_bypass_members")
    }
    let rows = try tx.query(
      "SELECT id, role, status FROM members WHERE id = ANY(\(PGTextArray(ids))::uuid[]) AND workspace_id = \(wid)::uuid ORDER BY id FOR UPDATE"
    ).rows
    for id in ids {
      let m = rows.first { $0["id"] == id }
      guard m?["role"] == "admin", m?["status"] == "active" else {
        throw RPCError.invalidParam(
          "bypassMemberIds", "Member \(id) is not an active admin of this workspace; only admins may bypass SSO.", reason: "bypass_member_not_admin")
      }
    }
    try tx.query(
      """
      UPDATE members SET sso_bypass = (id = ANY(\(PGTextArray(ids))::uuid[]))
      WHERE workspace_id = \(wid)::uuid AND (sso_bypass OR id = ANY(\(PGTextArray(ids))::uuid[]))
      """)
  }
}
