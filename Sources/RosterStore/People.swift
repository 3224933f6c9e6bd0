import JSON
import Postgres

/// Users are global: one per email address (case-insensitive), member of
/// many workspaces.
public enum Users {
  /// The user with this email, created if new. Returns (id, name).
  public static func findOrCreate(_ tx: PGTransaction, email: String, name: String?) throws -> (id: String, name: String) {
    if let r = try tx.one("SELECT id, name FROM users WHERE lower(email) = lower(\(email))") {
      let id = try r.string("id")
      var current = try r.string("name")
      if current.isEmpty, let name, !name.isEmpty {
        try tx.query("UPDATE users SET name = \(name) WHERE id = \(id)::uuid")
        current = name
      }
      return (id, current)
    }
    let r = try tx.single(
      """
      INSERT INTO users (email, name) VALUES (\(email), \(name ?? ""))
      ON CONFLICT (lower(email)) DO UPDATE SET email = users.email
      RETURNING id, name
      """, "the user")
    return (try r.string("id"), try r.string("name"))
  }

  /// The user with this email if there is one, without creating or changing anything.
  public static func find(_ tx: PGTransaction, email: String) throws -> String? {
    try tx.one("SELECT id FROM users WHERE lower(email) = lower(\(email))")?.string("id")
  }
}

/// C8: what a workspace's directory may change about a person.
///
/// A user (one per email) may belong to many workspaces. A directory is
/// authoritative for the shared identity (email, name) only when its
/// workspace owns it: the person's current email and the new one are both in
/// the workspace's verified domains (and the workspace is on Enterprise,
/// D1). Otherwise an email change re-links only this workspace's membership
/// to the user with the new email (created if new) and leaves the old user
/// and their other memberships untouched, and a name stays on the membership.
public enum DirectoryIdentity {
  /// Whether every address's domain is verified by the workspace.
  public static func owns(_ tx: PGTransaction, workspace: WorkspaceRow, emails: [String]) throws -> Bool {
    guard workspace.isEnterprise else { return false }
    let domains = emails.map { email -> String in
      guard let at = email.lastIndex(of: "@") else { return "" }
      return String(email[email.index(after: at)...]).lowercased()
    }
    let row = try tx.single(
      """
      SELECT count(DISTINCT d.domain) AS n, (SELECT count(DISTINCT x) FROM unnest(\(PGTextArray(domains))::text[]) x) AS wanted
      FROM domains d WHERE d.workspace_id = \(workspace.id)::uuid AND d.status = 'verified' AND d.domain = ANY(\(PGTextArray(domains))::text[])
      """)
    return try row.int("n") == row.int("wanted") && !domains.contains("")
  }

  public struct EmailTaken: Error, Sendable {
    public let email: String
  }

  /// Applies the email and name a directory sent for `member` (loaded and
  /// locked by the caller). Returns true when anything changed.
  @discardableResult
  public static func apply(
    _ tx: PGTransaction, workspace w: WorkspaceRow, member m: MemberRow, email: String, name: String?
  ) throws -> Bool {
    var changed = false
    var userId = m.userId
    var ownsUser = true
    if email.lowercased() != m.email.lowercased() {
      let owned = try owns(tx, workspace: w, emails: [m.email, email])
      if let other = try Users.find(tx, email: email), other != m.userId {
        // Someone with that address exists: this membership becomes theirs
        // (unless they are already a member here); neither user changes.
        if try tx.one("SELECT 1 FROM members WHERE workspace_id = \(w.id)::uuid AND user_id = \(other)::uuid") != nil {
          throw EmailTaken(email: email)
        }
        userId = other
        ownsUser = false
      } else if owned {
        // The workspace owns both addresses: the person's address changes everywhere.
        try tx.query("UPDATE users SET email = \(email) WHERE id = \(m.userId)::uuid")
      } else {
        userId = try tx.single(
          "INSERT INTO users (email, name) VALUES (\(email), \(name ?? m.name)) RETURNING id", "the new user").string("id")
        ownsUser = false
      }
      if userId != m.userId {
        try tx.query("UPDATE members SET user_id = \(userId)::uuid, updated_at = now() WHERE id = \(m.id)::uuid")
      }
      changed = true
    }
    if let name, !name.isEmpty, name != m.name {
      try tx.query("UPDATE members SET name = \(name), updated_at = now() WHERE id = \(m.id)::uuid")
      if ownsUser, try owns(tx, workspace: w, emails: [email]) {
        try tx.query("UPDATE users SET name = \(name) WHERE id = \(userId)::uuid")
      }
      changed = true
    }
    return changed
  }
}
