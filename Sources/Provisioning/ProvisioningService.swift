import Foundation
import JSON
import JSONRPC
import Policy
import Postgres
import RosterRuntime
import RosterStore
import ServiceKit
import Sockets

/// The provisioning process: workspaces, members, domains, SSO policy,
/// sign-in decisions, the audit log and the event feed.
public final class ProvisioningService: Sendable {
  let ctx: ServiceContext
  let lists: DomainLists
  let verifier: DomainVerifier
  let hub: EventHub

  public init(host: ProcessHost, lists: DomainLists) {
    ctx = ServiceContext(host: host)
    self.lists = lists
    verifier = DomainVerifier(ctx: ctx)
    hub = EventHub(config: host.pgConfig)
  }

  /// Registers the methods and starts the background domain re-checks.
  public func install(recheckInterval: Double = 5) {
    ctx.host.dispatcher.register(
      workspaceMethods() + memberMethods() + domainMethods() + signInMethods() + feedMethods())
    ctx.host.dispatcher.document(errors: Self.errorDocs)
    hub.start()
    ctx.host.beforeStop { [hub] in hub.beginShutdown() }
    ctx.host.onStop("event subscriptions") { [hub] in hub.stop() }
    ctx.host.metrics.describe("roster_event_subscriptions_ended_total", type: "counter", help: "events.subscribe connections ended, by reason")
    ctx.host.metrics.addCollector { [hub] in
      [.init("roster_event_subscribers", "open events.subscribe connections", [], Double(hub.subscriberCount))]
    }
    if recheckInterval > 0 {
      let loop = verifier.start(interval: recheckInterval)
      ctx.host.onStop("domain re-check loop") { loop.stop() }
    }
  }

  /// events.subscribe: the reply names the starting cursor; then the
  /// connection streams the feed (EventSubscription).
  func subscribe(_ p: Params, _ c: CallContext) throws -> JSONValue {
    guard let handoff = c.handoff else {
      throw RPCError.conflict("socket_required", "events.subscribe streams on the connection it arrives on: call it over provisioning.sock.")
    }
    let start: EventLog.Cursor
    switch p["after"] {
    case nil, .string("now")?:
      start = EventLog.Cursor(try EventLog.tail(ctx.pool)) ?? .start
    case let v?:
      guard let c = v.stringValue.flatMap(EventLog.Cursor.init) ?? (v.intValue == 0 ? .start : nil) else {
        throw RPCError.invalidParam(
          "after", "'after' must be a cursor from this feed (\"KEY-ID\"), \"0\" for the beginning or \"now\" for the tail.", reason: "invalid_cursor")
      }
      start = c
    }
    let types = p.optionalArray("types")?.compactMap(\.stringValue)
    let workspaceId = p.optionalID("workspaceId")
    let (pool, hub, backlog, metrics, logger) = (ctx.pool, hub, ctx.config.eventsBacklog, ctx.host.metrics, ctx.logger)
    handoff.afterReply { connection in
      guard let connection = connection as? Connection else { return }
      var s = EventSubscription(
        pool: pool, hub: hub, connection: connection, cursor: start, workspaceId: workspaceId, types: types, backlog: backlog,
        onEnd: { reason in
          metrics.increment("roster_event_subscriptions_ended_total", ["reason": reason])
          if reason == "backlog_exceeded" { logger.warning("event subscriber disconnected: too far behind", ["backlog": .int(Int64(backlog))]) }
        })
      s.run()
    }
    return ["cursor": .string(start == .start ? "0" : start.text)]
  }

  /// One pass of the domain re-check loop at a given time (tests drive the clock).
  public func recheckDomains(now: Date) throws { try verifier.tick(now: now) }

  func feedMethods() -> [MethodSpec] {
    [
      MethodSpec(
        "audit.list", summary: "The workspace's audit log, oldest first.",
        params: [.workspaceId, .optional("after", .cursor, "nextCursor of the previous page"), .limit],
        result: "{entries, nextCursor}"
      ) { p, _ in
        let wid = try p.id("workspaceId")
        guard try self.ctx.pool.query("SELECT 1 FROM workspaces WHERE id = \(wid)::uuid").first != nil else {
          throw RPCError.workspaceNotFound()
        }
        let page = try AuditLog.list(self.ctx.pool, workspaceId: wid, after: try p.cursor("after"), limit: p.limit())
        return ["entries": .array(page.entries), "nextCursor": .orNull(page.next)]
      },
      MethodSpec(
        "events.subscribe",
        summary:
          "Streams the event feed on this connection: the reply is {cursor}, then one events.event notification per event as it commits, in feed order, with the cursors of events.list. 'after' as for events.list; left out: from now. Filters: workspaceId, types. A subscriber too far behind gets events.closed and is disconnected.",
        params: [
          .optional("after", .cursor, "the last cursor you processed (resume), \"0\" for the beginning; default: now"), .optional("workspaceId", .uuid),
          .optional("types", .array(.string(maxLength: 100), maxItems: 50), "only these event types"),
        ], result: "{cursor}, then events.event notifications"
      ) { p, c in try self.subscribe(p, c) },
      MethodSpec(
        "events.list",
        summary:
          "The event feed in cursor order (member.created, member.role_changed, member.deactivated, domain.verified, …). LISTEN roster_events to be woken.",
        params: [
          .optional("after", .cursor, "the last nextCursor (or event cursor) you processed; \"now\" for the tail; left out: the oldest kept event"),
          .limit, .optional("workspaceId", .uuid),
        ],
        result: "{events, nextCursor} — nextCursor is never null: pass it as 'after' next time"
      ) { p, _ in
        var after = EventLog.Cursor.start
        if let v = p["after"] {
          if v.stringValue == "now" {
            return ["events": [], "nextCursor": .string(try EventLog.tail(self.ctx.pool))]
          } else {
            guard let c = v.stringValue.flatMap(EventLog.Cursor.init) ?? (v.intValue == 0 ? .start : nil) else {
              throw RPCError.invalidParam(
                "after", "'after' must be a cursor from this feed (\"KEY-ID\"), \"0\" for the beginning or \"now\" for the tail.",
                reason: "invalid_cursor")
            }
            after = c
          }
        }
        let page = try EventLog.list(self.ctx.pool, after: after, limit: p.limit(), workspaceId: p.optionalID("workspaceId"))
        return ["events": .array(page.events), "nextCursor": .string(page.next)]
      },
    ]
  }
}

extension ProvisioningService {
  /// The application errors of this module's methods (rpc.discover, docs/api.md).
  static let errorDocs: [String: [ErrorDoc]] = [
    "workspace.create": [],
    "workspace.find": [.invalid("one_criterion"), .invalid("invalid_domain"), .forbidden("ops_not_permitted")],
    "workspace.get": [],
    "workspace.setPlan": [.forbidden("ops_required")],
    "member.add": [.conflict("member_exists")],
    "member.get": [.notFound("member_not_found")],
    "member.list": [.invalid("invalid_cursor")],
    "member.setRole": [.notFound("member_not_found"), .conflict("last_admin"), .conflict("transfer_target_protected")],
    "domain.add": [
      .invalid("invalid_domain"), .invalid("public_domain"), .invalid("email_domain_mismatch"), .invalid("unexpected_param"),
      .conflict("plan_required"), .conflict("domain_taken"),
    ],
    "domain.check": [.notFound("domain_not_found")],
    "domain.confirm": [
      .notFound("token_not_found"), .conflict("token_expired"), .conflict("token_used"), .conflict("domain_taken"), .conflict("plan_required"),
    ],
    "domain.list": [],
    "domain.listPending": [],
    "domain.remove": [.notFound("domain_not_found"), .forbidden("ops_required")],
    "auth.signIn": [.invalid("invalid_email"), .conflict("sso_not_configured")],
    "audit.list": [.invalid("invalid_cursor")],
    "events.list": [.invalid("invalid_cursor")],
    "events.subscribe": [.invalid("invalid_cursor"), .conflict("socket_required")],
  ]
}
