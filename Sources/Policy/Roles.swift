import Vocabulary

/// A mapped group a member belongs to.
public struct GroupRole: Sendable, Equatable {
  public var role: Role
  /// 1 is the highest priority (as in Okta).
  public var priority: Int
  public init(role: Role, priority: Int) {
    self.role = role
    self.priority = priority
  }
}

/// C4/C5: the effective role of a member.
///
/// 1. An explicit, non-`default` `loomMemberRole` wins.
/// 2. Else the role of the member's highest-priority mapped group; on a tie
///    the more privileged role.
/// 3. Else `default` semantics: a new member gets the workspace default; an
///    existing member keeps a role that was set by hand or by default — but a
///    role the IdP granted (attribute or group) and no longer grants falls
///    back to the workspace default, so leaving the Admins group demotes.
public func resolveRole(
  attribute: String?, groups: [GroupRole], current: (role: Role, source: RoleSource)?, workspaceDefault: Role
) -> (role: Role, source: RoleSource) {
  if let attribute, attribute != "default", let role = Role(rawValue: attribute) {
    return (role, .attribute)
  }
  if let best = groups.min(by: { ($0.priority, -$0.role.privilege) < ($1.priority, -$1.role.privilege) }) {
    return (best.role, .group)
  }
  guard let current else { return (workspaceDefault, .default) }
  switch current.source {
  case .attribute, .group: return (workspaceDefault, .default)
  case .default, .manual: return current
  }
}
