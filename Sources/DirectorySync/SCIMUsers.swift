import Addresses
import Vocabulary
import Foundation
import JSON
import JSONRPC
import Policy
import Postgres
import RosterStore
import SCIM
import ServiceKit

/// A stored SCIM User (the SCIM `id` is the member id).
struct SCIMUserRow {
  var id: String
  var userName: String
  var active: Bool
  var resource: [String: JSONValue]
  var version: Int64
  var createdAt: String?
  var updatedAt: String?

  static let select: SQL = """
    SELECT u.member_id, u.user_name, u.active, u.resource, u.version, u.created_at, u.updated_at FROM scim_users u
    """

  init(id: String, userName: String, active: Bool, resource: [String: JSONValue], version: Int64, createdAt: String?, updatedAt: String?) {
    self.id = id
    self.userName = userName
    self.active = active
    self.resource = resource
    self.version = version
    self.createdAt = createdAt
    self.updatedAt = updatedAt
  }

  init(_ r: PGRow) throws {
    id = try r.string("member_id")
    userName = try r.string("user_name")
    active = try r.bool("active")
    resource = try r.json("resource").objectValue ?? [:]
    version = try r.int("version")
    createdAt = r.time("created_at")
    updatedAt = r.time("updated_at")
  }

  /// The resource as a client sees it (before projection).
  func json(groups: [(id: String, name: String)], location: String) -> JSONValue {
    var o = resource
    o["id"] = .string(id)
    o["userName"] = .string(userName)
    var schemas: [JSONValue] = [.string(URN.user)]
    if o[URN.enterprise] != nil { schemas.append(.string(URN.enterprise)) }
    o["schemas"] = .array(schemas)
    if !groups.isEmpty {
      o["groups"] = .array(
        groups.map { ["value": .string($0.id), "display": .string($0.name), "$ref": .string(location + "/Groups/" + $0.id), "type": "direct"] })
    }
    o["meta"] = [
      "resourceType": "User", "created": .orNull(createdAt), "lastModified": .orNull(updatedAt),
      "location": .string(location + "/Users/" + id), "version": .string(SCIMRouter.etag(version)),
    ]
    return .object(o)
  }
}

final class SCIMUsers: SCIMResourceEndpoints, Sendable {
  let ctx: ServiceContext
  let normalizer = ResourceNormalizer(kind: .user)
  let patcher = PatchEngine(kind: .user)
  let roles: RoleSync

  init(ctx: ServiceContext) {
    self.ctx = ctx
    roles = RoleSync(ctx: ctx)
  }

  func load(_ tx: PGTransaction, id: String, scope: DirectoryScope, forUpdate: Bool = false) throws -> SCIMUserRow {
    guard isUUID(id) else { throw SCIMError.notFound("User \(id.prefix(100)) not found.") }
    let q = SCIMUserRow.select + " WHERE u.member_id = \(id)::uuid AND u.workspace_id = \(scope.workspaceId)::uuid" + (forUpdate ? " FOR UPDATE" : "")
    guard let row = try tx.one(q).map(SCIMUserRow.init) else { throw SCIMError.notFound("User \(id.prefix(100)) not found.") }
    return row
  }

  func groups(_ tx: PGTransaction, memberIds: [String]) throws -> [String: [(id: String, name: String)]] {
    guard !memberIds.isEmpty else { return [:] }
    let rows = try tx.query(
      """
      SELECT gm.member_id, g.id, g.display_name FROM scim_group_members gm JOIN scim_groups g ON g.id = gm.group_id
      WHERE gm.member_id = ANY(\(PGTextArray(memberIds))::uuid[]) ORDER BY g.display_name
      """
    ).rows
    var out: [String: [(id: String, name: String)]] = [:]
    for r in rows { out[try r.string("member_id"), default: []].append((try r.string("id"), try r.string("display_name"))) }
    return out
  }

  func get(_ r: SCIMRequest, id: String, scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse {
    let projection = try router.projection(r, searchBody: nil)
    return try ctx.pool.transaction { tx in
      let row = try load(tx, id: id, scope: scope)
      let g = projection.excludes("groups") ? [:] : try groups(tx, memberIds: [row.id])
      return router.json(
        200, projection.apply(row.json(groups: g[row.id] ?? [], location: router.location), kind: .user),
        headers: [("ETag", SCIMRouter.etag(row.version))])
    }
  }

  func list(_ r: SCIMRequest, scope: DirectoryScope, router: SCIMRouter, searchBody: JSONValue?) throws -> SCIMResponse {
    try router.list(
      r, searchBody: searchBody, target: .users, from: "scim_users u", scoped: " WHERE u.workspace_id = \(scope.workspaceId)::uuid",
      select: SCIMUserRow.select, order: " ORDER BY u.created_at, u.member_id", row: SCIMUserRow.init
    ) { tx, rows, projection in
      let g = projection.excludes("groups") ? [:] : try groups(tx, memberIds: rows.map(\.id))
      return rows.map { projection.apply($0.json(groups: g[$0.id] ?? [], location: router.location), kind: .user) }
    }
  }

  // MARK: Writes

  /// The email a SCIM User stands for: userName when it is an address (C3),
  /// else its primary or work email. An IdP that sends neither (a bare
  /// account name) still gets its User; the member is known by that name and
  /// cannot sign in until an address arrives.
  static func email(of resource: [String: JSONValue]) -> String? {
    guard let u = resource["userName"]?.stringValue, !u.allSatisfy({ $0 == " " }) else { return nil }
    func address(_ s: String) -> String? { isPlausibleEmail(s) ? EmailAddress.normalized(s) : nil }
    if let a = address(u) { return a }
    let emails = resource["emails"]?.arrayValue ?? []
    let pick = emails.first { $0["primary"] == .bool(true) } ?? emails.first { $0["type"]?.stringValue?.lowercased() == "work" } ?? emails.first
    if let v = pick?["value"]?.stringValue, let a = address(v) { return a }
    return u
  }

  static func displayName(of resource: [String: JSONValue]) -> String? {
    if let d = resource["displayName"]?.stringValue, !d.isEmpty { return d }
    if let f = resource["name"]?["formatted"]?.stringValue, !f.isEmpty { return f }
    let parts = [resource["name"]?["givenName"]?.stringValue, resource["name"]?["familyName"]?.stringValue].compactMap { $0 }.filter { !$0.isEmpty }
    return parts.isEmpty ? nil : parts.joined(separator: " ")
  }

  /// The name a change gives the member: the attribute the IdP changed —
  /// `displayName`, else `name` (formatted, or given and family names) —
  /// or nil when no name changed.
  static func renamed(from old: [String: JSONValue], to new: [String: JSONValue]) -> String? {
    if let d = new["displayName"]?.stringValue, !d.isEmpty, new["displayName"] != old["displayName"] { return d }
    guard new["name"] != old["name"] else { return nil }
    if let f = new["name"]?["formatted"]?.stringValue, !f.isEmpty, new["name"]?["formatted"] != old["name"]?["formatted"] { return f }
    let parts = [new["name"]?["givenName"]?.stringValue, new["name"]?["familyName"]?.stringValue].compactMap { $0 }.filter { !$0.isEmpty }
    return parts.isEmpty ? nil : parts.joined(separator: " ")
  }

  func create(_ r: SCIMRequest, scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse {
    guard case .object(let raw) = try router.body(r) else { throw SCIMError.invalidSyntax("A User must be a JSON object.") }
    let resource = try normalizer.normalize(raw)
    guard let userName = resource["userName"]?.stringValue, !userName.trimmedSpaces.isEmpty else {
      throw SCIMError.invalidValue("'userName' is required.")
    }
    guard let email = Self.email(of: resource) else {
      throw SCIMError.invalidValue("'userName' is required.")
    }
    let projection = try router.projection(r, searchBody: nil)
    if resource["active"]?.boolValue ?? true, let fast = try fastCreate(resource, email: email, scope: scope, router: router, projection: projection) {
      return fast
    }
    return try ctx.pool.transaction { tx in
      if try tx.one("SELECT 1 FROM scim_users WHERE workspace_id = \(scope.workspaceId)::uuid AND lower(user_name) = lower(\(userName))") != nil {
        throw SCIMError.uniqueness("A User with userName '\(userName.prefix(200))' already exists.")
      }
      guard let w = try WorkspaceRow.load(tx, scope.workspaceId, lock: .share) else { throw SCIMError.notFound("Workspace not found.") }
      // C8: an existing person is linked as an invitation would link them;
      // nothing about them changes (the name goes on this membership).
      let displayName = Self.displayName(of: resource)
      let userId = try Users.find(tx, email: email)
        ?? Users.create(tx, email: email, name: displayName ?? "")
      let actor = ActorRef.directory(scope.directoryId)
      let active = resource["active"]?.boolValue ?? true
      let attribute = resource[roleAttributeName]?.stringValue
      var member = try tx.one(MemberRow.select + " WHERE m.workspace_id = \(w.id)::uuid AND m.user_id = \(userId)::uuid FOR UPDATE OF m")
        .map(MemberRow.init)
      if let m = member, try tx.one("SELECT 1 FROM scim_users WHERE member_id = \(m.id)::uuid") != nil {
        throw SCIMError.uniqueness("\(email) is already provisioned in this workspace.")
      }
      let resolved = resolveRole(attribute: attribute, groups: [], current: nil, workspaceDefault: w.defaultRole)
      if let m = member {
        // An invited (or previously removed) member is taken over by the directory.
        if m.status == .deleted {
          try Lifecycle.reactivate(tx, member: m, role: resolved.role, roleSource: resolved.source, actor: actor)
        }
        try tx.query(
          "UPDATE members SET role_attribute = \(attribute), name = coalesce(\(displayName), name), updated_at = now() WHERE id = \(m.id)::uuid")
        member = try MemberRow.load(tx, workspaceId: w.id, memberId: m.id, forUpdate: true)
      } else {
        let id = try tx.single(
          """
          INSERT INTO members (workspace_id, user_id, name, role, role_source, role_attribute, status, joined)
          VALUES (\(w.id)::uuid, \(userId)::uuid, \(displayName), \(resolved.role.rawValue), \(resolved.source.rawValue), \(attribute),
                  'active', 'scim')
          RETURNING id
          """).string("id")
        try EventLog.emit(
          tx, type: "member.created", workspaceId: w.id, memberId: id, data: ["role": .string(resolved.role.rawValue), "joined": "scim"])
        member = try MemberRow.load(tx, workspaceId: w.id, memberId: id, forUpdate: true)
      }
      let m = try required(member, "the member")
      try store(tx, memberId: m.id, scope: scope, resource: resource, insert: true)
      try roles.recompute(tx, workspace: w, memberIds: [m.id])
      if active, m.status == .deactivated {
        if try Lifecycle.reactivate(tx, member: m, role: m.role, roleSource: m.roleSource, actor: actor), w.ssoConfigured {
          try ctx.enqueueSSOLinkMail(tx, workspace: w, memberIds: [m.id])  // S4
        }
      } else if !active {
        try TargetProtection.check(w, memberId: m.id, attempt: .deactivate)
        try Lifecycle.deactivate(tx, member: try required(MemberRow.load(tx, workspaceId: w.id, memberId: m.id), "the member"), actor: actor, reason: "scim_inactive")
      }
      try AuditLog.record(tx, workspaceId: w.id, actor: actor, action: "scim.user.create", targetType: "member", targetId: m.id, after: .object(resource))
      let row = try load(tx, id: m.id, scope: scope)
      let body = projection.apply(row.json(groups: [], location: router.location), kind: .user)
      return router.json(201, body, headers: [("Location", router.location + "/Users/" + row.id), ("ETag", SCIMRouter.etag(row.version))])
    }
  }

  /// The common case — a new, active person — in one statement (one round
  /// trip, one commit): user, membership, SCIM resource, event and audit
  /// entry. Anything else (the person is already a member, was removed,
  /// arrives inactive) returns nil and takes the general path.
  ///
  /// The role of a brand-new member with no groups is `resolveRole`'s first
  /// and last rule: an explicit attribute, else the workspace default.
  func fastCreate(
    _ resource: [String: JSONValue], email: String, scope: DirectoryScope, router: SCIMRouter, projection: Projection
  ) throws -> SCIMResponse? {
    let userName = resource["userName"]?.stringValue ?? ""
    let attribute = resource[roleAttributeName]?.stringValue
    let explicit: String? = attribute == "default" ? nil : attribute
    var stored = resource
    stored["userName"] = nil
    let doc = JSONValue.object(stored)
    let emails = PGTextArray((resource["emails"]?.arrayValue ?? []).compactMap { $0["value"]?.stringValue?.lowercased() })
    let displayName = Self.displayName(of: resource)
    // The member.created event and the audit entry: one journal row.
    let journalRow = Journal.insertForNewMember(
      from: "m", workspaceId: scope.workspaceId, eventType: "member.created",
      eventData: "jsonb_build_object('role', src.role, 'joined', 'scim')",
      audit: .init(actor: .directory(scope.directoryId), action: "scim.user.create", targetType: "member", targetId: nil, after: doc))
    let row = try ctx.pool.withConnection { conn in
      try conn.query(
        """
        WITH w AS (
          SELECT id, sso_default_role FROM workspaces WHERE id = \(scope.workspaceId)::uuid
        ), u AS (
          -- A person who already exists is only linked; the no-op update returns their id.
          INSERT INTO users (email, email_key, name) VALUES (\(email), \(Users.key(email)), \(displayName ?? ""))
          ON CONFLICT (email_key) DO UPDATE SET email = users.email
          RETURNING id
        ), m AS (
          INSERT INTO members (workspace_id, user_id, name, role, role_source, role_attribute, status, joined)
          SELECT w.id, u.id, \(displayName), coalesce(\(explicit)::text, w.sso_default_role),
                 CASE WHEN \(explicit)::text IS NULL THEN 'default' ELSE 'attribute' END, \(attribute), 'active', 'scim'
          FROM w, u
          ON CONFLICT (workspace_id, user_id) DO NOTHING
          RETURNING id, role
        ), s AS (
          INSERT INTO scim_users (member_id, workspace_id, directory_id, user_name, external_id, active, display_name, email_values, resource)
          SELECT m.id, \(scope.workspaceId)::uuid, \(scope.directoryId)::uuid, \(userName), \(resource["externalId"]?.stringValue), true,
                 \(resource["displayName"]?.stringValue), \(emails)::text[], \(doc)::jsonb
          FROM m
          RETURNING member_id, version, created_at, updated_at
        ), j AS (
          \(sql: journalRow)
        )
        SELECT s.member_id, s.version, s.created_at, s.updated_at FROM s
        """
      ).first
    }
    guard let row else { return nil }
    PGNotifySender.shared.send(Journal.channel, config: ctx.pool.config)  // committed (autocommit): wake the feed
    let user = SCIMUserRow(
      id: try row.string("member_id"), userName: userName, active: true, resource: stored, version: try row.int("version"),
      createdAt: row.time("created_at"), updatedAt: row.time("updated_at"))
    return router.json(
      201, projection.apply(user.json(groups: [], location: router.location), kind: .user),
      headers: [("Location", router.location + "/Users/" + user.id), ("ETag", SCIMRouter.etag(user.version))])
  }

  /// Writes the resource and its indexed columns.
  func store(_ tx: PGTransaction, memberId: String, scope: DirectoryScope, resource: [String: JSONValue], insert: Bool) throws {
    let userName = resource["userName"]?.stringValue ?? ""
    let emails = PGTextArray((resource["emails"]?.arrayValue ?? []).compactMap { $0["value"]?.stringValue?.lowercased() })
    let active = resource["active"]?.boolValue ?? true
    var stored = resource
    stored["userName"] = nil
    let doc = JSONValue.object(stored)
    let externalId = resource["externalId"]?.stringValue
    let displayName = resource["displayName"]?.stringValue
    if insert {
      try tx.query(
        """
        INSERT INTO scim_users (member_id, workspace_id, directory_id, user_name, external_id, active, display_name, email_values, resource)
        VALUES (\(memberId)::uuid, \(scope.workspaceId)::uuid, \(scope.directoryId)::uuid, \(userName), \(externalId), \(active),
                \(displayName), \(emails)::text[], \(doc)::jsonb)
        """)
    } else {
      try tx.query(
        """
        UPDATE scim_users SET user_name = \(userName), external_id = \(externalId), active = \(active), display_name = \(displayName),
          email_values = \(emails)::text[], resource = \(doc)::jsonb, version = version + 1, updated_at = now()
        WHERE member_id = \(memberId)::uuid
        """)
    }
  }

  func replace(_ r: SCIMRequest, id: String, scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse {
    guard case .object(let raw) = try router.body(r) else { throw SCIMError.invalidSyntax("A User must be a JSON object.") }
    if let bodyId = raw.first(where: { $0.key.lowercased() == "id" })?.value.stringValue, bodyId.lowercased() != id {
      throw SCIMError.mutability("The 'id' in the body does not match the URL.")
    }
    let resource = try normalizer.normalize(raw)
    guard resource["userName"]?.stringValue?.isEmpty == false else { throw SCIMError.invalidValue("'userName' is required.") }
    let projection = try router.projection(r, searchBody: nil)
    return try ctx.pool.transaction { tx in
      let current = try load(tx, id: id, scope: scope, forUpdate: true)
      try router.checkIfMatch(r, version: current.version)
      return try applyChange(tx, current: current, to: resource, scope: scope, router: router, projection: projection, action: "scim.user.replace")
    }
  }

  func patch(_ r: SCIMRequest, id: String, scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse {
    let body = try router.body(r)
    let projection = try router.projection(r, searchBody: nil)
    return try ctx.pool.transaction { tx in
      let current = try load(tx, id: id, scope: scope, forUpdate: true)
      try router.checkIfMatch(r, version: current.version)
      var full = current.resource
      full["userName"] = .string(current.userName)
      let result = try patcher.apply(body, to: full, id: current.id)
      return try applyChange(tx, current: current, to: result.resource, scope: scope, router: router, projection: projection, action: "scim.user.patch")
    }
  }

  /// Stores a new state of a User and carries out what changed: the email
  /// (userName), the role (C4/C5), deactivation or reactivation (C6).
  func applyChange(
    _ tx: PGTransaction, current: SCIMUserRow, to resource: [String: JSONValue], scope: DirectoryScope, router: SCIMRouter,
    projection: Projection, action: String
  ) throws -> SCIMResponse {
    guard let w = try WorkspaceRow.load(tx, scope.workspaceId, lock: .share),
      let member = try MemberRow.load(tx, workspaceId: scope.workspaceId, memberId: current.id, forUpdate: true, includeDeleted: true)
    else { throw SCIMError.notFound("User \(current.id) not found.") }
    let actor = ActorRef.directory(scope.directoryId)
    guard let newUserName = resource["userName"]?.stringValue else { throw SCIMError.invalidValue("'userName' is required.") }
    if newUserName.lowercased() != current.userName.lowercased(),
      try tx.one(
        "SELECT 1 FROM scim_users WHERE workspace_id = \(scope.workspaceId)::uuid AND lower(user_name) = lower(\(newUserName)) AND member_id <> \(current.id)::uuid"
      ) != nil
    {
      throw SCIMError.uniqueness("A User with userName '\(newUserName.prefix(200))' already exists.")
    }
    guard let email = Self.email(of: resource) else {
      throw SCIMError.invalidValue("'userName' must be an email address (or 'emails' must contain one).")
    }
    // C8: the email and name reach the member; the shared person changes
    // only when this workspace owns both addresses.
    do {
      try DirectoryIdentity.apply(tx, workspace: w, member: member, email: email, name: Self.renamed(from: current.resource, to: resource))
    } catch let e as DirectoryIdentity.EmailTaken {
      throw SCIMError.uniqueness("Another member of this workspace already uses \(e.email.prefix(200)).")
    }
    let wasActive = current.active
    let active = resource["active"]?.boolValue ?? true
    if wasActive && !active { try TargetProtection.check(w, memberId: member.id, attempt: .deactivate) }
    try store(tx, memberId: current.id, scope: scope, resource: resource, insert: false)
    try tx.query(
      "UPDATE members SET role_attribute = \(resource[roleAttributeName]?.stringValue), updated_at = now() WHERE id = \(member.id)::uuid")
    if !active && member.status == .active {
      try Lifecycle.deactivate(tx, member: member, actor: actor, reason: "scim_inactive")
    } else if active && member.status != .active {
      let resolved = resolveRole(
        attribute: resource[roleAttributeName]?.stringValue, groups: [], current: nil, workspaceDefault: w.defaultRole)
      if try Lifecycle.reactivate(tx, member: member, role: resolved.role, roleSource: resolved.source, actor: actor),
        w.ssoConfigured
      {
        try ctx.enqueueSSOLinkMail(tx, workspace: w, memberIds: [member.id])  // S4
      }
    }
    try roles.recompute(tx, workspace: w, memberIds: [member.id])
    try AuditLog.record(
      tx, workspaceId: w.id, actor: actor, action: action, targetType: "member", targetId: member.id,
      before: current.json(groups: [], location: router.location), after: .object(resource))
    let row = try load(tx, id: current.id, scope: scope)
    let g = projection.excludes("groups") ? [:] : try groups(tx, memberIds: [row.id])
    return router.json(
      200, projection.apply(row.json(groups: g[row.id] ?? [], location: router.location), kind: .user),
      headers: [("ETag", SCIMRouter.etag(row.version))])
  }

  /// DELETE: the SCIM resource goes (404 afterwards) and the deprovisioning policy applies (C6).
  func delete(_ r: SCIMRequest, id: String, scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse {
    try ctx.pool.transaction { tx in
      let current = try load(tx, id: id, scope: scope, forUpdate: true)
      try router.checkIfMatch(r, version: current.version)
      guard let w = try WorkspaceRow.load(tx, scope.workspaceId, lock: .share),
        let member = try MemberRow.load(tx, workspaceId: scope.workspaceId, memberId: current.id, forUpdate: true, includeDeleted: true)
      else { throw SCIMError.notFound("User \(id) not found.") }
      try TargetProtection.check(w, memberId: member.id, attempt: .delete)
      try tx.query("DELETE FROM scim_group_members WHERE member_id = \(member.id)::uuid")
      try tx.query("DELETE FROM scim_users WHERE member_id = \(member.id)::uuid")
      let actor = ActorRef.directory(scope.directoryId)
      if member.status != .deleted {
        try Lifecycle.deactivate(tx, member: member, actor: actor, reason: "scim_deleted")
      }
      try AuditLog.record(
        tx, workspaceId: w.id, actor: actor, action: "scim.user.delete", targetType: "member", targetId: member.id,
        before: current.json(groups: [], location: router.location))
      return SCIMResponse(status: 204)
    }
  }
}
