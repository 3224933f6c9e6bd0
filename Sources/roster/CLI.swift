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
      roster call SOCKET METHOD [JSON]
                                 call a JSON-RPC method; SOCKET is a path or a process
                                 name (provisioning, deprovisioning, notifications)
      roster version
      roster COMMAND --help      help for one command

    Environment (defaults in brackets):

    """

  static func environmentHelp() -> String {
    Config.documentation.map { "  \($0.0) [\($0.1)]\n      \($0.2)" }.joined(separator: "\n")
  }

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
      roster call SOCKET METHOD [JSON]
        Sends one JSON-RPC request and prints the result as JSON. SOCKET is a socket
        path or a process name resolved in ROSTER_RUN_DIR. JSON is the params object
        (default {}). Exit status 0 on success, 1 on a JSON-RPC error (printed to
        stderr), 2 on a usage or connection problem.
        Example: roster call provisioning system.health
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
        printErr("roster: unknown command '\(command)'\n")
        return 2
      }
      print(help + "\n\nEnvironment:\n" + environmentHelp())
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

  static func call(_ args: [String]) -> Int32 {
    guard args.count == 2 || args.count == 3 else {
      printErr(commandHelp["call"]! + "\n")
      return 2
    }
    var socket = args[0]
    if !socket.contains("/") {
      guard let config = loadConfig() else { return 2 }
      socket = config.socketPath(socket)
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
    let request: JSONValue = ["jsonrpc": "2.0", "id": 1, "method": .string(args[1]), "params": params]
    do {
      let client = try LineClient(unixPath: socket)
      try client.send(JSONWriter.bytes(request) + [0x0A])
      guard let line = try client.readLine() else {
        printErr("roster call: the server closed the connection without answering\n")
        return 2
      }
      let reply = try JSONParser.parse(line, maxDepth: 512)
      if let error = reply["error"] {
        printErr(JSONWriter.string(error) + "\n")
        return 1
      }
      print(JSONWriter.string(reply["result"] ?? .null))
      return 0
    } catch {
      printErr("roster call: \(error)\n")
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
