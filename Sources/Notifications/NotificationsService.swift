import Foundation
import JSON
import JSONRPC
import Mail
import Postgres
import RosterRuntime
import RosterStore
import Vocabulary
import ServiceKit
import Synchronization

/// A notification row.
struct NotificationRow {
  var id: String
  /// Kept as stored: no CHECK constraint guards it, and a row another
  /// version wrote must fail as an email (permanent), not as a decode.
  var template: String
  var to: String
  var data: [String: JSONValue]
  var workspaceId: String?
  var status: NotificationStatus
  var attempts: Int64
  var lastError: String?
  var messageId: String
  var createdAt: String?
  var sentAt: String?
  var nextAttemptAt: String?

  static let select: SQL = """
    SELECT id, template, to_address, data, workspace_id, status, attempts, last_error, message_id, created_at, sent_at, next_attempt_at
    FROM notifications
    """

  init(_ r: PGRow) throws {
    id = try r.string("id")
    template = try r.string("template")
    to = try r.string("to_address")
    data = try r.json("data").objectValue ?? [:]
    workspaceId = r["workspace_id"]
    status = try r.word("status")
    attempts = try r.int("attempts")
    lastError = r["last_error"]
    messageId = try r.string("message_id")
    createdAt = r.time("created_at")
    sentAt = r.time("sent_at")
    nextAttemptAt = r.time("next_attempt_at")
  }

  /// As shown over RPC: secrets (a single-use link) never leave the outbox.
  var json: JSONValue {
    var shown = data
    for f in Templates.secretFields where shown[f] != nil { shown[f] = "[redacted]" }
    return [
      "id": .string(id), "template": .string(template), "to": .string(to), "status": .string(status.rawValue), "attempts": .int(attempts),
      "lastError": .orNull(lastError), "messageId": .string(messageId), "workspaceId": .orNull(workspaceId), "createdAt": .orNull(createdAt),
      "sentAt": .orNull(sentAt), "nextAttemptAt": status == .pending ? .orNull(nextAttemptAt) : .null, "data": .object(shown),
    ]
  }
}

/// The notifications process: delivers the outbox over SMTP (N1, N2).
public final class NotificationsService: Sendable {
  public struct Options: Sendable {
    public var senderThreads = 2
    public var pollSeconds: Double = 2
    /// First retry delay; doubles per attempt up to `maxBackoffSeconds`.
    public var baseBackoffSeconds: Double = 5
    public var maxBackoffSeconds: Double = 600
    public init() {}
  }

  let ctx: ServiceContext
  let options: Options
  let senders: WorkerLoop

  public init(host: ProcessHost, options: Options = Options()) {
    ctx = ServiceContext(host: host)
    self.options = options
    senders = WorkerLoop(
      name: "smtp-sender", threads: options.senderThreads, pollSeconds: options.pollSeconds, channel: Outbox.channel,
      config: host.pgConfig, logger: ctx.logger)
  }

  public func install(deliver: Bool = true) {
    ctx.host.metrics.describe("roster_notifications_sent_total", type: "counter", help: "emails accepted by the relay")
    ctx.host.metrics.describe("roster_notifications_attempts_total", type: "counter", help: "delivery attempts by outcome")
    ctx.host.metrics.describe("roster_outbox_latency_seconds", type: "histogram", help: "from enqueue to accepted by the relay")
    ctx.host.dispatcher.register(methods())
    ctx.host.dispatcher.document(errors: Self.errorDocs)
    let pool = ctx.pool
    ctx.host.metrics.addCollector {
      guard let r = try? pool.query(
        """
        SELECT count(*) FILTER (WHERE status = 'pending') AS pending, count(*) FILTER (WHERE status = 'failed') AS failed,
               coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending')), 0) AS oldest
        FROM notifications
        """
      ).first else { return [] }
      return [
        .init("roster_outbox_pending", "emails waiting to be delivered", [], r.double("pending") ?? 0),
        .init("roster_outbox_failed", "emails the relay refused for good (notification.retry)", [], r.double("failed") ?? 0),
        .init("roster_outbox_oldest_pending_seconds", "age of the oldest undelivered email", [], r.double("oldest") ?? 0),
      ]
    }
    guard deliver else { return }
    // Each sender thread keeps its own relay connection (closed when the thread ends).
    senders.start(
      makePass: { [self] in
        let smtp = SMTPClient(host: ctx.config.smtpHost, port: ctx.config.smtpPort, heloName: ctx.mailDomain)
        return { try self.deliverOne(smtp) }
      }, nextDue: { [self] in try nextDueSeconds() })
    ctx.host.onStop("outbox senders") { [senders] in senders.stop() }
  }

  // MARK: Delivery

  func nextDueSeconds() throws -> Double {
    try ctx.pool.query("SELECT extract(epoch FROM min(next_attempt_at) - now()) AS s FROM notifications WHERE status = 'pending'").first?
      .double("s") ?? options.pollSeconds
  }

  /// Claims one due email (its row stays locked while the relay is talked
  /// to, so no other sender takes it) and records the outcome. A crash
  /// mid-way leaves it pending: it is sent again with the same Message-ID.
  func deliverOne(_ smtp: SMTPClient) throws -> Bool {
    try ctx.pool.transaction { tx -> Bool in
      guard
        let n = try tx.one(
          NotificationRow.select
            + " WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at, created_at LIMIT 1 FOR UPDATE SKIP LOCKED"
        ).map(NotificationRow.init)
      else { return false }
      let outcome: SMTPOutcome
      do {
        let rendered = try Templates.render(n.template, data: n.data)
        let message = MailMessage(
          from: ctx.config.mailFrom, to: n.to, subject: rendered.subject, text: rendered.text, messageId: n.messageId, date: Date())
        outcome = smtp.send(from: ctx.config.mailFrom, to: [n.to], message: message.render())
      } catch {
        outcome = .permanent("cannot render template \(n.template): \(error)")
      }
      switch outcome {
      case .accepted:
        var scrubbed = n.data
        for f in Templates.secretFields where scrubbed[f] != nil { scrubbed[f] = "[sent]" }
        let row = try tx.one(
          """
          UPDATE notifications SET status = 'sent', attempts = attempts + 1, sent_at = now(), last_error = NULL, updated_at = now(),
            data = \(JSONValue.object(scrubbed))::jsonb
          WHERE id = \(n.id)::uuid RETURNING extract(epoch FROM now() - created_at) AS latency
          """)
        ctx.host.metrics.increment("roster_notifications_sent_total", ["template": n.template])
        ctx.host.metrics.increment("roster_notifications_attempts_total", ["outcome": "accepted"])
        ctx.host.metrics.observe("roster_outbox_latency_seconds", [:], row?.double("latency") ?? 0)
        ctx.logger.info("email sent", ["id": .string(n.id), "template": .string(n.template)])
      case .temporary(let why):
        // A relay that is down delays mail, never drops it: no attempt limit.
        let delay = min(options.maxBackoffSeconds, options.baseBackoffSeconds * pow(2, Double(min(n.attempts, 20))))
          * Double.random(in: 0.9...1.1)
        try tx.query(
          """
          UPDATE notifications SET attempts = attempts + 1, last_error = \(why), updated_at = now(),
            next_attempt_at = now() + make_interval(secs => \(delay))
          WHERE id = \(n.id)::uuid
          """)
        ctx.host.metrics.increment("roster_notifications_attempts_total", ["outcome": "temporary"])
        ctx.logger.warning("email deferred", ["id": .string(n.id), "error": .string(why), "retryInSeconds": .int(Int64(delay))])
      case .permanent(let why):
        try tx.query(
          "UPDATE notifications SET status = 'failed', attempts = attempts + 1, last_error = \(why), updated_at = now() WHERE id = \(n.id)::uuid")
        ctx.host.metrics.increment("roster_notifications_attempts_total", ["outcome": "permanent"])
        ctx.logger.warning("email refused by the relay", ["id": .string(n.id), "error": .string(why)])
      }
      return true
    }
  }

  // MARK: Methods

  /// Renders a template for enqueue or preview; missing data is the caller's error.
  static func render(_ template: String, _ data: [String: JSONValue]) throws -> (subject: String, text: String) {
    do {
      return try Templates.render(template, data: data)
    } catch let e as Templates.MissingData {
      throw RPCError.invalidParam("data", "Template \(template) needs data fields: \(e.fields.joined(separator: ", ")).", reason: "missing_template_data")
    }
  }

  func methods() -> [MethodSpec] {
    [
      MethodSpec(
        "notification.enqueue", summary: "Queues an email from a template (delivered by this process with retries).",
        params: [ParamSpec("template", .enumeration(Templates.names)), ParamSpec("to", .email), ParamSpec("data", .anyObject), .optional("workspaceId", .uuid)],
        result: "Notification"
      ) { p, _ in
        let template: MailTemplate = try p.word("template")
        let data = try p.object("data")
        _ = try Self.render(template.rawValue, data)
        return try self.ctx.pool.transaction { tx in
          let id = try self.ctx.enqueueMail(tx, template: template, to: try p.string("to"), data: .object(data), workspaceId: p.optionalID("workspaceId"))
          return try NotificationRow(tx.single(NotificationRow.select + " WHERE id = \(id)::uuid", "the queued email")).json
        }
      },
      MethodSpec(
        "notification.list", summary: "Emails, newest first.",
        params: [.optional("status", .enumeration(["pending", "sent", "failed", "cancelled"])), .optional("workspaceId", .uuid), .optional("template", .enumeration(Templates.names)), .limit],
        result: "{notifications}"
      ) { p, _ in
        var q = NotificationRow.select + " WHERE true"
        if let s = p.optionalString("status") { q.append(" AND status = \(s)") }
        if let w = p.optionalID("workspaceId") { q.append(" AND workspace_id = \(w)::uuid") }
        if let t = p.optionalString("template") { q.append(" AND template = \(t)") }
        q.append(" ORDER BY created_at DESC, id LIMIT \(p.limit())")
        return ["notifications": .array(try self.ctx.pool.query(q).rows.map { try NotificationRow($0).json })]
      },
      MethodSpec("notification.get", summary: "One email.", params: [ParamSpec("id", .uuid)], result: "Notification") { p, _ in
        guard let r = try self.ctx.pool.query(NotificationRow.select + " WHERE id = \(try p.id("id"))::uuid").first else {
          throw RPCError.notFound("Notification", reason: "notification_not_found")
        }
        return try NotificationRow(r).json
      },
      MethodSpec(
        "notification.retry", summary: "Sends a failed email again now (same Message-ID).", params: [ParamSpec("id", .uuid), .actor],
        result: "Notification"
      ) { p, c in
        try self.ctx.pool.transaction { tx in
          guard let n = try tx.one(NotificationRow.select + " WHERE id = \(try p.id("id"))::uuid FOR UPDATE").map(NotificationRow.init) else {
            throw RPCError.notFound("Notification", reason: "notification_not_found")
          }
          let actor = try self.ctx.resolveActor(p, workspaceId: n.workspaceId, context: c, tx: tx)
          guard n.status == .failed else {
            throw RPCError.conflict("notification_not_failed", "Only a failed email can be retried; this one is \(n.status.rawValue).")
          }
          try tx.query(
            "UPDATE notifications SET status = 'pending', next_attempt_at = now(), updated_at = now() WHERE id = \(n.id)::uuid")
          tx.notifyAfterCommit("roster_outbox")
          try AuditLog.record(tx, workspaceId: n.workspaceId, actor: actor, action: "notification.retry", targetType: "notification", targetId: n.id)
          return try NotificationRow(tx.single(NotificationRow.select + " WHERE id = \(n.id)::uuid", "the email")).json
        }
      },
      MethodSpec(
        "notification.cancel",
        summary:
          "Closes a failed email for good (operators): it is never sent and no longer counts in roster_outbox_failed. For an address that will not work.",
        params: [ParamSpec("id", .uuid), .actor], result: "Notification"
      ) { p, c in
        try self.ctx.pool.transaction { tx in
          guard let n = try tx.one(NotificationRow.select + " WHERE id = \(try p.id("id"))::uuid FOR UPDATE").map(NotificationRow.init) else {
            throw RPCError.notFound("Notification", reason: "notification_not_found")
          }
          let actor = try self.ctx.resolveActor(p, workspaceId: nil, context: c, tx: tx)
          guard n.status == .failed else {
            throw RPCError.conflict(
              "notification_not_failed",
              "Only a failed email can be cancelled; this one is \(n.status.rawValue)\(n.status == .pending ? " and will be delivered" : "").")
          }
          try tx.query("UPDATE notifications SET status = 'cancelled', updated_at = now() WHERE id = \(n.id)::uuid")
          try AuditLog.record(
            tx, workspaceId: n.workspaceId, actor: actor, action: "notification.cancel", targetType: "notification", targetId: n.id,
            before: ["status": "failed", "lastError": .orNull(n.lastError)])
          return try NotificationRow(tx.single(NotificationRow.select + " WHERE id = \(n.id)::uuid", "the email")).json
        }
      },
      MethodSpec(
        "notification.preview", summary: "Renders a template with data, without sending.",
        params: [ParamSpec("template", .enumeration(Templates.names)), ParamSpec("data", .anyObject)], result: "{subject, text}"
      ) { p, _ in
        let r = try Self.render(try p.string("template"), try p.object("data"))
        return ["subject": .string(r.subject), "text": .string(r.text)]
      },
    ]
  }
}

extension NotificationsService {
  /// The application errors of this module's methods (rpc.discover, docs/api.md).
  static let errorDocs: [String: [ErrorDoc]] = [
    "notification.enqueue": [.invalid("missing_template_data")],
    "notification.list": [],
    "notification.get": [.notFound("notification_not_found")],
    "notification.retry": [.notFound("notification_not_found"), .conflict("notification_not_failed")],
    "notification.cancel": [.notFound("notification_not_found"), .conflict("notification_not_failed"), .forbidden("ops_required")],
    "notification.preview": [.invalid("missing_template_data")],
  ]
}
