import Addresses
import Foundation
import JSON
import Policy
import Postgres

/// Users are global: one per address (S10: compared by `EmailAddress.key`),
/// member of many workspaces.
public enum Users {
  /// The comparison key of an address; an identifier that is not an address
  /// (some IdPs send bare account names) is folded the same way.
  public static func key(_ email: String) -> String {
    EmailAddress.key(email) ?? email.precomposedStringWithCanonicalMapping.folding(options: .caseInsensitive, locale: nil)
  }

  /// The user with this address, created if new. Returns (id, name).
  public static func findOrCreate(_ tx: PGTransaction, email: String, name: String?) throws -> (id: String, name: String) {
    let key = key(email)
    if let r = try tx.one("SELECT id, name FROM users WHERE email_key = \(key)") {
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
      INSERT INTO users (email, email_key, name) VALUES (\(email), \(key), \(name ?? ""))
      ON CONFLICT (email_key) DO UPDATE SET email = users.email
      RETURNING id, name
      """, "the user")
    return (try r.string("id"), try r.string("name"))
  }

  /// The user with this address if there is one, without creating or changing anything.
  public static func find(_ tx: PGTransaction, email: String) throws -> String? {
    try tx.one("SELECT id FROM users WHERE email_key = \(key(email))")?.string("id")
  }

  /// A new user (the caller knows there is none with this address).
  public static func create(_ tx: PGTransaction, email: String, name: String) throws -> String {
    try tx.single("INSERT INTO users (email, email_key, name) VALUES (\(email), \(key(email)), \(name)) RETURNING id", "the new user")
      .string("id")
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
    let domains = emails.map { DomainName.ofEmail($0) ?? "" }
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
    if Users.key(email) != Users.key(m.email) {
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
        try tx.query("UPDATE users SET email = \(email), email_key = \(Users.key(email)) WHERE id = \(m.userId)::uuid")
      } else {
        userId = try Users.create(tx, email: email, name: name ?? m.name)
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

/// S10 keys for users stored before version 3 (the Swift step of
/// `003_order_and_addresses.sql`).
enum AddressKeys {
  static func backfill(_ tx: PGTransaction, log: (String) -> Void) throws {
    let rows = try tx.query("SELECT id, email FROM users ORDER BY created_at, id").rows
    var seen: [String: String] = [:]
    var ids: [String] = [], keys: [String] = []
    for r in rows {
      let id = try r.string("id")
      let email = try r.string("email")
      var key = EmailAddress.key(email) ?? email.lowercased()
      if let first = seen[key] {
        // Two people who are one under S10: the older keeps the address; the
        // other gets a key no address can have, for an operator to merge.
        log("users \(first) and \(id) are one address once compared case-insensitively and IDNA-decoded; \(id) is kept apart (key prefixed 'duplicate:')")
        key = "duplicate:\(id):\(key)"
      } else {
        seen[key] = id
      }
      ids.append(id)
      keys.append(key)
    }
    guard !ids.isEmpty else { return }
    try tx.query(
      """
      UPDATE users u SET email_key = k.key FROM unnest(\(PGTextArray(ids))::uuid[], \(PGTextArray(keys))::text[]) AS k(id, key)
      WHERE u.id = k.id
      """)
  }
}
