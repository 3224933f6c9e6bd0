import Addresses
import Crypto
import Foundation
import JSON
import JSONRPC
import Policy
import Postgres
import RosterStore
import ServiceKit

extension ProvisioningService {
  func domainMethods() -> [MethodSpec] {
    let domainParams = [.workspaceId, ParamSpec("domainId", .uuid)]
    return [
      MethodSpec(
        "domain.add",
        summary:
          "Starts verifying a domain by DNS TXT record or by email (Enterprise only; public mail domains refused); reports the members outside the workspace's domains.",
        params: [
          .workspaceId, ParamSpec("domain", .string(maxLength: 300)), ParamSpec("method", .enumeration(["dns", "email"])),
          .optional("email", .email, "the inbox at the domain that receives the link (method email)"), .actor,
        ], result: "Domain with dnsRecord or email, and outsideDomainMembers"
      ) { p, c in try self.addDomain(p, c) },
      MethodSpec("domain.check", summary: "Looks the TXT record up now.", params: domainParams, result: "Domain") { p, _ in
        try self.checkDomain(p)
      },
      MethodSpec(
        "domain.confirm", summary: "Verifies a domain from the link in the verification email (single use).",
        params: [ParamSpec("token", .string(maxLength: 200))], result: "Domain"
      ) { p, _ in try self.confirmDomain(p) },
      MethodSpec("domain.list", summary: "The workspace's domains.", params: [.workspaceId], result: "{domains}") { p, _ in
        let wid = try p.id("workspaceId")
        return try self.ctx.pool.transaction { tx in
          guard try tx.one("SELECT 1 FROM workspaces WHERE id = \(wid)::uuid") != nil else { throw RPCError.workspaceNotFound() }
          let rows = try tx.query(DomainRow.select + " WHERE workspace_id = \(wid)::uuid ORDER BY domain").rows
          return ["domains": .array(try rows.map { try DomainRow($0).json })]
        }
      },
      MethodSpec(
        "domain.remove", summary: "Removes a domain. Operators only; audited.", params: domainParams + [.actor], result: "Domain"
      ) { p, c in try self.removeDomain(p, c) },
      MethodSpec(
        "domain.listPending", summary: "Pending domains across all workspaces, soonest re-check first (for operators).",
        params: [.limit], result: "{domains}"
      ) { p, _ in
        let rows = try self.ctx.pool.query(
          DomainRow.select + " WHERE status = 'pending' ORDER BY next_check_at NULLS LAST, created_at LIMIT \(p.limit())"
        ).rows
        return ["domains": .array(try rows.map { try DomainRow($0).json })]
      },
    ]
  }

  func addDomain(_ p: Params, _ c: CallContext) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    let method = try p.string("method")
    let domain: String
    let rawDomain = try p.string("domain")
    do {
      domain = try lists.validateClaimable(rawDomain)
    } catch {
      throw RPCError.invalidParam("domain", error.message, reason: error.reason)
    }
    var email: String?
    if method == "email" {
      guard let e = p.optionalString("email")?.trimmingCharacters(in: .whitespaces) else {
        throw RPCError.invalidParam("email", "Method 'email' needs 'email': an inbox at \(domain).", reason: "missing_param")
      }
      guard DomainName.ofEmail(e) == domain else {
        throw RPCError.invalidParam("email", "The verification email must go to an address at \(domain).", reason: "email_domain_mismatch")
      }
      email = EmailAddress.storageForm(e)
    } else if p.has("email") {
      throw RPCError.invalidParam("email", "'email' applies only to method 'email'.", reason: "unexpected_param")
    }
    return try ctx.pool.transaction { tx in
      guard let w = try WorkspaceRow.load(tx, wid) else { throw RPCError.workspaceNotFound() }
      let actor = try ctx.resolveActor(p, workspaceId: wid, context: c, tx: tx)
      guard w.isEnterprise else { throw RPCError.planRequired("Domain verification") }
      if try tx.one("SELECT 1 FROM domains WHERE domain = \(domain) AND status = 'verified' AND workspace_id <> \(wid)::uuid") != nil {
        throw RPCError.conflict("domain_taken", "'\(domain)' is already verified by another workspace.")
      }
      var result: [String: JSONValue]
      if let existing = try tx.one(DomainRow.select + " WHERE workspace_id = \(wid)::uuid AND domain = \(domain) FOR UPDATE").map(DomainRow.init),
        existing.status == "verified"
      {
        result = existing.json.objectValue!  // already verified: nothing to do
      } else {
        let now = Date()
        let expires = now.addingTimeInterval(DomainCheckSchedule.expiry)
        let firstCheck = now.addingTimeInterval(DomainCheckSchedule.delay(afterChecks: 0))
        let token = Secrets.token(bits: 160)
        let dnsToken: String? = method == "dns" ? token : nil
        let tokenHash: String? = method == "email" ? SHA256.hex(token) : nil
        let row = try tx.single(
          """
          INSERT INTO domains (workspace_id, domain, method, status, dns_token, email, email_token_hash, expires_at, next_check_at)
          VALUES (\(wid)::uuid, \(domain), \(method), 'pending', \(dnsToken), \(email), \(tokenHash), \(expires), \(method == "dns" ? firstCheck : nil))
          ON CONFLICT (workspace_id, domain) DO UPDATE SET method = EXCLUDED.method, status = 'pending', dns_token = EXCLUDED.dns_token,
            email = EXCLUDED.email, email_token_hash = EXCLUDED.email_token_hash, created_at = now(), verified_at = NULL,
            expires_at = EXCLUDED.expires_at, next_check_at = EXCLUDED.next_check_at, check_count = 0, last_checked_at = NULL,
            last_check_result = NULL
          RETURNING id
          """)
        let id = try row.string("id")
        let d = try DomainRow(tx.single(DomainRow.select + " WHERE id = \(id)::uuid", "the domain"))
        if let email {
          try ctx.enqueueMail(
            tx, template: .domainVerification, to: email,
            data: [
              "domain": .string(domain), "workspaceName": .string(w.name),
              "link": .string(ctx.config.publicURL + "/domains/confirm?token=" + token), "expiresAt": .orNull(d.expiresAt),
            ], workspaceId: wid)
        }
        try AuditLog.record(
          tx, workspaceId: wid, actor: actor, action: "domain.add", targetType: "domain", targetId: id,
          after: ["domain": .string(domain), "method": .string(method), "email": .orNull(email)])
        result = d.json.objectValue!
      }
      let outside = try outsideDomainMembers(tx, workspaceId: wid, plus: domain)
      result["outsideDomainMembers"] = .array(outside.members.map(\.brief))
      result["outsideDomainMemberCount"] = .int(outside.count)
      return .object(result)
    }
  }

  /// D6: active members whose email is outside the verified domains (and `plus`).
  package func outsideDomainMembers(_ tx: PGTransaction, workspaceId: String, plus: String?) throws -> (members: [MemberRow], count: Int64) {
    let verified = try tx.query("SELECT domain FROM domains WHERE workspace_id = \(workspaceId)::uuid AND status = 'verified'").rows
      .compactMap { $0["domain"] }
    let domains = PGTextArray(verified + (plus.map { [$0] } ?? []))
    let filter: SQL = """
       WHERE m.workspace_id = \(workspaceId)::uuid AND m.status = 'active'
         AND u.email_domain <> ALL(\(domains)::text[])
      """
    let count = try tx.single("SELECT count(*) AS n FROM members m JOIN users u ON u.id = m.user_id" + filter).int("n")
    let rows = try tx.query(MemberRow.select + filter + " ORDER BY u.email LIMIT 1000").rows.map(MemberRow.init)
    return (rows, count)
  }

  func checkDomain(_ p: Params) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    let did = try p.id("domainId")
    let now = Date()
    try ctx.pool.transaction { tx in
      guard try tx.one("SELECT 1 FROM domains WHERE id = \(did)::uuid AND workspace_id = \(wid)::uuid") != nil else {
        throw RPCError.notFound("Domain", reason: "domain_not_found")
      }
      try verifier.expire(tx, now: now, only: did)
    }
    guard let row = try verifier.check(domainId: did, now: now) else { throw RPCError.notFound("Domain", reason: "domain_not_found") }
    return row.json
  }

  func confirmDomain(_ p: Params) throws -> JSONValue {
    let token = try p.string("token").trimmingCharacters(in: .whitespaces)
    let hash = SHA256.hex(token)
    let now = Date()
    return try ctx.pool.transaction { tx in
      guard let d = try tx.one(DomainRow.select + " WHERE email_token_hash = \(hash) FOR UPDATE").map(DomainRow.init) else {
        throw RPCError.notFound("Verification token", reason: "token_not_found")
      }
      // The hash stays after a verification, so a second click can say so.
      if d.status == "verified" {
        throw RPCError.conflict("token_used", "This verification link was already used: \(d.domain) is verified.")
      }
      guard d.status == "pending", let expires = try tx.one("SELECT expires_at > \(now) AS valid FROM domains WHERE id = \(d.id)::uuid"),
        try expires.bool("valid")
      else {
        throw RPCError.conflict("token_expired", "This verification link has expired; add the domain again to get a new one.")
      }
      do {
        try verifier.markVerified(tx, d, actor: .system("email-confirmation"), now: now)
      } catch is DomainVerifier.PlanRequired {
        throw RPCError.planRequired("Verifying a domain")
      }
      return try DomainRow(tx.single(DomainRow.select + " WHERE id = \(d.id)::uuid", "the domain")).json
    }
  }

  func removeDomain(_ p: Params, _ c: CallContext) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    let did = try p.id("domainId")
    return try ctx.pool.transaction { tx in
      guard try tx.one("SELECT 1 FROM workspaces WHERE id = \(wid)::uuid") != nil else { throw RPCError.workspaceNotFound() }
      let actor = try ctx.resolveActor(p, workspaceId: wid, context: c, tx: tx)
      guard case .ops = actor else {
        throw RPCError.forbidden("ops_required", "Workspace admins cannot remove a domain; ask an operator.")
      }
      guard let d = try tx.one(DomainRow.select + " WHERE id = \(did)::uuid AND workspace_id = \(wid)::uuid FOR UPDATE").map(DomainRow.init)
      else { throw RPCError.notFound("Domain", reason: "domain_not_found") }
      try tx.query("DELETE FROM domains WHERE id = \(did)::uuid")
      try AuditLog.record(
        tx, workspaceId: wid, actor: actor, action: "domain.remove", targetType: "domain", targetId: did, before: d.json,
        event: .init("domain.removed", data: ["domainId": .string(did), "domain": .string(d.domain)]))
      var out = d.json.objectValue!
      out["status"] = "removed"
      return .object(out)
    }
  }
}

