import Vocabulary
import Foundation
import JSON
import JSONRPC
import Postgres
import RosterRuntime
import RosterStore
import ServiceKit

/// The deprovisioning process: the policy (R1–R4), deprovisioning and
/// content-move jobs (R5, R6), and the content model the app registers.
public final class DeprovisioningService: Sendable {
  let ctx: ServiceContext
  let worker: JobWorker

  public struct Options: Sendable {
    public var workerThreads = 2
    public var pollSeconds: Double = 2
    public var rescueAfterSeconds: Double = 5
    /// A transient failure's first retry delay; doubles per attempt, capped at 5 minutes.
    public var retryBaseSeconds: Double = 2
    public init() {}
  }

  public init(host: ProcessHost, options: Options = Options()) {
    let ctx = ServiceContext(host: host)
    self.ctx = ctx
    let runner = JobRunner(ctx: ctx)
    worker = JobWorker(
      ctx: ctx, threads: options.workerThreads, pollSeconds: options.pollSeconds, rescueAfterSeconds: options.rescueAfterSeconds,
      retryBaseSeconds: options.retryBaseSeconds,
      run: { tx, job in try runner.run(tx, job) })
  }

  public func install(runJobs: Bool = true) {
    ctx.host.metrics.describe("roster_jobs_total", type: "counter", help: "Jobs run, by kind and outcome")
    ctx.host.dispatcher.register(policyMethods() + jobMethods() + contentMethods())
    ctx.host.dispatcher.document(errors: Self.errorDocs)
    let pool = ctx.pool
    ctx.host.metrics.addCollector {
      guard let r = try? pool.query(
        """
        SELECT count(*) FILTER (WHERE status = 'queued') AS queued, count(*) FILTER (WHERE status = 'running') AS running,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status IN ('queued', 'running'))), 0) AS oldest
        FROM jobs
        """
      ).first else { return [] }
      return [
        .init("roster_jobs_queued", "jobs waiting to run", [], r.double("queued") ?? 0),
        .init("roster_jobs_running", "jobs running", [], r.double("running") ?? 0),
        .init("roster_jobs_failed", "jobs that failed for good (job.retry to run again)", [], r.double("failed") ?? 0),
        .init("roster_jobs_oldest_age_seconds", "age of the oldest queued or running job", [], r.double("oldest") ?? 0),
      ]
    }
    if runJobs {
      worker.start()
      ctx.host.onStop("job workers") { [worker] in worker.stop() }
    }
  }

  // MARK: Policy

  func policyMethods() -> [MethodSpec] {
    [
      MethodSpec(
        "deprovision.configure",
        summary: "Sets what happens when a member is removed: deactivate (default), or delete with content transferred to an Admin or Creator, or deleted.",
        params: [
          .workspaceId, ParamSpec("mode", .enumeration(["deactivate", "delete"])), .optional("content", .enumeration(["transfer", "delete"])),
          .optional("targetMemberId", .uuid), .actor,
        ], result: "Deprovisioning settings"
      ) { p, c in try self.configure(p, c) },
      MethodSpec("deprovision.get", summary: "The deprovisioning settings.", params: [.workspaceId], result: "Deprovisioning settings") { p, _ in
        try self.ctx.pool.transaction { tx in
          guard let w = try WorkspaceRow.load(tx, try p.id("workspaceId")) else { throw RPCError.workspaceNotFound() }
          return try self.settings(tx, w)
        }
      },
      MethodSpec(
        "deprovision.member", summary: "Removes a member by hand: deactivated at once, then the policy runs as a job (the same path SCIM uses).",
        params: [.workspaceId, ParamSpec("memberId", .uuid), .actor], result: "Job"
      ) { p, c in try self.deprovisionMember(p, c) },
    ]
  }

  func settings(_ tx: PGTransaction, _ w: WorkspaceRow) throws -> JSONValue {
    var o = w.deprovisioningJSON.objectValue!
    o["workspaceId"] = .string(w.id)
    if let t = w.deprovisionTargetMemberId, let m = try MemberRow.load(tx, workspaceId: w.id, memberId: t, includeDeleted: true) {
      o["target"] = m.brief
    }
    return .object(o)
  }

  func configure(_ p: Params, _ c: CallContext) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    let mode: DeprovisionMode = try p.word("mode")
    let content: ContentPolicy? = try p.optionalWord("content")
    let target = p.optionalID("targetMemberId")
    switch (mode, content) {
    case (.deactivate, nil): break
    case (.deactivate, _):
      throw RPCError.invalidParam("content", "'content' applies only to mode 'delete'; deactivated members keep their content.")
    case (.delete, nil):
      throw RPCError.invalidParam("content", "Mode 'delete' needs 'content': \"transfer\" or \"delete\".", reason: "missing_param")
    default: break
    }
    if content == .transfer && target == nil {
      throw RPCError.invalidParam("targetMemberId", "Transferring content needs 'targetMemberId': an active Admin or Creator.", reason: "missing_param")
    }
    if content != .transfer && target != nil {
      throw RPCError.invalidParam("targetMemberId", "'targetMemberId' applies only to content 'transfer'.")
    }
    return try ctx.pool.transaction { tx in
      guard let w = try WorkspaceRow.load(tx, wid, forUpdate: true) else { throw RPCError.workspaceNotFound() }
      let actor = try ctx.resolveActor(p, workspaceId: wid, context: c, tx: tx)
      if let target {
        // Locked after the workspace (R4): a concurrent deactivation or
        // demotion of the target either commits first and is seen here, or
        // waits and then meets the protection.
        guard let t = try MemberRow.load(tx, workspaceId: wid, memberId: target, forUpdate: true) else {
          throw RPCError.notFound("Transfer target", reason: "target_not_found")
        }
        guard t.status == .active else {
          throw RPCError.conflict("target_inactive", "The transfer target must be an active member.")
        }
        guard t.role == .admin || t.role == .creator else {
          throw RPCError.conflict("target_not_eligible", "The transfer target must be an Admin or a Creator; \(t.email) is a Viewer.")
        }
      }
      let before = try settings(tx, w)
      try tx.query(
        """
        UPDATE workspaces SET deprovision_mode = \(mode), deprovision_content = \(content), deprovision_target_member_id = \(target)::uuid
        WHERE id = \(wid)::uuid
        """)
      let after = try settings(tx, try required(WorkspaceRow.load(tx, wid), "the workspace"))
      try AuditLog.record(tx, workspaceId: wid, actor: actor, action: "deprovision.configure", targetType: "workspace", targetId: wid, before: before, after: after)
      return after
    }
  }

  func deprovisionMember(_ p: Params, _ c: CallContext) throws -> JSONValue {
    let wid = try p.id("workspaceId")
    let mid = try p.id("memberId")
    return try ctx.withTargetProtection {
      try ctx.pool.transaction { tx in
        guard let w = try WorkspaceRow.load(tx, wid, forUpdate: true) else { throw RPCError.workspaceNotFound() }
        let actor = try ctx.resolveActor(p, workspaceId: wid, context: c, tx: tx)
        guard let m = try MemberRow.load(tx, workspaceId: wid, memberId: mid, forUpdate: true, includeDeleted: true) else {
          throw RPCError.memberNotFound()
        }
        if m.status == .deleted {
          throw RPCError.conflict("already_deprovisioned", "This member has already been removed.")
        }
        try TargetProtection.check(w, memberId: m.id, attempt: .deactivate)
        try AdminGuard.ensureNotLastAdmin(tx, member: m)
        let jobId = try Lifecycle.deactivate(tx, member: m, actor: actor, reason: "removed_by_admin")
        return try JobRow(tx.single(JobRow.select + " WHERE id = \(jobId)::uuid", "the job")).json
      }
    }
  }

  // MARK: Jobs

  func jobMethods() -> [MethodSpec] {
    [
      MethodSpec(
        "job.list", summary: "Jobs, newest first.",
        params: [
          .optional("status", .enumeration(["queued", "running", "done", "failed"])), .optional("workspaceId", .uuid), .optional("memberId", .uuid),
          .optional("kind", .enumeration(["deprovision", "move_content"])), .limit,
        ], result: "{jobs}"
      ) { p, _ in
        var q = JobRow.select + " WHERE true"
        if let s = p.optionalString("status") { q.append(" AND status = \(s)") }
        if let w = p.optionalID("workspaceId") { q.append(" AND workspace_id = \(w)::uuid") }
        if let m = p.optionalID("memberId") { q.append(" AND member_id = \(m)::uuid") }
        if let k = p.optionalString("kind") { q.append(" AND kind = \(k)") }
        q.append(" ORDER BY created_at DESC, id LIMIT \(p.limit())")
        return ["jobs": .array(try self.ctx.pool.query(q).rows.map { try JobRow($0).json })]
      },
      MethodSpec("job.get", summary: "One job.", params: [ParamSpec("jobId", .uuid)], result: "Job") { p, _ in
        guard let r = try self.ctx.pool.query(JobRow.select + " WHERE id = \(try p.id("jobId"))::uuid").first else {
          throw RPCError.notFound("Job", reason: "job_not_found")
        }
        return try JobRow(r).json
      },
      MethodSpec(
        "job.retry", summary: "Runs a failed job again now (attempts start over), or a queued one waiting out its back-off now.",
        params: [ParamSpec("jobId", .uuid), .actor], result: "Job"
      ) { p, c in
        try self.ctx.pool.transaction { tx in
          guard let job = try tx.one(JobRow.select + " WHERE id = \(try p.id("jobId"))::uuid FOR UPDATE").map(JobRow.init) else {
            throw RPCError.notFound("Job", reason: "job_not_found")
          }
          let actor = try self.ctx.resolveActor(p, workspaceId: job.workspaceId, context: c, tx: tx)
          guard job.status == .failed || job.status == .queued else {
            throw RPCError.conflict("job_not_failed", "Only a failed or waiting job can be retried; this one is \(job.status.rawValue).")
          }
          do {
            // A failed job starts its attempts over; a waiting one keeps them.
            try tx.query(
              """
              UPDATE jobs SET status = 'queued', attempts = CASE WHEN status = 'failed' THEN 0 ELSE attempts END, run_at = now(), updated_at = now()
              WHERE id = \(job.id)::uuid
              """)
          } catch let e as PGError where e.isUniqueViolation {
            throw RPCError.conflict("job_active", "Another job for the same member is already queued or running.")
          }
          tx.notifyAfterCommit("roster_jobs")
          try AuditLog.record(tx, workspaceId: job.workspaceId, actor: actor, action: "job.retry", targetType: "job", targetId: job.id)
          return try JobRow(tx.single(JobRow.select + " WHERE id = \(job.id)::uuid", "the job")).json
        }
      },
    ]
  }

  // MARK: Content

  static let contentSelect: SQL = "SELECT id, workspace_id, owner_member_id, folder_id, title, posted, created_at FROM content"

  static func contentJSON(_ r: PGRow) throws -> JSONValue {
    [
      "contentId": .string(try r.string("id")), "workspaceId": .string(try r.string("workspace_id")),
      "ownerMemberId": .string(try r.string("owner_member_id")), "folderId": .orNull(r["folder_id"]), "title": .string(try r.string("title")),
      "posted": .bool(try r.bool("posted")), "createdAt": .orNull(r.time("created_at")),
    ]
  }

  func contentMethods() -> [MethodSpec] {
    [
      MethodSpec(
        "content.create", summary: "Registers a content item (a video) owned by a member.",
        params: [
          .workspaceId, ParamSpec("ownerMemberId", .uuid), ParamSpec("title", .string(maxLength: 500)), ParamSpec("posted", .boolean),
          .optional("folderId", .uuid, "a folder of the owner's library"),
        ], result: "Content"
      ) { p, _ in
        let wid = try p.id("workspaceId")
        let owner = try p.id("ownerMemberId")
        let folder = p.optionalID("folderId")
        return try self.ctx.pool.transaction { tx in
          // Share-locked: a deactivation waits for this item to commit (and
          // its job then moves or deletes it too), or has committed already
          // and the member is refused here (R2, R3).
          guard let m = try tx.one(MemberRow.select + " WHERE m.id = \(owner)::uuid AND m.workspace_id = \(wid)::uuid FOR SHARE OF m")
            .map(MemberRow.init), m.status != .deleted
          else { throw RPCError.memberNotFound() }
          guard m.status == .active else {
            throw RPCError.conflict("member_inactive", "\(m.email) has been deactivated; content cannot be created for them.")
          }
          PausePoints.here("content.create.checked", key: owner)
          if let folder, try tx.one("SELECT 1 FROM folders WHERE id = \(folder)::uuid AND owner_member_id = \(m.id)::uuid") == nil {
            throw RPCError.notFound("Folder", reason: "folder_not_found")
          }
          let r = try tx.single(
            """
            INSERT INTO content (workspace_id, owner_member_id, folder_id, title, posted)
            VALUES (\(wid)::uuid, \(owner)::uuid, \(folder)::uuid, \(try p.string("title")), \(try p.bool("posted")))
            RETURNING id, workspace_id, owner_member_id, folder_id, title, posted, created_at
            """)
          return try Self.contentJSON(r)
        }
      },
      MethodSpec(
        "content.list", summary: "Content of a workspace, filtered by owner or folder, paged.",
        params: [.workspaceId, .optional("ownerMemberId", .uuid), .optional("folderId", .uuid), .limit, .optional("cursor", .uuid)],
        result: "{content, nextCursor}"
      ) { p, _ in
        let limit = p.limit()
        var q = Self.contentSelect + " WHERE workspace_id = \(try p.id("workspaceId"))::uuid"
        if let o = p.optionalID("ownerMemberId") { q.append(" AND owner_member_id = \(o)::uuid") }
        if let f = p.optionalID("folderId") { q.append(" AND folder_id = \(f)::uuid") }
        if let c = p.optionalID("cursor") { q.append(" AND id > \(c)::uuid") }
        q.append(" ORDER BY id LIMIT \(limit + 1)")
        let rows = try self.ctx.pool.query(q).rows
        let page = rows.prefix(limit)
        return ["content": .array(try page.map(Self.contentJSON)), "nextCursor": rows.count > limit ? .orNull(page.last?["id"]) : .null]
      },
      MethodSpec(
        "folder.list", summary: "Folders of a member's library.", params: [.workspaceId, ParamSpec("ownerMemberId", .uuid)], result: "{folders}"
      ) { p, _ in
        let rows = try self.ctx.pool.query(
          """
          SELECT f.id, f.owner_member_id, f.name, f.created_at, (SELECT count(*) FROM content c WHERE c.folder_id = f.id) AS content_count
          FROM folders f WHERE f.workspace_id = \(try p.id("workspaceId"))::uuid AND f.owner_member_id = \(try p.id("ownerMemberId"))::uuid
          ORDER BY f.created_at, f.id
          """
        ).rows
        return [
          "folders": .array(
            try rows.map {
              [
                "folderId": .string(try $0.string("id")), "ownerMemberId": .string(try $0.string("owner_member_id")),
                "name": .string(try $0.string("name")), "contentCount": .int(try $0.int("content_count")), "createdAt": .orNull($0.time("created_at")),
              ]
            })
        ]
      },
      MethodSpec(
        "content.moveToWorkspace",
        summary:
          "A captured user moves everything they own in their own Starter/Business workspace into a folder of their library in the Enterprise workspace.",
        params: [ParamSpec("userId", .uuid), ParamSpec("fromWorkspaceId", .uuid), ParamSpec("toWorkspaceId", .uuid)], result: "Job"
      ) { p, _ in try self.moveToWorkspace(p) },
    ]
  }

  func moveToWorkspace(_ p: Params) throws -> JSONValue {
    let uid = try p.id("userId")
    let from = try p.id("fromWorkspaceId")
    let to = try p.id("toWorkspaceId")
    guard from != to else { throw RPCError.invalidParam("toWorkspaceId", "The two workspaces must differ.") }
    return try ctx.pool.transaction { tx in
      guard let source = try WorkspaceRow.load(tx, from, lock: .share), let dest = try WorkspaceRow.load(tx, to, lock: .share) else {
        throw RPCError.workspaceNotFound()
      }
      guard !source.isEnterprise else {
        throw RPCError.conflict("source_plan", "Content moves out of a Starter or Business workspace; \(source.name) is on Enterprise.")
      }
      guard dest.isEnterprise else {
        throw RPCError.conflict("destination_plan", "Content moves into an Enterprise workspace; \(dest.name) is on \(dest.plan).")
      }
      // Locked (sorted): concurrent requests for the same move queue up here
      // and find the job the first one made.
      let memberships = try tx.query(
        """
        SELECT id, workspace_id FROM members WHERE user_id = \(uid)::uuid AND status = 'active' AND workspace_id IN (\(from)::uuid, \(to)::uuid)
        ORDER BY id FOR UPDATE
        """
      ).rows
      guard let fromMember = memberships.first(where: { $0["workspace_id"] == from })?["id"],
        let toMember = memberships.first(where: { $0["workspace_id"] == to })?["id"]
      else {
        throw RPCError.conflict("membership_required", "The user must be an active member of both workspaces.")
      }
      // R6: only the owner of the source workspace moves its content out.
      guard source.ownerMemberId == fromMember else {
        throw RPCError.forbidden(
          "not_workspace_owner", "Only the owner of \(source.name) can move content out of it; this user is a member there, not its owner.")
      }
      let key = "move:\(from):\(toMember)"
      // Nothing left to move and the move already happened: that job is the answer.
      let left = try tx.single("SELECT count(*) AS n FROM content WHERE owner_member_id = \(fromMember)::uuid AND workspace_id = \(from)::uuid")
      if try left.int("n") == 0,
        let done = try tx.one(JobRow.select + " WHERE unique_key = \(key) ORDER BY created_at DESC LIMIT 1").map(JobRow.init)
      {
        return done.json
      }
      let jobId = try Jobs.enqueue(
        tx, kind: .moveContent, workspaceId: to, memberId: toMember, uniqueKey: key,
        payload: MoveContentPayload(userId: uid, fromWorkspaceId: from, toWorkspaceId: to, fromMemberId: fromMember, toMemberId: toMember).json)
      try AuditLog.record(
        tx, workspaceId: to, actor: .system("user:\(uid)"), action: "content.move_requested", targetType: "job", targetId: jobId,
        after: ["fromWorkspaceId": .string(from)])
      return try JobRow(tx.single(JobRow.select + " WHERE id = \(jobId)::uuid", "the job")).json
    }
  }
}

extension DeprovisioningService {
  /// The application errors of this module's methods (rpc.discover, docs/api.md).
  static let errorDocs: [String: [ErrorDoc]] = [
    "deprovision.configure": [.notFound("target_not_found"), .conflict("target_inactive"), .conflict("target_not_eligible")],
    "deprovision.get": [],
    "deprovision.member": [
      .notFound("member_not_found"), .conflict("already_deprovisioned"), .conflict("transfer_target_protected"), .conflict("last_admin"),
    ],
    "job.list": [],
    "job.get": [.notFound("job_not_found")],
    "job.retry": [.notFound("job_not_found"), .conflict("job_not_failed"), .conflict("job_active")],
    "content.create": [.notFound("member_not_found"), .notFound("folder_not_found"), .conflict("member_inactive")],
    "content.list": [],
    "content.moveToWorkspace": [
      .notFound("workspace_not_found"), .conflict("not_workspace_owner"), .conflict("membership_required"), .conflict("source_plan"),
      .conflict("destination_plan"),
    ],
    "folder.list": [],
  ]
}
