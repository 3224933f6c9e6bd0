/// The words Roster stores and every process shares. Each is the Swift side
/// of a CHECK constraint in `schema/`: a value that is not one of these does
/// not compile here and is refused by the database there.

/// A membership's state (S7, R1).
public enum MemberStatus: String, Sendable, CaseIterable {
  case active, deactivated, deleted
}

/// Workspace roles, most privileged first.
public enum Role: String, Sendable, CaseIterable, Comparable {
  case admin, creator, viewer

  public var privilege: Int {
    switch self {
    case .admin: return 3
    case .creator: return 2
    case .viewer: return 1
    }
  }

  public static func < (a: Role, b: Role) -> Bool { a.privilege < b.privilege }
}

/// Where a member's role came from (C4, C5): the IdP's role attribute, a
/// mapped group, the workspace default, or an admin's hand.
public enum RoleSource: String, Sendable, CaseIterable {
  case attribute, group, `default`, manual
}

/// How a member came to be in the workspace.
public enum JoinedBy: String, Sendable, CaseIterable {
  case owner, invite, jit, captured, scim
}

/// What removing a member does (R1): deactivate only, or delete.
public enum DeprovisionMode: String, Sendable, CaseIterable {
  case deactivate, delete
}

/// What happens to a deleted member's content (R2).
public enum ContentPolicy: String, Sendable, CaseIterable {
  case transfer, delete
}

/// The durable jobs the deprovisioning process runs (R5, R6).
public enum JobKind: String, Sendable, CaseIterable {
  case deprovision
  case moveContent = "move_content"
}

public enum JobStatus: String, Sendable, CaseIterable {
  case queued, running, done, failed
}

/// The emails Roster sends (N…).
public enum MailTemplate: String, Sendable, CaseIterable {
  case domainVerification = "domain_verification"
  case ssoLive = "sso_live"
  case transferTargetConflict = "transfer_target_conflict"
  case breakGlassSignIn = "break_glass_sign_in"
  case deprovisionSummary = "deprovision_summary"
}

public enum NotificationStatus: String, Sendable, CaseIterable {
  case pending, sent, failed, cancelled
}
