import JSON
import Policy
import Postgres
import RosterStore
import ServiceKit

/// C5: recomputes effective roles after attribute, membership or mapping
/// changes — for one member or ten thousand, in two statements: the inputs
/// are read in one query, `resolveRole` (the same pure function the unit
/// tests check) decides, and the changes are written with one UPDATE.
struct RoleSync: Sendable {
  let ctx: ServiceContext

  func recompute(_ tx: PGTransaction, workspace w: WorkspaceRow, memberIds: [String]) throws {
    guard !memberIds.isEmpty else { return }
    let rows = try tx.query(
      """
      SELECT m.id, m.role, m.role_source, m.role_attribute,
        coalesce((SELECT json_agg(json_build_object('role', g.role, 'priority', g.priority))
                  FROM scim_group_members gm JOIN scim_groups g ON g.id = gm.group_id
                  WHERE gm.member_id = m.id AND g.role IS NOT NULL), '[]') AS groups
      FROM unnest(\(PGTextArray(memberIds))::uuid[]) AS ids(id) JOIN members m ON m.id = ids.id
      WHERE m.status <> 'deleted'
      """
    ).rows
    let fallback = Role(rawValue: w.defaultRole) ?? .creator
    var ids: [String] = [], newRoles: [String] = [], sources: [String] = [], oldRoles: [String] = []
    for r in rows {
      let id = try r.string("id")
      let current = (Role(rawValue: try r.string("role")) ?? .viewer, RoleSource(rawValue: try r.string("role_source")) ?? .default)
      let groups = (try r.json("groups").arrayValue ?? []).compactMap { g -> GroupRole? in
        guard let role = g["role"]?.stringValue.flatMap(Role.init(rawValue:)), let p = g["priority"]?.intValue else { return nil }
        return GroupRole(role: role, priority: Int(p))
      }
      let resolved = resolveRole(attribute: r["role_attribute"], groups: groups, current: current, workspaceDefault: fallback)
      guard resolved.role != current.0 || resolved.source != current.1 else { continue }
      if resolved.role == .viewer && current.0 != .viewer {
        try TargetProtection.check(w, memberId: id, attempt: .demote)  // R4
      }
      ids.append(id)
      newRoles.append(resolved.role.rawValue)
      sources.append(resolved.source.rawValue)
      oldRoles.append(current.0.rawValue)
    }
    guard !ids.isEmpty else { return }
    try tx.query(
      """
      UPDATE members m SET role = c.role, role_source = c.source, updated_at = now()
      FROM unnest(\(PGTextArray(ids))::uuid[], \(PGTextArray(newRoles))::text[], \(PGTextArray(sources))::text[]) AS c(id, role, source)
      WHERE m.id = c.id
      """)
    // member.role_changed for those whose role (not just its source) changed.
    var changedIds: [String] = [], from: [String] = [], to: [String] = [], src: [String] = []
    for i in ids.indices where newRoles[i] != oldRoles[i] {
      changedIds.append(ids[i])
      from.append(oldRoles[i])
      to.append(newRoles[i])
      src.append(sources[i])
    }
    guard !changedIds.isEmpty else { return }
    try tx.query(
      """
      INSERT INTO events (type, workspace_id, member_id, data)
      SELECT 'member.role_changed', \(w.id)::uuid, c.id, jsonb_build_object('from', c.old, 'to', c.new, 'roleSource', c.source)
      FROM unnest(\(PGTextArray(changedIds))::uuid[], \(PGTextArray(from))::text[], \(PGTextArray(to))::text[], \(PGTextArray(src))::text[])
        AS c(id, old, new, source)
      """)
    try tx.query("SELECT pg_notify('roster_events', 'batch')")
  }
}
