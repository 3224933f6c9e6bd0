import Foundation
import JSON
import JSONRPC
import Postgres
import RosterRuntime
import RosterStore
import Vocabulary

/// What every service's methods need: the pool, the configuration, the logger.
public struct ServiceContext: Sendable {
  public let host: ProcessHost
  public var pool: PGPool { host.pool }
  public var config: Config { host.config }
  public var logger: Logger { host.logger }

  public init(host: ProcessHost) { self.host = host }

  /// The domain of ROSTER_MAIL_FROM, used in Message-IDs.
  public var mailDomain: String {
    let from = config.mailFrom
    guard let at = from.lastIndex(of: "@") else { return "roster.invalid" }
    return String(from[from.index(after: at)...]).trimmingCharacters(in: CharacterSet(charactersIn: "> "))
  }

  /// Queues an email in the caller's transaction.
  @discardableResult
  public func enqueueMail(_ tx: PGTransaction, template: MailTemplate, to: String, data: JSONValue, workspaceId: String?) throws -> String {
    try Outbox.enqueue(tx, template: template, to: to, data: data, workspaceId: workspaceId, mailDomain: mailDomain)
  }

  /// S4's "sign in again via SSO" email, set-based, to those of `memberIds`
  /// whose address is in the workspace's verified domains (the others cannot
  /// sign in at all, S3, so the email would mislead them).
  public func enqueueSSOLinkMail(_ tx: PGTransaction, workspace w: WorkspaceRow, memberIds: [String]) throws {
    guard !memberIds.isEmpty else { return }
    let signInUrl = config.publicURL + "/login/sso?workspace=" + w.id
    let queued = try tx.query(
      """
      INSERT INTO notifications (id, template, to_address, data, workspace_id, message_id)
      SELECT n.id, 'sso_live', n.email,
             jsonb_build_object('workspaceName', \(w.name)::text, 'name', n.name, 'signInUrl', \(signInUrl)::text),
             \(w.id)::uuid, '<' || n.id::text || '@' || \(mailDomain)::text || '>'
      FROM (SELECT roster_uuid7() AS id, u.email, coalesce(m.name, u.name) AS name
            FROM members m JOIN users u ON u.id = m.user_id
            WHERE m.id = ANY(\(PGTextArray(memberIds))::uuid[]) AND m.workspace_id = \(w.id)::uuid
              AND EXISTS (SELECT 1 FROM domains d WHERE d.workspace_id = m.workspace_id AND d.status = 'verified' AND d.domain = u.email_domain)
            ORDER BY m.id) n
      """)
    if queued.affected > 0 { tx.notifyAfterCommit("roster_outbox") }
  }

  /// Checks the `actor` param (SPEC: every admin mutation): a member must be an
  /// active admin of the workspace; an ops actor must come from an allowed uid.
  public func resolveActor(_ params: Params, workspaceId: String?, context: CallContext, tx: PGTransaction) throws -> ActorRef {
    let actor = try params.object("actor")
    let memberId = actor["memberId"]?.stringValue
    let ops = actor["ops"]?.stringValue
    if let link = actor["setupLink"]?.stringValue {
      // Only the setup pages, in-process, act as a setup link — and only as
      // the one whose request this is (a socket client cannot claim it).
      guard memberId == nil, ops == nil, let current = context.setupLinkId, current == link.lowercased(), let workspaceId,
        try tx.one(
          "SELECT 1 FROM setup_links WHERE id = \(current)::uuid AND workspace_id = \(workspaceId)::uuid AND revoked_at IS NULL AND expires_at > now()"
        ) != nil
      else {
        throw RPCError.forbidden("not_permitted", "A setup link acts only through the guided setup pages, for its own workspace.")
      }
      return .setupLink(current)
    }
    switch (memberId, ops) {
    case (let m?, nil):
      guard let workspaceId else {
        throw RPCError.forbidden("ops_required", "Only an operator ({\"ops\": NAME}) may do this.")
      }
      let row = try tx.one(
        "SELECT role, status FROM members WHERE id = \(m)::uuid AND workspace_id = \(workspaceId)::uuid")
      guard let row, row["status"] == "active", row["role"] == "admin" else {
        throw RPCError.forbidden("not_admin", "The acting member is not an active admin of this workspace.")
      }
      return .member(m)
    case (nil, let name?):
      guard !name.trimmingCharacters(in: .whitespaces).isEmpty else {
        throw RPCError.invalidParam("actor.ops", "'actor.ops' must name the operator.")
      }
      guard let uid = context.peerUID, config.opsUIDs.contains(uid) else {
        throw RPCError.forbidden(
          "ops_not_permitted", "Ops actors are accepted only from the uids in ROSTER_OPS_UIDS; this connection's uid is not one of them.")
      }
      return .ops(name: name, uid: uid)
    default:
      throw RPCError.invalidParam("actor", "'actor' must be {\"memberId\": ID} or {\"ops\": NAME}.")
    }
  }
}

/// Parameter specs used by many methods.
extension ParamSpec {
  public static let actor = ParamSpec(
    "actor", .object([.optional("memberId", .uuid), .optional("ops", .string(maxLength: 200)), .optional("setupLink", .uuid)]),
    "who acts: {\"memberId\": ID} (an admin the app vouches for) or {\"ops\": NAME} (operator uid only); setupLink is the guided setup's own, refused from a socket")
  public static let workspaceId = ParamSpec("workspaceId", .uuid)
  public static let limit = ParamSpec.optional("limit", .integer(min: 1, max: 1000), "page size (default 100)")
}

extension Params {
  /// A UUID param, lowercased for comparisons.
  public func id(_ name: String) throws(RPCError) -> String { try string(name).lowercased() }
  public func optionalID(_ name: String) -> String? { optionalString(name)?.lowercased() }
  public func limit(default d: Int = 100) -> Int { Int(optionalInt("limit") ?? Int64(d)) }

  /// A cursor given as a string or integer (`after`, `cursor`).
  public func cursor(_ name: String) throws(RPCError) -> Int64 {
    guard let v = self[name] else { return 0 }
    if let i = v.intValue, i >= 0 { return i }
    if let s = v.stringValue, let i = Int64(s), i >= 0 { return i }
    throw RPCError.invalidParam(name, "'\(name)' must be a cursor returned by an earlier call.", reason: "invalid_cursor")
  }
}

/// Common errors.
extension RPCError {
  public static func workspaceNotFound() -> RPCError { .notFound("Workspace", reason: "workspace_not_found") }
  public static func memberNotFound() -> RPCError { .notFound("Member", reason: "member_not_found") }
  public static func planRequired(_ what: String) -> RPCError {
    .conflict("plan_required", "\(what) needs the Enterprise plan.")
  }
}

extension ParamSchema {
  /// A cursor: the string (or integer) an earlier page returned.
  public static let cursor = ParamSchema.any
}

extension ServiceContext {
  /// Runs `body` (a whole transaction). If it was refused because it would
  /// deactivate or demote the transfer target (R4), the refused transaction
  /// has rolled back; every admin is then emailed in a transaction of its own
  /// and the caller gets `transfer_target_protected`.
  public func withTargetProtection<R>(_ body: () throws -> R) throws -> R {
    do {
      return try body()
    } catch let e as TargetProtectedError {
      try notifyTargetConflict(e)
      throw RPCError.conflict(
        "transfer_target_protected", e.message, extra: ["memberId": .string(e.memberId), "attempt": .string(e.attempt.rawValue)])
    }
  }

  public func notifyTargetConflict(_ e: TargetProtectedError) throws {
    try pool.transaction { tx in
      guard let w = try WorkspaceRow.load(tx, e.workspaceId),
        let target = try MemberRow.load(tx, workspaceId: e.workspaceId, memberId: e.memberId, includeDeleted: true)
      else { return }
      // At most one round of emails per workspace and target an hour: an IdP
      // retrying a refused deactivation must not flood the admins. Every
      // attempt is still audited. The advisory lock makes two concurrent
      // attempts agree on which one emails.
      try tx.query("SELECT pg_advisory_xact_lock(hashtextextended('transfer_target_conflict:' || \(w.id) || ':' || \(target.id), 0))")
      let recent =
        try tx.one(
          """
          SELECT 1 FROM notifications WHERE workspace_id = \(w.id)::uuid AND template = 'transfer_target_conflict'
            AND data->>'targetMemberId' = \(target.id) AND created_at > now() - interval '1 hour' LIMIT 1
          """) != nil
      if !recent {
        for admin in try TargetProtection.admins(tx, workspaceId: e.workspaceId) {
          try enqueueMail(
            tx, template: .transferTargetConflict, to: admin.email,
            data: [
              "workspaceName": .string(w.name), "adminName": .string(admin.name), "targetEmail": .string(target.email),
              "targetName": .string(target.name), "targetMemberId": .string(target.id), "attempt": .string(e.attempt.rawValue),
              "settingsUrl": .string(config.publicURL + "/settings/deprovisioning"),
            ], workspaceId: w.id)
        }
      }
      try AuditLog.record(
        tx, workspaceId: w.id, actor: .system("policy"), action: "deprovision.target_protected", targetType: "member",
        targetId: e.memberId, after: ["attempt": .string(e.attempt.rawValue), "adminsEmailed": .bool(!recent)])
    }
  }
}

extension LastAdminError: RPCErrorConvertible {
  public var rpcError: RPCError {
    .conflict("last_admin", "This is the workspace's last active admin; make someone else an admin first.")
  }
}
