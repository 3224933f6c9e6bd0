import Vocabulary
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

  /// `w` must have been loaded with at least a share lock (the transfer
  /// target it names is checked, R4).
  func recompute(_ tx: PGTransaction, workspace w: WorkspaceRow, memberIds: [String]) throws {
    guard !memberIds.isEmpty else { return }
    // Lock first, then read, in two statements: a concurrent change of the
    // same members' groups or attribute commits before we read (the read's
    // snapshot is taken after the lock is ours), so the role always follows
    // the committed memberships and attribute (C5). Sorted: no deadlocks
    // between two recomputes of overlapping sets.
    try tx.query(
      "SELECT 1 FROM members WHERE id = ANY(\(PGTextArray(memberIds))::uuid[]) ORDER BY id FOR NO KEY UPDATE")
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
    let fallback = w.defaultRole
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
    // One statement: the new roles, and for those whose role (not just its
    // source) changed, member.role_changed — the member's feed key is raised
    // in the same row update (one new row version per member, not two).
    try tx.query(
      """
      WITH c AS (
        SELECT * FROM unnest(\(PGTextArray(ids))::uuid[], \(PGTextArray(newRoles))::text[], \(PGTextArray(sources))::text[],
                             \(PGTextArray(oldRoles))::text[]) WITH ORDINALITY AS c(id, role, source, old_role, n)
      ), u AS (
        UPDATE members m SET role = c.role, role_source = c.source, updated_at = now(),
          feed_key = CASE WHEN c.role <> c.old_role THEN greatest(m.feed_key, pg_current_xact_id()) ELSE m.feed_key END
        FROM c WHERE m.id = c.id
        RETURNING m.id, m.feed_key, c.n, c.old_role, c.role, c.source
      )
      \(sql: Journal.insertEventsForUpdatedMembers(
        from: "u", type: "member.role_changed", workspaceId: w.id,
        data: "jsonb_build_object('from', src.old_role, 'to', src.role, 'roleSource', src.source)", where: "src.old_role <> src.role"))
      """)
    tx.notifyAfterCommit(Journal.channel)
  }
}
