import CMalloc
import Foundation
import HTTP1
import JSON
import JSONRPC
import Postgres
import RPCTransport
import Sockets
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

public let rosterVersion = "0.1.0"

/// The skeleton every Roster process shares: configuration, logs, metrics, a
/// database pool with a health monitor, and a JSON-RPC dispatcher with the
/// `system.*` methods, served on `$ROSTER_RUN_DIR/<name>.sock`.
public final class ProcessHost: Sendable {
  public let name: String
  public let config: Config
  public let logger: Logger
  public let metrics: Metrics
  public let pool: PGPool
  public let dbHealth: PGHealthMonitor
  public let dispatcher: Dispatcher
  public let pgConfig: PGConfig
  let started = ContinuousClock.now
  /// The JSON-RPC socket's server once serving (connection figures for metrics and tests).
  let rpcServer = Mutex<StreamServer?>(nil)

  /// Connections open on the JSON-RPC socket now.
  public var rpcConnectionCount: Int { rpcServer.withLock { $0?.connectionCount ?? 0 } }
  /// Stop actions of started components, run in reverse order at shutdown.
  private let stops = Mutex<[(String, @Sendable () -> Void)]>([])

  /// `logger`: where this process logs (default: stderr at the configured level and format).
  public init(name: String, config: Config, logger: Logger? = nil) {
    self.name = name
    self.config = config
    let logger = logger ?? Logger(process: name, level: config.logLevel, format: config.logFormat)
    let metrics = Metrics()
    self.logger = logger
    self.metrics = metrics
    pgConfig = PGConfig(conninfo: config.databaseURL, applicationName: "roster-\(name)")
    pool = PGPool(config: pgConfig, size: config.dbPoolSize)
    dbHealth = PGHealthMonitor(config: pgConfig)
    metrics.describe("roster_rpc_requests_total", type: "counter", help: "JSON-RPC requests by method and outcome")
    metrics.describe("roster_rpc_request_duration_seconds", type: "histogram", help: "JSON-RPC request latency by method")
    dispatcher = Dispatcher(
      title: "roster \(name)", version: rosterVersion,
      observer: { record in
        let outcome = record.error.map { String($0.code) } ?? "ok"
        let label = record.known ? record.method : "(unknown)"
        metrics.increment("roster_rpc_requests_total", ["method": label, "outcome": outcome])
        metrics.observe("roster_rpc_request_duration_seconds", ["method": label], record.seconds)
        var fields: [String: JSONValue] = [
          "request": .string(record.requestID), "method": .string(record.method),
          "us": .int(Int64(record.seconds * 1_000_000)), "outcome": .string(outcome),
        ]
        if let e = record.error, let reason = e.reason { fields["reason"] = .string(reason) }
        if let detail = record.internalDetail {
          fields["error"] = .string(detail)
          if logger.isEnabled(.debug), let debug = record.internalDebugDetail { fields["debug"] = .string(debug) }
          logger.error("rpc", fields)
        } else {
          logger.info("rpc", fields)
        }
      },
      errorMapper: ProcessHost.mapError)
    registerSystemMethods()
  }

  /// Database errors become -32004 when the server is unreachable.
  @Sendable public static func mapError(_ error: any Error) -> RPCError? {
    guard let e = error as? PGError else { return nil }
    if e.isConnectionFailure {
      return .unavailable("The database is unavailable; try again shortly.", reason: "database_unavailable")
    }
    if e.isBadText {
      return .invalidParams("A text value contains a character the database cannot store (NUL).", reason: "nul_character")
    }
    if e.kind == .noRow {
      return .conflict("concurrent_change", "Something this request needed was changed or removed by another request at the same moment; try again.")
    }
    return nil
  }

  private func registerSystemMethods() {
    let name = self.name
    dispatcher.register(
      MethodSpec("system.health", summary: "Liveness and database reachability; answers at once even when the database is down.",
        result: "{status, process, version, database}") { [dbHealth, started] _, _ in
        let up = dbHealth.isUp
        return [
          "status": up ? "ok" : "degraded", "process": .string(name), "version": .string(rosterVersion),
          "database": up ? "ok" : "down", "pid": .int(Int64(getpid())),
          "uptimeSeconds": .int(Int64((ContinuousClock.now - started).components.seconds)),
        ]
      })
    dispatcher.register(
      MethodSpec("system.metrics", summary: "Metrics in the Prometheus text exposition format.", result: "{text}") {
        [metrics] _, _ in ["text": .string(metrics.render())]
      })
    metrics.addCollector { [dbHealth, pool] in
      [
        .init("roster_database_up", "1 when the database answers pings", [], dbHealth.isUp ? 1 : 0),
        .init(
          "roster_database_reconnects", "database reconnects after a lost connection, since start", [],
          Double(pool.reconnects + dbHealth.reconnects)),
        .init("roster_database_pool_in_use", "pooled database connections lent out now (of ROSTER_DB_POOL_SIZE)", [], Double(pool.inUse)),
        .init(
          "roster_database_pool_waits", "requests that found every pooled connection busy and waited, since start (growing: raise ROSTER_DB_POOL_SIZE)", [],
          Double(pool.waits)),
      ]
    }
    // Memory as malloc sees it: what is allocated, and what it holds free.
    // Resident memory that grows while the allocated bytes do not is
    // fragmentation, not a leak.
    metrics.addCollector {
      let m = mallinfo2()
      return [
        .init("roster_process_heap_allocated_bytes", "bytes allocated through malloc and not freed (all arenas, mmapped blocks included)", [], Double(m.uordblks + m.hblkhd)),
        .init("roster_process_heap_free_bytes", "bytes malloc holds free in its arenas (not returned to the system)", [], Double(m.fordblks)),
      ]
    }
  }

  /// Registers a component's stop action (run in reverse order at shutdown).
  public func onStop(_ what: String, _ action: @escaping @Sendable () -> Void) {
    stops.withLock { $0.append((what, action)) }
  }

  /// Runs first when the process stops, before any component stops: for
  /// long-lived connections (event subscriptions) to end on their own
  /// instead of holding up the socket's graceful stop.
  public func beforeStop(_ action: @escaping @Sendable () -> Void) {
    firstStops.withLock { $0.append(action) }
  }

  private let firstStops = Mutex<[@Sendable () -> Void]>([])

  /// Waits (up to `seconds`) for the database, then checks its schema version.
  public func checkDatabase(requiredSchema: Int, currentVersion: (PGConnection) throws -> Int, waitSeconds: Double = 30) throws {
    let deadline = Date().addingTimeInterval(waitSeconds)
    let conn = PGConnection(config: pgConfig)
    defer { conn.close() }
    while true {
      do {
        try conn.connect()
        break
      } catch {
        // libpq's connection message (host, socket, reason) carries no row data and is what an operator needs.
        let why = error.connectionMessage
        if Date() > deadline { throw StartupError("cannot reach the database (\(why)); check ROSTER_DATABASE_URL") }
        logger.warning("waiting for the database", ["error": .string(why)])
        Thread.sleep(forTimeInterval: 1)
      }
    }
    let current = try currentVersion(conn)
    if current < requiredSchema {
      throw StartupError(
        "the database schema is at version \(current) but this build needs version \(requiredSchema): run `roster migrate` first")
    }
  }

  /// Binds `<run dir>/<name>.sock` and serves the dispatcher on it.
  public func serveRPC() throws {
    try config.prepareRunDir()
    dbHealth.check()
    dbHealth.start()
    onStop("database health monitor") { [dbHealth] in dbHealth.stop() }
    let path = config.socketPath(name)
    let listener = try Listener.bind(.unix(path))
    var options = StreamServer.Options()
    options.maxConnections = config.maxConnections
    let server = RPCSocketServer(listener: listener, dispatcher: dispatcher, options: options, lineTimeoutSeconds: config.requestTimeoutSeconds)
    server.start()
    rpcServer.withLock { $0 = server.server }
    metrics.addCollector { [server] in
      [
        .init("roster_rpc_connections", "connections open on the JSON-RPC socket", [], Double(server.server.connectionCount)),
        .init(
          "roster_rpc_connections_evicted", "JSON-RPC connections closed at the cap to admit a newcomer (half-sent or longest idle), since start", [],
          Double(server.server.evictions)),
      ]
    }
    onStop("rpc socket") { server.stop() }
    logger.info("serving JSON-RPC", ["socket": .string(path), "version": .string(rosterVersion)])
    if let address = config.metricsListen { try serveMetrics(address) }
  }

  /// ROSTER_METRICS_LISTEN: GET /metrics in the Prometheus text format, and nothing else.
  func serveMetrics(_ address: ListenAddress) throws {
    let listener = try Listener.bind(address)
    var options = StreamServer.Options()
    options.maxConnections = 16
    let server = HTTPServer(
      listener: listener, options: options,
      onError: { status, message in
        HTTPResponse(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array((message + "\n").utf8))
      },
      handler: { [metrics] r in
        guard r.path == "/metrics" else {
          return HTTPResponse(status: 404, headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array("Only /metrics is served here.\n".utf8))
        }
        guard r.method == "GET" || r.method == "HEAD" else {
          return HTTPResponse(status: 405, headers: [("Allow", "GET, HEAD"), ("Content-Type", "text/plain; charset=utf-8")], body: Array("GET /metrics\n".utf8))
        }
        return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], body: Array(metrics.render().utf8))
      })
    server.start()
    onStop("metrics listener") { server.stop() }
    logger.info("serving metrics", ["listen": .string(listener.address.description)])
  }

  /// Blocks until SIGTERM or SIGINT, then stops components in reverse order.
  public func runUntilSignalled() {
    let sig = Signals.waitForTermination()
    logger.info("stopping", ["signal": .int(Int64(sig))])
    shutdown()
  }

  /// Stops every component in reverse start order: sockets stop accepting and
  /// finish requests in flight, workers finish their current item.
  public func shutdown() {
    for action in firstStops.withLock({ l in defer { l.removeAll() }; return l }) { action() }
    let list = stops.withLock { l in
      let copy = l
      l.removeAll()
      return copy
    }
    for (what, stop) in list.reversed() {
      logger.debug("stopping \(what)")
      stop()
    }
    pool.closeAll()
    logger.info("stopped")
  }
}

public struct StartupError: Error, CustomStringConvertible {
  public let description: String
  public init(_ d: String) { description = d }
}

/// SIGTERM/SIGINT handling without async-signal-unsafe handlers: the signals are
/// blocked in every thread (call `blockTermination()` first thing in main, so
/// threads inherit the mask) and one thread collects them with sigwait.
public enum Signals {
  public static func blockTermination() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGINT)
    pthread_sigmask(SIG_BLOCK, &set, nil)
    signal(SIGPIPE, SIG_IGN)
  }

  public static func waitForTermination() -> Int32 {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGINT)
    var sig: Int32 = 0
    sigwait(&set, &sig)
    return sig
  }
}
