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
  /// Browser-facing paths (/sso/…, /setup/…).
  public var webListen: ListenAddress
  /// The app's redirect URIs that may receive codes (exact match, P8).
  public var redirectURIs: [String]
  /// 32 bytes for AES-256-GCM of OIDC client secrets (P10), if configured.
  public var secretKey: [UInt8]?
  public var idpCAFile: String?
  public var idpAllowHTTPLoopback: Bool
  /// Where this process serves GET /metrics, if anywhere.
  public var metricsListen: ListenAddress?
  /// How many events may wait for an events.subscribe subscriber before it is disconnected.
  public var eventsBacklog: Int = 10_000
  /// A request must arrive in full this long after its first byte: a JSON-RPC
  /// line, HTTP request headers (an HTTP body gets three times as long).
  public var requestTimeoutSeconds: Double = 10

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
    ("ROSTER_MAX_CONNECTIONS", "256", "concurrent socket connections per listener; at the cap a newcomer replaces the half-sent or longest-idle one"),
    ("ROSTER_REQUEST_TIMEOUT", "10", "seconds a JSON-RPC line or HTTP request headers may take to arrive after their first byte (HTTP bodies: 3×)"),
    ("ROSTER_SCIM_METRICS", "false", "also serve GET /metrics on the SCIM listener"),
    ("ROSTER_METRICS_LISTEN", "off", "tcp:HOST:PORT or unix:PATH: this process serves GET /metrics (Prometheus text) there"),
    ("ROSTER_WEB_LISTEN", "unix:$ROSTER_RUN_DIR/web.sock", "unix:PATH or tcp:127.0.0.1:PORT for the browser-facing paths (/sso/…, /setup/…)"),
    ("ROSTER_SSO_REDIRECT_URIS", "$ROSTER_PUBLIC_URL/sso/callback", "comma-separated redirect URIs of the app that may receive sign-in codes (exact match)"),
    ("ROSTER_SECRET_KEY", "none", "base64 of 32 random bytes: encrypts OIDC client secrets (required once a connection has one)"),
    ("ROSTER_IDP_CA_FILE", "the system's CAs only", "extra PEM CA bundle for HTTPS to IdPs (discovery, token, JWKS, metadata URLs)"),
    ("ROSTER_IDP_ALLOW_HTTP_LOOPBACK", "false", "true lets OIDC issuers on 127.0.0.1 use plain HTTP (local development and tests)"),
    ("ROSTER_EVENTS_BACKLOG", "10000", "events.subscribe: events that may wait for a subscriber (beyond what its socket holds) before it is disconnected"),
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
    let webText = value("ROSTER_WEB_LISTEN") ?? "unix:\(runDir)/web.sock"
    guard let web = ListenAddress.parse(webText) else {
      throw ConfigError(variable: "ROSTER_WEB_LISTEN", problem: "expected unix:PATH or tcp:IPV4:PORT, got '\(webText)'")
    }
    var metricsListen: ListenAddress?
    if let m = value("ROSTER_METRICS_LISTEN"), m.lowercased() != "off" {
      guard let parsed = ListenAddress.parse(m) else {
        throw ConfigError(variable: "ROSTER_METRICS_LISTEN", problem: "expected off, unix:PATH or tcp:HOST:PORT, got '\(m)'")
      }
      metricsListen = parsed
    }
    let base = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
    var redirects = [base + "/sso/callback"]
    if let r = value("ROSTER_SSO_REDIRECT_URIS") {
      redirects = r.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
      for u in redirects {
        guard let c = URLComponents(string: u), c.scheme == "https" || c.scheme == "http", c.host != nil, c.fragment == nil else {
          throw ConfigError(variable: "ROSTER_SSO_REDIRECT_URIS", problem: "'\(u)' is not an absolute http(s) URL without a fragment")
        }
      }
      guard !redirects.isEmpty else { throw ConfigError(variable: "ROSTER_SSO_REDIRECT_URIS", problem: "no redirect URI given") }
    }
    var secretKey: [UInt8]?
    if let k = value("ROSTER_SECRET_KEY") {
      guard let data = Data(base64Encoded: k), data.count == 32 else {
        throw ConfigError(variable: "ROSTER_SECRET_KEY", problem: "expected the base64 of 32 random bytes (e.g. `openssl rand -base64 32`)")
      }
      secretKey = [UInt8](data)
    }
    let caFile = value("ROSTER_IDP_CA_FILE")
    if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
      throw ConfigError(variable: "ROSTER_IDP_CA_FILE", problem: "cannot read '\(caFile)'")
    }
    let loopbackText = value("ROSTER_IDP_ALLOW_HTTP_LOOPBACK")?.lowercased() ?? "false"
    guard ["true", "false", "1", "0", "yes", "no"].contains(loopbackText) else {
      throw ConfigError(variable: "ROSTER_IDP_ALLOW_HTTP_LOOPBACK", problem: "expected true or false, got '\(loopbackText)'")
    }
    let backlog = try positive("ROSTER_EVENTS_BACKLOG", 10_000, max: 10_000_000)
    var config = Config(
      databaseURL: value("ROSTER_DATABASE_URL") ?? "dbname=roster",
      runDir: runDir, scimListen: scim, publicURL: publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL,
      smtpHost: smtpHost, smtpPort: UInt16(smtp.port ?? 25), mailFrom: mailFrom, dnsServer: dns, opsUIDs: ops,
      logLevel: level, logFormat: format,
      dbPoolSize: try positive("ROSTER_DB_POOL_SIZE", 8, max: 200),
      maxConnections: try positive("ROSTER_MAX_CONNECTIONS", 256, max: 10_000),
      scimMetrics: ["true", "1", "yes"].contains(metricsText), webListen: web, redirectURIs: redirects, secretKey: secretKey, idpCAFile: caFile,
      idpAllowHTTPLoopback: ["true", "1", "yes"].contains(loopbackText), metricsListen: metricsListen)
    config.eventsBacklog = backlog
    config.requestTimeoutSeconds = Double(try positive("ROSTER_REQUEST_TIMEOUT", 10, max: 3600))
    return config
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
