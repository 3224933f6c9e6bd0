import Foundation
import Sockets

#if canImport(Glibc)
  import Glibc
#endif

/// A configuration value that could not be used, reported at start-up.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
  public let variable: String
  public let problem: String
  public var description: String { "\(variable): \(problem)" }
}

/// Everything a process reads from its environment. Every variable has a
/// default; `Config.documentation` lists them (printed by `roster --help`).
public struct Config: Sendable {
  public var databaseURL: String
  public var runDir: String
  public var scimListen: ListenAddress
  public var publicURL: String
  public var smtpHost: String
  public var smtpPort: UInt16
  public var mailFrom: String
  public var dnsServer: (host: String, port: UInt16)
  public var opsUIDs: Set<UInt32>
  public var logLevel: LogLevel
  public var logFormat: LogFormat
  public var dbPoolSize: Int
  public var maxConnections: Int
  public var scimMetrics: Bool

  public static let documentation: [(String, String, String)] = [
    ("ROSTER_DATABASE_URL", "dbname=roster", "libpq connection string (URL or key=value); PGHOST etc. apply as usual"),
    ("ROSTER_RUN_DIR", "/run/roster", "folder for the sockets (created 0750; sockets are 0660)"),
    ("ROSTER_SCIM_LISTEN", "unix:$ROSTER_RUN_DIR/scim.sock", "unix:PATH or tcp:127.0.0.1:PORT for SCIM over HTTP/1.1"),
    ("ROSTER_PUBLIC_URL", "http://localhost:3000", "the app's public base URL (links in emails, SCIM meta.location)"),
    ("ROSTER_SMTP_URL", "smtp://127.0.0.1:25", "smtp://host:port of the mail relay"),
    ("ROSTER_MAIL_FROM", "roster@localhost", "sender address of every email"),
    ("ROSTER_DNS_SERVER", "first nameserver in /etc/resolv.conf, port 53", "host:port of the resolver for TXT checks"),
    ("ROSTER_OPS_UIDS", "0 and the daemon's own uid", "comma-separated uids allowed to act as {\"ops\": NAME}"),
    ("ROSTER_LOG_LEVEL", "info", "debug, info, warning or error"),
    ("ROSTER_LOG_FORMAT", "text", "text or json (one object per line on stderr)"),
    ("ROSTER_DB_POOL_SIZE", "8", "database connections per process"),
    ("ROSTER_MAX_CONNECTIONS", "256", "concurrent socket connections per listener"),
    ("ROSTER_SCIM_METRICS", "false", "also serve GET /metrics on the SCIM listener"),
    ("ROSTER_SCHEMA_DIR", "schema/ next to the executable or in the source tree", "the SQL migrations `roster migrate` applies"),
    ("ROSTER_DATA_DIR", "Roster_Policy.resources next to the executable", "the public/disposable mail domain lists and the public suffix list"),
  ]

  public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> Config {
    func value(_ name: String) -> String? {
      guard let v = env[name]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
      return v
    }
    let runDir = value("ROSTER_RUN_DIR") ?? "/run/roster"
    guard runDir.hasPrefix("/") || runDir.hasPrefix(".") else {
      throw ConfigError(variable: "ROSTER_RUN_DIR", problem: "must be a path, got '\(runDir)'")
    }
    let scimText = value("ROSTER_SCIM_LISTEN") ?? "unix:\(runDir)/scim.sock"
    guard let scim = ListenAddress.parse(scimText) else {
      throw ConfigError(variable: "ROSTER_SCIM_LISTEN", problem: "expected unix:PATH or tcp:IPV4:PORT, got '\(scimText)'")
    }
    let publicURL = value("ROSTER_PUBLIC_URL") ?? "http://localhost:3000"
    guard let pu = URLComponents(string: publicURL), pu.scheme == "http" || pu.scheme == "https", pu.host != nil else {
      throw ConfigError(variable: "ROSTER_PUBLIC_URL", problem: "expected an http(s) URL, got '\(publicURL)'")
    }
    let smtpText = value("ROSTER_SMTP_URL") ?? "smtp://127.0.0.1:25"
    guard let smtp = URLComponents(string: smtpText), smtp.scheme == "smtp", let smtpHost = smtp.host, !smtpHost.isEmpty,
      (1...65535).contains(smtp.port ?? 25)
    else {
      throw ConfigError(variable: "ROSTER_SMTP_URL", problem: "expected smtp://host:port with a port from 1 to 65535, got '\(smtpText)'")
    }
    let mailFrom = value("ROSTER_MAIL_FROM") ?? "roster@localhost"
    guard mailFrom.contains("@"), !mailFrom.contains(" "), !mailFrom.contains("\n") else {
      throw ConfigError(variable: "ROSTER_MAIL_FROM", problem: "expected an email address, got '\(mailFrom)'")
    }
    let dns: (String, UInt16)
    if let d = value("ROSTER_DNS_SERVER") {
      guard let parsed = parseHostPort(d, defaultPort: 53) else {
        throw ConfigError(variable: "ROSTER_DNS_SERVER", problem: "expected host:port (IPv4), got '\(d)'")
      }
      dns = parsed
    } else {
      dns = (systemNameserver() ?? "127.0.0.1", 53)
    }
    var ops: Set<UInt32> = [0, getuid()]
    if let o = value("ROSTER_OPS_UIDS") {
      ops = []
      for part in o.split(separator: ",") {
        guard let uid = UInt32(part.trimmingCharacters(in: .whitespaces)) else {
          throw ConfigError(variable: "ROSTER_OPS_UIDS", problem: "expected comma-separated numeric uids, got '\(o)'")
        }
        ops.insert(uid)
      }
    }
    let levelText = value("ROSTER_LOG_LEVEL") ?? "info"
    guard let level = LogLevel(rawValue: levelText.lowercased()) else {
      throw ConfigError(variable: "ROSTER_LOG_LEVEL", problem: "expected debug, info, warning or error, got '\(levelText)'")
    }
    let formatText = value("ROSTER_LOG_FORMAT") ?? "text"
    guard let format = LogFormat(rawValue: formatText.lowercased()) else {
      throw ConfigError(variable: "ROSTER_LOG_FORMAT", problem: "expected text or json, got '\(formatText)'")
    }
    func positive(_ name: String, _ def: Int, max: Int) throws(ConfigError) -> Int {
      guard let t = value(name) else { return def }
      guard let n = Int(t), n > 0, n <= max else {
        throw ConfigError(variable: name, problem: "expected a whole number from 1 to \(max), got '\(t)'")
      }
      return n
    }
    let metricsText = value("ROSTER_SCIM_METRICS")?.lowercased() ?? "false"
    guard ["true", "false", "1", "0", "yes", "no"].contains(metricsText) else {
      throw ConfigError(variable: "ROSTER_SCIM_METRICS", problem: "expected true or false, got '\(metricsText)'")
    }
    return Config(
      databaseURL: value("ROSTER_DATABASE_URL") ?? "dbname=roster",
      runDir: runDir, scimListen: scim, publicURL: publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL,
      smtpHost: smtpHost, smtpPort: UInt16(smtp.port ?? 25), mailFrom: mailFrom, dnsServer: dns, opsUIDs: ops,
      logLevel: level, logFormat: format,
      dbPoolSize: try positive("ROSTER_DB_POOL_SIZE", 8, max: 200),
      maxConnections: try positive("ROSTER_MAX_CONNECTIONS", 256, max: 10_000),
      scimMetrics: ["true", "1", "yes"].contains(metricsText))
  }

  public func socketPath(_ process: String) -> String { "\(runDir)/\(process).sock" }

  /// Creates the run directory (0750) if needed.
  public func prepareRunDir() throws(ConfigError) {
    var st = stat()
    if stat(runDir, &st) == 0 {
      guard (st.st_mode & S_IFMT) == S_IFDIR else { throw ConfigError(variable: "ROSTER_RUN_DIR", problem: "'\(runDir)' is not a directory") }
      return
    }
    do {
      try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
    } catch {
      throw ConfigError(variable: "ROSTER_RUN_DIR", problem: "cannot create '\(runDir)': \(error.localizedDescription)")
    }
  }
}

func parseHostPort(_ s: String, defaultPort: UInt16) -> (String, UInt16)? {
  let parts = s.split(separator: ":", omittingEmptySubsequences: false)
  var addr = in_addr()
  switch parts.count {
  case 1:
    guard inet_pton(AF_INET, s, &addr) == 1 else { return nil }
    return (s, defaultPort)
  case 2:
    guard inet_pton(AF_INET, String(parts[0]), &addr) == 1, let p = UInt16(parts[1]), p > 0 else { return nil }
    return (String(parts[0]), p)
  default: return nil
  }
}

func systemNameserver() -> String? {
  guard let text = try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8) else { return nil }
  for line in text.split(separator: "\n") {
    let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
    if fields.count >= 2, fields[0] == "nameserver" {
      var addr = in_addr()
      if inet_pton(AF_INET, String(fields[1]), &addr) == 1 { return String(fields[1]) }
    }
  }
  return nil
}
