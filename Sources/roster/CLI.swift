import Foundation
import JSON
import JSONRPC
import Postgres
import RosterApp
import RosterRuntime
import RosterStore
import Sockets

/// Argument parsing and the entry points of each command.
enum CLI {
  static let usage = """
    roster \(rosterVersion) — SSO, domain verification and Directory Sync sidecar

    Usage:
      roster provisioning        serve provisioning.sock (+ SCIM on ROSTER_SCIM_LISTEN)
      roster deprovisioning      serve deprovisioning.sock and run deprovisioning jobs
      roster notifications       serve notifications.sock and deliver the email outbox
      roster migrate             apply the SQL files in schema/ to ROSTER_DATABASE_URL
      roster call [--raw] [--timeout SECONDS] SOCKET METHOD [JSON]
                                 call a JSON-RPC method; SOCKET is a path or a process
                                 name (provisioning, deprovisioning, notifications)
      roster version
      roster COMMAND --help      help for one command

    Environment (defaults in brackets):

    """

  static func environmentHelp(only names: [String]? = nil) -> String {
    Config.documentation.filter { names?.contains($0.0) ?? true }.map { "  \($0.0) [\($0.1)]\n      \($0.2)" }.joined(separator: "\n")
  }

  /// The variables each command reads (its --help lists only these).
  static let commandVariables: [String: [String]] = {
    let common = ["ROSTER_DATABASE_URL", "ROSTER_RUN_DIR", "ROSTER_OPS_UIDS", "ROSTER_LOG_LEVEL", "ROSTER_LOG_FORMAT", "ROSTER_DB_POOL_SIZE",
      "ROSTER_MAX_CONNECTIONS", "ROSTER_REQUEST_TIMEOUT", "ROSTER_METRICS_LISTEN", "ROSTER_PUBLIC_URL", "ROSTER_MAIL_FROM"]
    return [
      "provisioning": common + [
        "ROSTER_SCIM_LISTEN", "ROSTER_SCIM_METRICS", "ROSTER_WEB_LISTEN", "ROSTER_DNS_SERVER", "ROSTER_SSO_REDIRECT_URIS", "ROSTER_SECRET_KEY",
        "ROSTER_IDP_CA_FILE", "ROSTER_IDP_ALLOW_HTTP_LOOPBACK", "ROSTER_DATA_DIR", "ROSTER_EVENTS_BACKLOG",
      ],
      "deprovisioning": common,
      "notifications": common + ["ROSTER_SMTP_URL"],
      "migrate": ["ROSTER_DATABASE_URL", "ROSTER_SCHEMA_DIR"],
      "call": ["ROSTER_RUN_DIR"],
      "version": [],
    ]
  }()

  static let commandHelp: [String: String] = [
    "provisioning": """
      roster provisioning
        Serves workspace, member, domain, SSO, sign-in, directory, group, audit and
        event methods on $ROSTER_RUN_DIR/provisioning.sock, SCIM 2.0 over HTTP/1.1 on
        ROSTER_SCIM_LISTEN, and re-checks pending DNS domains in the background.
        Stops gracefully on SIGTERM or SIGINT.
      """,
    "deprovisioning": """
      roster deprovisioning
        Serves deprovision, job and content methods on $ROSTER_RUN_DIR/deprovisioning.sock
        and runs deprovisioning and content-move jobs from the database queue.
        Several copies may run against one database. Stops gracefully on SIGTERM or SIGINT.
      """,
    "notifications": """
      roster notifications
        Serves notification methods on $ROSTER_RUN_DIR/notifications.sock and delivers
        the email outbox over SMTP to ROSTER_SMTP_URL with retries and back-off.
        Stops gracefully on SIGTERM or SIGINT.
      """,
    "migrate": """
      roster migrate
        Applies the numbered SQL files in schema/ that the database lacks, in order,
        each in its own transaction, under an advisory lock (concurrent runs are safe).
        schema/ is found via ROSTER_SCHEMA_DIR, next to the executable, or in the
        source checkout.
      """,
    "call": """
      roster call [--raw] [--timeout SECONDS] SOCKET METHOD [JSON]
        Sends one JSON-RPC request and prints the result as indented JSON (--raw: the
        whole reply on one line, as the socket sent it). system.metrics prints the
        Prometheus text itself. SOCKET is a socket path or a process name
        (provisioning, deprovisioning, notifications) resolved in ROSTER_RUN_DIR.
        JSON is the params object (default {}). Waits at most SECONDS for the answer
        (default 60). Exit status 0 on success, 1 on a JSON-RPC error (printed to
        stderr), 2 on a usage or connection problem.
        Example: roster call provisioning workspace.find '{"name":"acme"}'
      """,
    "version": """
      roster version
        Prints the version of this build.
      """,
  ]

  static func run(_ args: [String]) -> Int32 {
    guard let command = args.first else {
      print(usage + environmentHelp())
      return 2
    }
    let rest = Array(args.dropFirst())
    if rest.contains("--help") || rest.contains("-h") {
      guard let help = commandHelp[command] else {
        printErr("roster: unknown command '\(command)'. Run `roster --help` for the list.\n")
        return 2
      }
      let names = commandVariables[command] ?? []
      print(help + (names.isEmpty ? "" : "\n\nEnvironment (defaults in brackets):\n" + environmentHelp(only: names)))
      return 0
    }
    switch command {
    case "--help", "-h", "help":
      print(usage + environmentHelp())
      return 0
    case "version", "--version":
      print(rosterVersion)
      return 0
    case "migrate": return migrate()
    case "call": return call(rest)
    case "provisioning", "deprovisioning", "notifications":
      return serve(command)
    default:
      printErr("roster: unknown command '\(command)'. Run `roster --help` for the list.\n")
      return 2
    }
  }

  static func loadConfig() -> Config? {
    do {
      return try Config.fromEnvironment()
    } catch {
      printErr("roster: configuration error: \(error)\n")
      return nil
    }
  }

  static func migrate() -> Int32 {
    guard let config = loadConfig() else { return 2 }
    guard let dir = Migrator.locateSchemaDirectory() else {
      printErr("roster migrate: cannot find the schema/ folder; set ROSTER_SCHEMA_DIR\n")
      return 2
    }
    let conn = PGConnection(config: PGConfig(conninfo: config.databaseURL, applicationName: "roster-migrate", statementTimeoutMilliseconds: 0))
    defer { conn.close() }
    do {
      let applied = try Migrator(directory: dir).migrate(connection: conn) { print("roster migrate: \($0)") }
      let version = try Migrator.currentVersion(connection: conn)
      print("roster migrate: \(applied.isEmpty ? "already up to date" : "applied \(applied.count)"); schema version \(version)")
      return 0
    } catch let e as PGError {
      printErr("roster migrate: \(e.debugDescription)\n")
      return 1
    } catch {
      printErr("roster migrate: \(error)\n")
      return 1
    }
  }

  static let jsonRPCProcesses = ["provisioning", "deprovisioning", "notifications"]

  static func call(_ arguments: [String]) -> Int32 {
    var args = arguments
    var raw = false
    var timeout = 60.0
    while let first = args.first, first.hasPrefix("--") {
      args.removeFirst()
      switch first {
      case "--raw": raw = true
      case "--timeout":
        guard let t = args.first.flatMap(Double.init), t > 0, t <= 3600 else {
          printErr("roster call: --timeout needs a number of seconds (up to 3600)\n")
          return 2
        }
        timeout = t
        args.removeFirst()
      default:
        printErr("roster call: unknown option \(first)\n\n" + commandHelp["call"]! + "\n")
        return 2
      }
    }
    guard args.count == 2 || args.count == 3 else {
      printErr(commandHelp["call"]! + "\n")
      return 2
    }
    var socket = args[0]
    let byName = !socket.contains("/")
    if byName {
      guard let config = loadConfig() else { return 2 }
      guard jsonRPCProcesses.contains(socket) || socket.hasSuffix(".sock") else {
        printErr("roster call: '\(socket)' is not a JSON-RPC socket; use provisioning, deprovisioning or notifications (or a path)\n")
        return 2
      }
      socket = socket.hasSuffix(".sock") ? config.runDir + "/" + socket : config.socketPath(socket)
    }
    var params: JSONValue = [:]
    if args.count == 3 {
      do {
        params = try JSONParser.parse(args[2])
      } catch {
        printErr("roster call: the params are not valid JSON: \(error)\n")
        return 2
      }
    }
    let method = args[1]
    let request: JSONValue = ["jsonrpc": "2.0", "id": 1, "method": .string(method), "params": params]
    let client: LineClient
    do {
      client = try LineClient(unixPath: socket, timeoutSeconds: timeout)
    } catch {
      var hint = ""
      if byName {
        let dir = ProcessInfo.processInfo.environment["ROSTER_RUN_DIR"]
        hint = dir == nil
          ? " ROSTER_RUN_DIR is not set, so the default /run/roster was used: export the folder `roster \(args[0])` runs in (deploy/run-local.sh prints the line), or give the socket's path."
          : " Is `roster \(args[0])` running with ROSTER_RUN_DIR=\(dir!)?"
      }
      printErr("roster call: cannot connect to \(socket): \(error).\(hint)\n")
      return 2
    }
    do {
      // The blank line is ignored by JSON-RPC sockets but completes a request
      // for an HTTP listener (scim.sock, web.sock), which then answers at once.
      try client.send(JSONWriter.bytes(request) + Array("\n\r\n".utf8))
      guard let line = try client.readLine() else {
        printErr("roster call: \(socket) closed the connection without answering\n")
        return 2
      }
      if line.starts(with: Array("HTTP/".utf8)) {
        printErr(
          "roster call: \(socket) speaks HTTP, not JSON-RPC (it is a SCIM or web listener). JSON-RPC sockets: provisioning.sock, deprovisioning.sock, notifications.sock.\n"
        )
        return 2
      }
      guard let reply = try? JSONParser.parse(line, maxDepth: 512) else {
        printErr("roster call: \(socket) did not answer with JSON-RPC: \(String(decoding: line.prefix(120), as: UTF8.self))\n")
        return 2
      }
      if raw {
        print(String(decoding: line, as: UTF8.self))
        return reply["error"] == nil ? 0 : 1
      }
      if let error = reply["error"] {
        printErr(JSONWriter.string(error, pretty: true) + "\n")
        return 1
      }
      let result = reply["result"] ?? .null
      if method == "system.metrics", let text = result["text"]?.stringValue {
        print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
      } else {
        print(JSONWriter.string(result, pretty: true))
      }
      return 0
    } catch {
      let timedOut = "\(error)".contains("temporarily unavailable") || "\(error)".contains("timed out")
      printErr(
        "roster call: \(timedOut ? "no answer from \(socket) within \(Int(timeout)) s (--timeout to wait longer)" : "\(socket): \(error)")\n")
      return 2
    }
  }

  static func serve(_ process: String) -> Int32 {
    guard let config = loadConfig() else { return 2 }
    let host = ProcessHost(name: process, config: config)
    do {
      try host.checkDatabase(requiredSchema: Migrator.requiredVersion, currentVersion: Migrator.currentVersion(connection:))
      try Services.install(process, host: host)
      try host.serveRPC()
    } catch {
      host.logger.error("cannot start: \(error)")
      return 1
    }
    host.runUntilSignalled()
    return 0
  }
}

/// Writes to stderr (the C `stderr` global is not concurrency-safe in Swift 6).
func printErr(_ text: String) {
  FileHandle.standardError.write(Data(text.utf8))
}
