import Vocabulary
import Foundation
import JSON
import JSONRPC
import Postgres
import RosterRuntime
import RosterStore
import ServiceKit
import Synchronization

/// A job as stored.
public struct JobRow: Sendable {
  public var id: String
  public var kind: JobKind
  public var workspaceId: String
  public var memberId: String?
  public var status: JobStatus
  public var attempts: Int64
  public var maxAttempts: Int64
  public var lastError: String?
  public var payload: JSONValue
  public var result: JSONValue
  public var runAt: String?
  public var createdAt: String?
  public var finishedAt: String?
  public var lockedBy: String?

  static let columns: SQL = """
    id, kind, workspace_id, member_id, status, attempts, max_attempts, last_error, payload, result, run_at, created_at, finished_at, locked_by
    """
  public static let select: SQL = "SELECT " + columns + " FROM jobs"

  public init(_ r: PGRow) throws {
    id = try r.string("id")
    kind = try r.word("kind")
    workspaceId = try r.string("workspace_id")
    memberId = r["member_id"]
    status = try r.word("status")
    attempts = try r.int("attempts")
    maxAttempts = try r.int("max_attempts")
    lastError = r["last_error"]
    payload = try r.json("payload")
    result = try r.json("result")
    runAt = r.time("run_at")
    createdAt = r.time("created_at")
    finishedAt = r.time("finished_at")
    lockedBy = r["locked_by"]
  }

  public var json: JSONValue {
    [
      "jobId": .string(id), "kind": .string(kind.rawValue), "workspaceId": .string(workspaceId), "memberId": .orNull(memberId),
      "status": .string(status.rawValue), "attempts": .int(attempts), "maxAttempts": .int(maxAttempts), "lastError": .orNull(lastError),
      "result": result, "runAt": .orNull(runAt), "createdAt": .orNull(createdAt), "finishedAt": .orNull(finishedAt),
    ]
  }
}

/// Claims and runs jobs (R5). Each job runs in one transaction that holds
/// the job's row lock, so a crash rolls everything back and the job is
/// picked up again; `locked_by` stops two workers from both running it.
/// Woken by NOTIFY roster_jobs, with a fallback poll.
final class JobWorker: Sendable {
  let ctx: ServiceContext
  let workerId: String
  let pollSeconds: Double
  /// A claimed job whose worker vanished (its row no longer locked) is
  /// queued again after this long.
  let rescueAfterSeconds: Double
  let retryBaseSeconds: Double
  let run: @Sendable (PGTransaction, JobRow) throws -> JSONValue
  let loop: WorkerLoop

  init(
    ctx: ServiceContext, threads: Int, pollSeconds: Double, rescueAfterSeconds: Double, retryBaseSeconds: Double,
    run: @escaping @Sendable (PGTransaction, JobRow) throws -> JSONValue
  ) {
    self.ctx = ctx
    workerId = "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UUID().uuidString.prefix(8))"
    self.pollSeconds = pollSeconds
    self.rescueAfterSeconds = rescueAfterSeconds
    self.retryBaseSeconds = retryBaseSeconds
    self.run = run
    loop = WorkerLoop(
      name: "job-worker", threads: threads, pollSeconds: pollSeconds, channel: Jobs.channel, config: ctx.host.pgConfig, logger: ctx.logger)
  }

  func start() {
    loop.start(
      makePass: { [self] in
        {
          try self.rescue()
          return try self.runOne()
        }
      }, nextDue: { [self] in try nextDueSeconds() })
  }

  func stop() { loop.stop() }

  /// Seconds until the earliest queued job is due (a retry waiting out its back-off).
  func nextDueSeconds() throws -> Double {
    let r = try ctx.pool.query("SELECT extract(epoch FROM min(run_at) - now()) AS s FROM jobs WHERE status = 'queued'").first
    return r?.double("s") ?? pollSeconds
  }

  /// Jobs marked running whose worker is gone go back to the queue.
  func rescue() throws {
    let rescued = try ctx.pool.transaction { tx in
      try tx.query(
        """
        UPDATE jobs SET status = 'queued', locked_by = NULL, updated_at = now()
        WHERE id IN (
          SELECT id FROM jobs WHERE status = 'running' AND locked_at < now() - make_interval(secs => \(rescueAfterSeconds))
          FOR UPDATE SKIP LOCKED)
        RETURNING id
        """
      ).rows
    }
    for r in rescued { ctx.logger.warning("job re-queued after its worker vanished", ["jobId": .orNull(r["id"])]) }
  }

  /// Claims one due job and runs it; false when there was none.
  func runOne() throws -> Bool {
    // Claimed in one autocommit statement: marked running and returned. (Not
    // pool.query, which repeats a statement after a lost connection.)
    guard
      let job = try ctx.pool.withConnection({ conn in
        try conn.query(
          """
          UPDATE jobs SET status = 'running', attempts = attempts + 1, locked_by = \(workerId), locked_at = now(), updated_at = now()
          WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND run_at <= now() ORDER BY run_at, created_at
                      LIMIT 1 FOR UPDATE SKIP LOCKED)
          RETURNING
          """ + " " + JobRow.columns
        ).first.map(JobRow.init)
      })
    else { return false }
    let started = ContinuousClock.now
    do {
      let result = try ctx.pool.transaction { tx -> JSONValue in
        // Ours only if nobody re-queued and re-claimed it meanwhile.
        guard try tx.one("SELECT 1 FROM jobs WHERE id = \(job.id)::uuid AND status = 'running' AND locked_by = \(workerId) FOR UPDATE") != nil
        else { return ["skipped": "claimed by another worker"] }
        PausePoints.here("job.run", key: job.memberId ?? job.id)
        let result = try run(tx, job)
        try tx.query(
          """
          UPDATE jobs SET status = 'done', result = \(result)::jsonb, last_error = NULL, finished_at = now(), updated_at = now(), locked_by = NULL
          WHERE id = \(job.id)::uuid
          """)
        return result
      }
      let ms = (ContinuousClock.now - started).inSeconds * 1000
      ctx.host.metrics.increment("roster_jobs_total", ["kind": job.kind.rawValue, "outcome": "done"])
      ctx.logger.info("job done", ["jobId": .string(job.id), "kind": .string(job.kind.rawValue), "ms": .int(Int64(ms)), "result": result])
    } catch {
      let message = Self.describe(error)
      // A job that cannot act on its configuration fails at once (its
      // lastError says what to change; job.retry after the fix); anything
      // else (the database went away, a deadlock) is retried with back-off.
      let permanent = (error as? JobError)?.permanent ?? false
      let failed = permanent || job.attempts >= job.maxAttempts
      // Exponential back-off with jitter: 2 s, 4 s, 8 s, … capped at 5 minutes.
      let delay = min(300.0, retryBaseSeconds * pow(2, Double(job.attempts - 1))) * Double.random(in: 0.8...1.2)
      try ctx.pool.transaction { tx in
        try tx.query(
          """
          UPDATE jobs SET status = \(failed ? "failed" : "queued"), last_error = \(message), locked_by = NULL, updated_at = now(),
            run_at = CASE WHEN \(failed) THEN run_at ELSE now() + make_interval(secs => \(delay)) END
          WHERE id = \(job.id)::uuid AND locked_by = \(workerId)
          """)
      }
      ctx.host.metrics.increment("roster_jobs_total", ["kind": job.kind.rawValue, "outcome": failed ? "failed" : "retry"])
      ctx.logger.warning(
        "job failed",
        [
          "jobId": .string(job.id), "kind": .string(job.kind.rawValue), "attempt": .int(job.attempts), "error": .string(message), "final": .bool(failed),
          "permanent": .bool(permanent), "retryInSeconds": failed ? .null : .int(Int64(delay)),
        ])
    }
    return true
  }

  static func describe(_ error: any Error) -> String {
    if let e = error as? JobError { return e.message }
    if let e = error as? PGError { return "database error: \(e.description)" }
    return String(describing: error)
  }
}

/// A failure a job reports in its `lastError` (visible over RPC). Permanent
/// ones are about what the job was asked to do — retrying cannot help until
/// someone changes it.
struct JobError: Error {
  let message: String
  let permanent: Bool
  init(_ m: String, permanent: Bool = true) {
    message = m
    self.permanent = permanent
  }
}
