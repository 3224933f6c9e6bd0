import Addresses
import Foundation
import JSON
import JSONRPC
import Postgres
import RosterStore
import SCIM
import ServiceKit

struct SCIMGroupRow {
  var id: String
  var displayName: String
  var externalId: String?
  var resource: [String: JSONValue]
  var role: String?
  var priority: Int64?
  var version: Int64
  var createdAt: String?
  var updatedAt: String?

  static let select: SQL = """
    SELECT g.id, g.display_name, g.external_id, g.resource, g.role, g.priority, g.version, g.created_at, g.updated_at FROM scim_groups g
    """

  init(_ r: PGRow) throws {
    id = try r.string("id")
    displayName = try r.string("display_name")
    externalId = r["external_id"]
    resource = try r.json("resource").objectValue ?? [:]
    role = r["role"]
    priority = r.optionalInt("priority")
    version = try r.int("version")
    createdAt = r.time("created_at")
    updatedAt = r.time("updated_at")
  }

  func json(members: [(id: String, display: String)]?, location: String) -> JSONValue {
    var o = resource
    o["id"] = .string(id)
    o["displayName"] = .string(displayName)
    if let externalId { o["externalId"] = .string(externalId) }
    o["schemas"] = [.string(URN.group)]
    if let members {
      o["members"] = .array(
        members.map { ["value": .string($0.id), "$ref": .string(location + "/Users/" + $0.id), "type": "User"] })
    }
    o["meta"] = [
      "resourceType": "Group", "created": .orNull(createdAt), "lastModified": .orNull(updatedAt),
      "location": .string(location + "/Groups/" + id), "version": .string(SCIMRouter.etag(version)),
    ]
    return .object(o)
  }
}

final class SCIMGroups: SCIMResourceEndpoints, Sendable {
  let ctx: ServiceContext
  let normalizer = ResourceNormalizer(kind: .group)
  let patcher = PatchEngine(kind: .group, externalMembers: true)
  let roles: RoleSync

  init(ctx: ServiceContext) {
    self.ctx = ctx
    roles = RoleSync(ctx: ctx)
  }

  func load(_ tx: PGTransaction, id: String, scope: DirectoryScope, forUpdate: Bool = false) throws -> SCIMGroupRow {
    guard isUUID(id) else { throw SCIMError.notFound("Group \(id.prefix(100)) not found.") }
    let q = SCIMGroupRow.select + " WHERE g.id = \(id)::uuid AND g.workspace_id = \(scope.workspaceId)::uuid" + (forUpdate ? " FOR UPDATE" : "")
    guard let g = try tx.one(q).map(SCIMGroupRow.init) else { throw SCIMError.notFound("Group \(id.prefix(100)) not found.") }
    return g
  }

  func members(_ tx: PGTransaction, groupIds: [String]) throws -> [String: [(id: String, display: String)]] {
    guard !groupIds.isEmpty else { return [:] }
    let rows = try tx.query(
      """
      SELECT gm.group_id, gm.member_id, u.user_name FROM scim_group_members gm JOIN scim_users u ON u.member_id = gm.member_id
      WHERE gm.group_id = ANY(\(PGTextArray(groupIds))::uuid[]) ORDER BY u.user_name
      """
    ).rows
    var out: [String: [(id: String, display: String)]] = [:]
    for g in groupIds { out[g] = [] }
    for r in rows { out[try r.string("group_id"), default: []].append((try r.string("member_id"), try r.string("user_name"))) }
    return out
  }

  func get(_ r: SCIMRequest, id: String, scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse {
    let projection = try router.projection(r, searchBody: nil)
    return try ctx.pool.transaction { tx in
      let g = try load(tx, id: id, scope: scope)
      let m = projection.excludes("members") ? nil : try members(tx, groupIds: [g.id])[g.id]
      return router.json(200, projection.apply(g.json(members: m, location: router.location), kind: .group), headers: [("ETag", SCIMRouter.etag(g.version))])
    }
  }

  func list(_ r: SCIMRequest, scope: DirectoryScope, router: SCIMRouter, searchBody: JSONValue?) throws -> SCIMResponse {
    try router.list(
      r, searchBody: searchBody, target: .groups, from: "scim_groups g", scoped: " WHERE g.workspace_id = \(scope.workspaceId)::uuid",
      select: SCIMGroupRow.select, order: " ORDER BY g.created_at, g.id", row: SCIMGroupRow.init
    ) { tx, rows, projection in
      let m = projection.excludes("members") ? nil : try members(tx, groupIds: rows.map(\.id))
      return rows.map { g in projection.apply(g.json(members: m.map { $0[g.id] ?? [] }, location: router.location), kind: .group) }
    }
  }

  /// Validated member ids (they must be Users of this directory's
  /// workspace). Their SCIM rows stay share-locked until commit, so a
  /// concurrent DELETE of a User either finishes first (and the User is not
  /// found) or waits and then removes the new membership row too (C1).
  func checkedMembers(_ tx: PGTransaction, _ ids: [String], scope: DirectoryScope) throws -> [String] {
    let unique = Array(Set(ids.map { $0.lowercased() }))
    guard !unique.isEmpty else { return [] }
    let bad = unique.filter { !isUUID($0) }
    let found = Set(
      try tx.query(
        """
        SELECT u.member_id FROM unnest(\(PGTextArray(unique.filter(isUUID)))::uuid[]) AS ids(id)
        JOIN scim_users u ON u.member_id = ids.id WHERE u.workspace_id = \(scope.workspaceId)::uuid
        ORDER BY u.member_id FOR SHARE OF u
        """
      ).rows.compactMap { $0["member_id"] })
    let missing = bad + unique.filter { isUUID($0) && !found.contains($0) }
    guard missing.isEmpty else {
      throw SCIMError.invalidValue("No User with id \(missing.prefix(5).joined(separator: ", "))\(missing.count > 5 ? " (and \(missing.count - 5) more)" : "") in this directory.")
    }
    return unique
  }

  func create(_ r: SCIMRequest, scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse {
    guard case .object(let raw) = try router.body(r) else { throw SCIMError.invalidSyntax("A Group must be a JSON object.") }
    var resource = try normalizer.normalize(raw)
    guard let name = resource["displayName"]?.stringValue, !name.trimmedSpaces.isEmpty else {
      throw SCIMError.invalidValue("'displayName' is required.")
    }
    let memberIds = (resource["members"]?.arrayValue ?? []).compactMap { $0["value"]?.stringValue }
    resource["members"] = nil
    let projection = try router.projection(r, searchBody: nil)
    return try ctx.pool.transaction { tx in
      if try tx.one("SELECT 1 FROM scim_groups WHERE workspace_id = \(scope.workspaceId)::uuid AND lower(display_name) = lower(\(name))") != nil {
        throw SCIMError.uniqueness("A Group named '\(name.prefix(200))' already exists.")
      }
      let members = try checkedMembers(tx, memberIds, scope: scope)
      let externalId = resource["externalId"]?.stringValue
      resource["displayName"] = nil
      resource["externalId"] = nil
      let id = try tx.single(
        """
        INSERT INTO scim_groups (workspace_id, directory_id, display_name, external_id, resource)
        VALUES (\(scope.workspaceId)::uuid, \(scope.directoryId)::uuid, \(name), \(externalId), \(JSONValue.object(resource))::jsonb)
        RETURNING id
        """).string("id")
      try addMembers(tx, group: id, members)
      try AuditLog.record(
        tx, workspaceId: scope.workspaceId, actor: .directory(scope.directoryId), action: "scim.group.create", targetType: "group", targetId: id,
        after: ["displayName": .string(name), "members": .int(members.count)])
      let g = try load(tx, id: id, scope: scope)
      let m = try self.members(tx, groupIds: [id])[id]
      return router.json(
        201, projection.apply(g.json(members: m, location: router.location), kind: .group),
        headers: [("Location", router.location + "/Groups/" + id), ("ETag", SCIMRouter.etag(g.version))])
    }
  }

  func addMembers(_ tx: PGTransaction, group: String, _ ids: [String]) throws {
    guard !ids.isEmpty else { return }
    try tx.query(
      """
      INSERT INTO scim_group_members (group_id, member_id)
      SELECT \(group)::uuid, m FROM unnest(\(PGTextArray(ids))::uuid[]) m ON CONFLICT DO NOTHING
      """)
  }

  /// Applies membership changes in order; returns every member touched.
  func applyMemberChanges(_ tx: PGTransaction, group: String, _ changes: [MemberChange], scope: DirectoryScope) throws -> Set<String> {
    var touched = Set<String>()
    for change in changes {
      switch change {
      case .add(let ids):
        let valid = try checkedMembers(tx, ids, scope: scope)
        try addMembers(tx, group: group, valid)
        touched.formUnion(valid)
      case .remove(let ids):
        let valid = ids.map { $0.lowercased() }.filter(isUUID)
        let removed = try tx.query(
          """
          DELETE FROM scim_group_members gm USING unnest(\(PGTextArray(valid))::uuid[]) AS ids(id)
          WHERE gm.group_id = \(group)::uuid AND gm.member_id = ids.id RETURNING gm.member_id
          """
        ).rows.compactMap { $0["member_id"] }
        touched.formUnion(removed)
      case .removeAll:
        touched.formUnion(try tx.query("DELETE FROM scim_group_members WHERE group_id = \(group)::uuid RETURNING member_id").rows.compactMap { $0["member_id"] })
      case .replace(let ids):
        let valid = try checkedMembers(tx, ids, scope: scope)
        touched.formUnion(try tx.query("DELETE FROM scim_group_members WHERE group_id = \(group)::uuid RETURNING member_id").rows.compactMap { $0["member_id"] })
        try addMembers(tx, group: group, valid)
        touched.formUnion(valid)
      }
    }
    return touched
  }

  func replace(_ r: SCIMRequest, id: String, scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse {
    guard case .object(let raw) = try router.body(r) else { throw SCIMError.invalidSyntax("A Group must be a JSON object.") }
    if let bodyId = raw.first(where: { $0.key.lowercased() == "id" })?.value.stringValue, bodyId.lowercased() != id {
      throw SCIMError.mutability("The 'id' in the body does not match the URL.")
    }
    var resource = try normalizer.normalize(raw)
    guard resource["displayName"]?.stringValue?.isEmpty == false else { throw SCIMError.invalidValue("'displayName' is required.") }
    let memberIds = (resource["members"]?.arrayValue ?? []).compactMap { $0["value"]?.stringValue }
    resource["members"] = nil
    let projection = try router.projection(r, searchBody: nil)
    return try ctx.pool.transaction { tx in
      let current = try load(tx, id: id, scope: scope, forUpdate: true)
      try router.checkIfMatch(r, version: current.version)
      let touched = try applyMemberChanges(tx, group: id, [.replace(memberIds)], scope: scope)
      return try save(tx, current: current, resource: resource, touched: touched, scope: scope, router: router, projection: projection, action: "scim.group.replace")
    }
  }

  func patch(_ r: SCIMRequest, id: String, scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse {
    let body = try router.body(r)
    let projection = try router.projection(r, searchBody: nil)
    return try ctx.pool.transaction { tx in
      let current = try load(tx, id: id, scope: scope, forUpdate: true)
      try router.checkIfMatch(r, version: current.version)
      var full = current.resource
      full["displayName"] = .string(current.displayName)
      if let e = current.externalId { full["externalId"] = .string(e) }
      let result = try patcher.apply(body, to: full, id: current.id)
      let touched = try applyMemberChanges(tx, group: id, result.memberChanges, scope: scope)
      var resource = result.resource
      resource["members"] = nil
      let response = try save(tx, current: current, resource: resource, touched: touched, scope: scope, router: router, projection: projection, action: "scim.group.patch")
      // Entra expects 204 for group PATCH; a body is returned when attributes were asked for.
      if r.queryValue("attributes") == nil && r.queryValue("excludedAttributes") == nil && !result.memberChanges.isEmpty {
        return SCIMResponse(status: 204, headers: response.headers)
      }
      return response
    }
  }

  func save(
    _ tx: PGTransaction, current: SCIMGroupRow, resource: [String: JSONValue], touched: Set<String>, scope: DirectoryScope,
    router: SCIMRouter, projection: Projection, action: String
  ) throws -> SCIMResponse {
    let name = resource["displayName"]?.stringValue ?? current.displayName
    if name.lowercased() != current.displayName.lowercased(),
      try tx.one(
        "SELECT 1 FROM scim_groups WHERE workspace_id = \(scope.workspaceId)::uuid AND lower(display_name) = lower(\(name)) AND id <> \(current.id)::uuid"
      ) != nil
    {
      throw SCIMError.uniqueness("A Group named '\(name.prefix(200))' already exists.")
    }
    var stored = resource
    let externalId = stored["externalId"]?.stringValue
    stored["displayName"] = nil
    stored["externalId"] = nil
    try tx.query(
      """
      UPDATE scim_groups SET display_name = \(name), external_id = \(externalId), resource = \(JSONValue.object(stored))::jsonb,
        version = version + 1, updated_at = now()
      WHERE id = \(current.id)::uuid
      """)
    if current.role != nil && !touched.isEmpty {
      guard let w = try WorkspaceRow.load(tx, scope.workspaceId, lock: .share) else { throw SCIMError.notFound("Workspace not found.") }
      try roles.recompute(tx, workspace: w, memberIds: Array(touched))
    }
    try AuditLog.record(
      tx, workspaceId: scope.workspaceId, actor: .directory(scope.directoryId), action: action, targetType: "group", targetId: current.id,
      before: ["displayName": .string(current.displayName)], after: ["displayName": .string(name), "membersChanged": .int(touched.count)])
    let g = try load(tx, id: current.id, scope: scope)
    let m = projection.excludes("members") ? nil : try members(tx, groupIds: [g.id])[g.id]
    return router.json(200, projection.apply(g.json(members: m, location: router.location), kind: .group), headers: [("ETag", SCIMRouter.etag(g.version))])
  }

  func delete(_ r: SCIMRequest, id: String, scope: DirectoryScope, router: SCIMRouter) throws -> SCIMResponse {
    try ctx.pool.transaction { tx in
      let current = try load(tx, id: id, scope: scope, forUpdate: true)
      try router.checkIfMatch(r, version: current.version)
      let members = try tx.query("SELECT member_id FROM scim_group_members WHERE group_id = \(id)::uuid").rows.compactMap { $0["member_id"] }
      try tx.query("DELETE FROM scim_groups WHERE id = \(id)::uuid")
      if current.role != nil, let w = try WorkspaceRow.load(tx, scope.workspaceId, lock: .share) {
        try roles.recompute(tx, workspace: w, memberIds: members)
      }
      try AuditLog.record(
        tx, workspaceId: scope.workspaceId, actor: .directory(scope.directoryId), action: "scim.group.delete", targetType: "group", targetId: id,
        before: ["displayName": .string(current.displayName)])
      return SCIMResponse(status: 204)
    }
  }
}
