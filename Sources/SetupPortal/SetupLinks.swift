import Crypto
import Foundation
import JSON
import JSONRPC
import Postgres
import RosterStore
import ServiceKit

/// The steps a setup link may open (G2).
enum SetupStep: String, CaseIterable, Sendable {
  case domains, sso, directory, roles

  var title: String {
    switch self {
    case .domains: return "Domains"
    case .sso: return "Single sign-on"
    case .directory: return "Directory sync"
    case .roles: return "Roles from groups"
    }
  }
}

/// An open setup link: a bearer credential for one workspace and the steps
/// it names (G1). Only the SHA-256 of the token is stored.
struct SetupLink: Sendable {
  let id: String
  let token: String
  let workspaceId: String
  let workspaceName: String
  let isEnterprise: Bool
  let steps: [SetupStep]
  let formKey: String
  let expiresAt: String
  let lastTestTrace: String?

  var base: String { "/setup/" + token }
  func path(_ step: SetupStep) -> String { base + "/" + step.rawValue }
  var actor: JSONValue { ["setupLink": .string(id)] }

  enum Lookup {
    case open(SetupLink)
    case expired, revoked, unknown
  }

  /// A link's token as Roster issues it: 43 characters of base64url (256 bits).
  static func isTokenShaped(_ s: String) -> Bool {
    s.utf8.count == 43
      && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }
  }

  /// Links that stopped working more than 90 days ago.
  @discardableResult
  static func removeStale(_ pool: PGPool) throws -> Int {
    try pool.query("DELETE FROM setup_links WHERE coalesce(revoked_at, expires_at) < now() - interval '90 days'").affected
  }

  static func lookup(_ pool: PGPool, token: String) throws -> Lookup {
    guard isTokenShaped(token) else { return .unknown }
    guard
      let r = try pool.query(
        """
        SELECT l.id, l.workspace_id, l.steps, l.form_key, l.expires_at, l.expires_at <= now() AS expired, l.revoked_at IS NOT NULL AS revoked,
               l.last_test_trace, w.name, w.plan
        FROM setup_links l JOIN workspaces w ON w.id = l.workspace_id
        WHERE l.token_hash = \(SHA256.hex(token))
        """
      ).first
    else { return .unknown }
    if try r.bool("revoked") { return .revoked }
    if try r.bool("expired") { return .expired }
    return .open(
      SetupLink(
        id: try r.string("id"), token: token, workspaceId: try r.string("workspace_id"), workspaceName: try r.string("name"),
        isEnterprise: r["plan"] == "enterprise", steps: SetupStep.allCases.filter { r.stringArray("steps").contains($0.rawValue) },
        formKey: try r.string("form_key"), expiresAt: r.time("expires_at") ?? "", lastTestTrace: r["last_test_trace"]))
  }
}

extension SetupPortal {
  static let defaultHours: Int64 = 24
  static let maxHours: Int64 = 7 * 24

  func linkMethods() -> [MethodSpec] {
    [
      MethodSpec(
        "setup.createLink",
        summary:
          "A link to the guided setup for the customer's IT admin: ROSTER_PUBLIC_URL/setup/{token}, valid for ttlHours (default 24, at most 168), for the steps named (default all). The token is shown once and stored hashed.",
        params: [
          .workspaceId,
          .optional("steps", .array(.enumeration(SetupStep.allCases.map(\.rawValue)), maxItems: 4), "default: all of domains, sso, directory, roles"),
          .optional("ttlHours", .integer(min: 1, max: Self.maxHours), "hours until the link stops working (default 24)"), .actor,
        ], result: "{url, expiresAt, linkId, steps}"
      ) { p, c in try self.createLink(p, c) },
      MethodSpec(
        "setup.revokeLinks", summary: "Stops every setup link of the workspace that still works (or the one named by linkId) at once; returns how many.",
        params: [.workspaceId, .optional("linkId", .uuid), .actor], result: "{revoked}"
      ) { p, c in try self.revokeLinks(p, c) },
      MethodSpec(
        "setup.listLinks", summary: "The workspace's setup links (never their tokens), newest first.", params: [.workspaceId], result: "{links}"
      ) { p, _ in try self.listLinks(p) },
    ]
  }

  /// A setup link never hands out further links or revokes them.
  func refuseSetupLinkActor(_ p: Params) throws {
    if p.optionalObject("actor")?["setupLink"] != nil {
      throw RPCError.forbidden("not_permitted", "A setup link cannot create or revoke setup links.")
    }
  }

  func createLink(_ p: Params, _ c: CallContext) throws -> JSONValue {
    try refuseSetupLinkActor(p)
    let wid = try p.id("workspaceId")
    var steps = SetupStep.allCases
    if let named = p.optionalArray("steps") {
      let set = Set(named.compactMap(\.stringValue))
      guard !set.isEmpty else { throw RPCError.invalidParam("steps", "'steps' must name at least one step (or be left out for all).") }
      steps = SetupStep.allCases.filter { set.contains($0.rawValue) }
    }
    let hours = p.optionalInt("ttlHours") ?? Self.defaultHours
    let token = Secrets.urlToken(bits: 256)
    return try ctx.pool.transaction { tx in
      guard let w = try WorkspaceRow.load(tx, wid, lock: .share) else { throw RPCError.workspaceNotFound() }
      let actor = try ctx.resolveActor(p, workspaceId: wid, context: c, tx: tx)
      guard w.isEnterprise else { throw RPCError.planRequired("The guided setup (SSO and Directory Sync)") }
      let row = try tx.single(
        """
        INSERT INTO setup_links (workspace_id, token_hash, steps, form_key, created_by, expires_at)
        VALUES (\(wid)::uuid, \(SHA256.hex(token)), \(PGTextArray(steps.map(\.rawValue)))::text[], \(Secrets.urlToken(bits: 256)),
                \(actor.json)::jsonb, now() + make_interval(hours => \(hours)::int))
        RETURNING id, expires_at
        """)
      let linkId = try row.string("id")
      let after: JSONValue = ["linkId": .string(linkId), "steps": .array(steps.map { .string($0.rawValue) }), "expiresAt": .orNull(row.time("expires_at"))]
      try AuditLog.record(tx, workspaceId: wid, actor: actor, action: "setup.create_link", targetType: "setup_link", targetId: linkId, after: after)
      var out = after.objectValue ?? [:]
      out["url"] = .string(ctx.config.publicURL + "/setup/" + token)
      return .object(out)
    }
  }

  func revokeLinks(_ p: Params, _ c: CallContext) throws -> JSONValue {
    try refuseSetupLinkActor(p)
    let wid = try p.id("workspaceId")
    let one = p.optionalID("linkId")
    return try ctx.pool.transaction { tx in
      guard try WorkspaceRow.load(tx, wid, lock: .share) != nil else { throw RPCError.workspaceNotFound() }
      let actor = try ctx.resolveActor(p, workspaceId: wid, context: c, tx: tx)
      if let one, try tx.one("SELECT 1 FROM setup_links WHERE id = \(one)::uuid AND workspace_id = \(wid)::uuid") == nil {
        throw RPCError.notFound("Setup link", reason: "setup_link_not_found")
      }
      let revoked = try tx.query(
        """
        UPDATE setup_links SET revoked_at = now()
        WHERE workspace_id = \(wid)::uuid AND revoked_at IS NULL AND expires_at > now() AND (\(one)::uuid IS NULL OR id = \(one)::uuid)
        RETURNING id
        """
      ).rows.compactMap { $0["id"] }
      try AuditLog.record(
        tx, workspaceId: wid, actor: actor, action: "setup.revoke_links", targetType: "workspace", targetId: wid,
        after: ["linkIds": .array(revoked.map { .string($0) })])
      return ["revoked": .int(Int64(revoked.count)), "linkIds": .array(revoked.map { .string($0) })]
    }
  }

  func listLinks(_ p: Params) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    return try ctx.pool.transaction { tx in
      guard try WorkspaceRow.load(tx, wid) != nil else { throw RPCError.workspaceNotFound() }
      let rows = try tx.query(
        """
        SELECT id, steps, created_by, created_at, expires_at, revoked_at, expires_at <= now() AS expired
        FROM setup_links WHERE workspace_id = \(wid)::uuid ORDER BY created_at DESC, id DESC LIMIT 100
        """
      ).rows
      return [
        "links": .array(
          try rows.map { r in
            let state = r["revoked_at"] != nil ? "revoked" : (try r.bool("expired") ? "expired" : "active")
            return [
              "linkId": .string(try r.string("id")), "steps": .array(r.stringArray("steps").map { .string($0) }), "createdBy": try r.json("created_by"),
              "createdAt": .orNull(r.time("created_at")), "expiresAt": .orNull(r.time("expires_at")), "revokedAt": .orNull(r.time("revoked_at")),
              "state": .string(state),
            ]
          })
      ]
    }
  }
}
