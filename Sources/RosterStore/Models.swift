import JSON
import Postgres
import Vocabulary

/// A workspace row with its SSO and deprovisioning settings.
public struct WorkspaceRow: Sendable {
  public var id: String
  public var name: String
  public var plan: String
  public var ownerMemberId: String?
  public var createdAt: String?
  public var ssoConnection: JSONValue
  public var ssoConfiguredAt: String?
  public var defaultRole: Role
  public var enforceSso: Bool
  public var domainCapture: Bool
  public var ssoTested: Bool
  public var bypassMemberIds: [String]
  public var deprovisionMode: DeprovisionMode
  public var deprovisionContent: ContentPolicy?
  public var deprovisionTargetMemberId: String?
  /// The connection's id for its whole life (SP entity id and ACS URL, P1).
  public var ssoConnectionId: String?
  public var ssoAllowIdpInitiated: Bool

  public var isEnterprise: Bool { plan == "enterprise" }
  /// SSO counts only on the Enterprise plan (D1).
  public var ssoConfigured: Bool { isEnterprise && ssoConfiguredAt != nil }

  /// The break-glass list is read from the members who carry the flag (S9).
  public static let select: SQL = """
    SELECT id, name, plan, owner_member_id, created_at, sso_connection, sso_configured_at, sso_default_role, enforce_sso,
           domain_capture, sso_tested, deprovision_mode, deprovision_content, deprovision_target_member_id, sso_connection_id,
           sso_allow_idp_initiated,
           ARRAY(SELECT b.id FROM members b WHERE b.workspace_id = workspaces.id AND b.sso_bypass ORDER BY b.id) AS sso_bypass_member_ids
    FROM workspaces
    """

  public init(_ r: PGRow) throws {
    id = try r.string("id")
    name = try r.string("name")
    plan = try r.string("plan")
    ownerMemberId = r["owner_member_id"]
    createdAt = r.time("created_at")
    ssoConnection = try r.json("sso_connection")
    ssoConfiguredAt = r.time("sso_configured_at")
    defaultRole = try r.word("sso_default_role")
    enforceSso = try r.bool("enforce_sso")
    domainCapture = try r.bool("domain_capture")
    ssoTested = try r.bool("sso_tested")
    bypassMemberIds = r.stringArray("sso_bypass_member_ids")
    deprovisionMode = try r.word("deprovision_mode")
    deprovisionContent = r["deprovision_content"] == nil ? nil : try r.word("deprovision_content") as ContentPolicy
    deprovisionTargetMemberId = r["deprovision_target_member_id"]
    ssoConnectionId = r["sso_connection_id"]
    ssoAllowIdpInitiated = try r.bool("sso_allow_idp_initiated")
  }

  /// How a transaction holds the workspace row. Lock order everywhere: the
  /// workspace, then its members (R4, S9) — paths that check the transfer
  /// target or the break-glass list hold the workspace at least shared
  /// before they lock a member, and paths that change those settings hold
  /// it exclusively.
  public enum Lock: Sendable {
    case none
    /// Settings cannot change until commit (FOR SHARE; concurrent sharers do not wait).
    case share
    /// This transaction changes the settings (FOR UPDATE).
    case update
  }

  public static func load(_ tx: PGTransaction, _ id: String, forUpdate: Bool = false, lock: Lock = .none) throws -> WorkspaceRow? {
    var q = WorkspaceRow.select + " WHERE id = \(id)::uuid"
    switch forUpdate ? .update : lock {
    case .none: break
    case .share: q.append(" FOR SHARE OF workspaces")
    case .update: q.append(" FOR UPDATE OF workspaces")
    }
    return try tx.one(q).map(WorkspaceRow.init)
  }

  /// The SSO settings, with what the IT admin pastes into the IdP: the SP
  /// entity id, ACS and metadata URLs (SAML) or the redirect URI (OIDC).
  public func ssoJSON(publicURL: String) -> JSONValue {
    var connection = ssoConnection.objectValue ?? [:]
    let certificates = connection.removeValue(forKey: "certificates") ?? []
    var o: [String: JSONValue] = [
      "configured": .bool(ssoConfiguredAt != nil), "connection": ssoConnection.isNull ? .null : .object(connection),
      "defaultRole": .string(defaultRole.rawValue), "enforceSso": .bool(enforceSso), "domainCapture": .bool(domainCapture),
      "tested": .bool(ssoTested), "bypassMemberIds": .array(bypassMemberIds.map { .string($0) }),
      "configuredAt": .orNull(ssoConfiguredAt), "active": .bool(ssoConfigured), "allowIdpInitiated": .bool(ssoAllowIdpInitiated),
    ]
    if let id = ssoConnectionId, ssoConfiguredAt != nil {
      o["connectionId"] = .string(id)
      switch ssoConnection["protocol"]?.stringValue {
      case "saml"?:
        let entity = publicURL + "/sso/saml/" + id
        o["sp"] = ["entityId": .string(entity), "acsUrl": .string(entity + "/acs"), "metadataUrl": .string(entity + "/metadata")]
        o["certificates"] = certificates
      case "oidc"?:
        o["redirectUri"] = .string(publicURL + "/sso/oidc/callback")
      default: break
      }
    }
    return .object(o)
  }

  public var deprovisioningJSON: JSONValue {
    ["mode": .string(deprovisionMode.rawValue), "content": .orNull(deprovisionContent?.rawValue), "targetMemberId": .orNull(deprovisionTargetMemberId)]
  }

  public func json(publicURL: String) -> JSONValue {
    [
      "workspaceId": .string(id), "name": .string(name), "plan": .string(plan), "ownerMemberId": .orNull(ownerMemberId),
      "createdAt": .orNull(createdAt), "sso": ssoJSON(publicURL: publicURL), "deprovisioning": deprovisioningJSON,
    ]
  }
}

/// A membership joined with its user.
public struct MemberRow: Sendable {
  public var id: String
  public var workspaceId: String
  public var userId: String
  public var email: String
  public var name: String
  public var role: Role
  public var roleSource: RoleSource
  public var roleAttribute: String?
  public var status: MemberStatus
  public var joined: JoinedBy
  public var ssoLinked: Bool
  public var ssoLinkRequired: Bool
  public var createdAt: String?
  public var updatedAt: String?
  public var deactivatedAt: String?

  public var signInBlocked: String?

  /// Why the member cannot sign in, or NULL: deactivated (S7), or outside
  /// the verified domains of a workspace with SSO (S3). Reads `m`, `u`, `w`.
  public static let signInBlockedSQL: SQL = """
    CASE WHEN m.status = 'deactivated' THEN 'deactivated'
         WHEN w.plan = 'enterprise' AND w.sso_configured_at IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM domains d WHERE d.workspace_id = m.workspace_id AND d.status = 'verified' AND d.domain = u.email_domain)
         THEN 'outside_domain' END
    """

  /// The Member `name` is the membership's own (set by its directory, C8),
  /// else the shared user's.
  public static let select: SQL = """
    SELECT m.id, m.workspace_id, m.user_id, u.email, coalesce(m.name, u.name) AS name, m.role, m.role_source, m.role_attribute,
           m.status, m.joined, m.sso_linked, m.sso_link_required, m.created_at, m.updated_at, m.deactivated_at,
    """ + signInBlockedSQL + """
     AS sign_in_blocked
    FROM members m JOIN users u ON u.id = m.user_id JOIN workspaces w ON w.id = m.workspace_id
    """

  public init(_ r: PGRow) throws {
    id = try r.string("id")
    workspaceId = try r.string("workspace_id")
    userId = try r.string("user_id")
    email = try r.string("email")
    name = try r.string("name")
    role = try r.word("role")
    roleSource = try r.word("role_source")
    roleAttribute = r["role_attribute"]
    status = try r.word("status")
    joined = try r.word("joined")
    ssoLinked = try r.bool("sso_linked")
    ssoLinkRequired = try r.bool("sso_link_required")
    createdAt = r.time("created_at")
    updatedAt = r.time("updated_at")
    deactivatedAt = r.time("deactivated_at")
    signInBlocked = r["sign_in_blocked"]
  }

  /// A member of the workspace that is not deleted (deleted ones are invisible).
  public static func load(_ tx: PGTransaction, workspaceId: String, memberId: String, forUpdate: Bool = false, includeDeleted: Bool = false)
    throws -> MemberRow?
  {
    var q = MemberRow.select + " WHERE m.id = \(memberId)::uuid AND m.workspace_id = \(workspaceId)::uuid"
    if !includeDeleted { q.append(" AND m.status <> 'deleted'") }
    if forUpdate { q.append(" FOR UPDATE OF m") }
    return try tx.one(q).map(MemberRow.init)
  }

  public var json: JSONValue {
    [
      "memberId": .string(id), "workspaceId": .string(workspaceId), "userId": .string(userId), "email": .string(email),
      "name": .string(name), "role": .string(role.rawValue), "roleSource": .string(roleSource.rawValue), "status": .string(status.rawValue),
      "ssoLinked": .bool(ssoLinked), "ssoLinkRequired": .bool(ssoLinkRequired && !ssoLinked), "joined": .string(joined.rawValue),
      "createdAt": .orNull(createdAt), "updatedAt": .orNull(updatedAt), "deactivatedAt": .orNull(deactivatedAt),
      "signInBlocked": .orNull(signInBlocked),
    ]
  }

  /// The short form used in lists of affected people (outsideDomainMembers, …).
  public var brief: JSONValue {
    ["memberId": .string(id), "email": .string(email), "name": .string(name), "role": .string(role.rawValue)]
  }
}
