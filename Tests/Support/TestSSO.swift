import Foundation
import JSON

/// Starts a Python test peer that prints "ready" when it listens.
func startPeer(_ script: String, _ args: [String], name: String) throws -> (Spawned, String) {
  let dir = try TestFiles.makeTempDirectory(prefix: "roster-\(name)")
  let log = dir + "/peer.log"
  let p = try TestProcess.start([TestFiles.python, TestFiles.repositoryRoot + "/Tests/Support/peers/" + script] + args, output: log)
  let ready = TestProcess.waitUntil(timeout: 30) { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("ready") }
  if !ready {
    p.stop()
    throw TestError("the \(name) test peer did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
  }
  return (p, dir)
}

/// A real SAML IdP (pysaml2 signing with xmlsec1) on loopback.
public final class TestSAMLIdP: @unchecked Sendable {
  public let port: UInt16
  public let keyDir: String
  let process: Spawned
  public var base: String { "http://127.0.0.1:\(port)" }
  public var entityId: String { base + "/metadata" }

  public init() throws {
    port = freeLoopbackPort()
    keyDir = try TestFiles.makeTempDirectory(prefix: "roster-idpkeys")
    try TestProcess.run([TestFiles.python, TestFiles.repositoryRoot + "/Tests/Support/peers/saml_forge.py", "keys", keyDir])
    let state = try TestFiles.makeTempDirectory(prefix: "roster-idpstate")
    (process, _) = try startPeer("saml_idp.py", [String(port), state, keyDir + "/idp.key", keyDir + "/idp.crt"], name: "saml-idp")
  }

  deinit { process.stop() }

  public var certificatePEM: String { (try? String(contentsOfFile: keyDir + "/idp.crt", encoding: .utf8)) ?? "" }

  public func metadata() throws -> String {
    String(decoding: try TestHTTP(host: "127.0.0.1", port: port).request("GET", "/metadata").body, as: UTF8.self)
  }

  /// Registers an SP (its metadata as Roster serves it).
  public func addSP(metadata: [UInt8]) throws {
    let r = try TestHTTP(host: "127.0.0.1", port: port).raw("POST", "/control/sp", headers: [], body: metadata)
    if r.status != 200 { throw TestError("the IdP refused the SP metadata") }
  }

  /// Who signs in next.
  public func setUser(email: String, given: String = "Alice", family: String = "Admin", groups: [String] = ["Engineering"]) throws {
    let body: JSONValue = ["email": .string(email), "givenName": .string(given), "familyName": .string(family), "groups": .array(groups.map { .string($0) })]
    _ = try TestHTTP(host: "127.0.0.1", port: port).raw("POST", "/control/user", headers: [], body: JSONWriter.bytes(body))
  }
}

/// The load's SAML IdP (Tests/Support/peers/saml_load_idp.py): answers
/// AuthnRequests for whoever `login_hint` names, many at once.
public final class TestSAMLLoadIdP: @unchecked Sendable {
  public let port: UInt16
  let process: Spawned

  public init() throws {
    port = freeLoopbackPort()
    (process, _) = try startPeer("saml_load_idp.py", [String(port)], name: "saml-load-idp")
  }

  deinit { process.stop() }
}

/// The test OpenID provider (Tests/Support/peers/oidc_provider.py).
public final class TestOIDCProvider: @unchecked Sendable {
  public let port: UInt16
  let process: Spawned
  public var issuer: String { "http://127.0.0.1:\(port)" }

  public init() throws {
    port = freeLoopbackPort()
    (process, _) = try startPeer("oidc_provider.py", [String(port)], name: "oidc")
  }

  deinit { process.stop() }

  public func control(_ change: JSONValue) throws {
    let r = try TestHTTP(host: "127.0.0.1", port: port).raw("POST", "/control", headers: [], body: JSONWriter.bytes(change))
    if r.status != 200 { throw TestError("the OIDC provider refused the control request") }
  }
}

/// A browser for the sign-in flows: follows redirects between Roster's web
/// listener (URLs under ROSTER_PUBLIC_URL) and the IdPs on loopback, and
/// submits an IdP's auto-posting form as a browser would.
public struct TestBrowser {
  public let publicURL: String
  public let webSocket: String
  /// Where the app receives codes: the walk stops there.
  public let appRedirectPrefix: String
  /// When set, ROSTER_PUBLIC_URL is reached through this proxy (nginx) instead of the socket.
  public var proxy: (host: String, port: UInt16)?

  public init(publicURL: String, webSocket: String, appRedirectPrefix: String, proxy: (host: String, port: UInt16)? = nil) {
    self.publicURL = publicURL
    self.webSocket = webSocket
    self.appRedirectPrefix = appRedirectPrefix
    self.proxy = proxy
  }

  public struct Step {
    public var method: String
    public var url: String
    public var status: Int
  }

  public struct Result {
    /// The app's redirect URI with its query, if the walk reached it.
    public var landed: String?
    public var last: TestHTTP.Response
    public var steps: [Step]

    public var query: [String: String] {
      guard let landed, let c = URLComponents(string: landed) else { return [:] }
      var out: [String: String] = [:]
      for i in c.queryItems ?? [] { out[i.name] = i.value ?? "" }
      return out
    }
  }

  public func request(_ method: String, _ url: String, form: [(String, String)] = []) throws -> TestHTTP.Response {
    let body = Array(form.map { Self.enc($0.0) + "=" + Self.enc($0.1) }.joined(separator: "&").utf8)
    let headers = method == "POST" ? [("Content-Type", "application/x-www-form-urlencoded")] : []
    if url.hasPrefix(publicURL) {
      let path = String(url.dropFirst(publicURL.count))
      if let proxy { return try TestHTTP(host: proxy.host, port: proxy.port).raw(method, path, headers: headers, body: body) }
      return try TestHTTP(socket: webSocket).raw(method, path, headers: headers, body: body)
    }
    guard let c = URLComponents(string: url), let host = c.host, let port = c.port else { throw TestError("the browser cannot reach \(url)") }
    var target = c.percentEncodedPath.isEmpty ? "/" : c.percentEncodedPath
    if let q = c.percentEncodedQuery { target += "?" + q }
    return try TestHTTP(host: host, port: UInt16(port)).raw(method, target, headers: headers, body: body)
  }

  /// Walks from `start` until the app's redirect URI (or a page that is
  /// neither a redirect nor an auto-posting form).
  public func walk(_ start: String, maxSteps: Int = 10) throws -> Result {
    var method = "GET"
    var url = start
    var form: [(String, String)] = []
    var steps: [Step] = []
    for _ in 0..<maxSteps {
      if url.hasPrefix(appRedirectPrefix) {
        return Result(landed: url, last: TestHTTP.Response(status: 0, headers: [], body: []), steps: steps)
      }
      let r = try request(method, url, form: form)
      steps.append(Step(method: method, url: url, status: r.status))
      if (300..<400).contains(r.status), let location = r.header("Location") {
        method = "GET"
        form = []
        url = location.hasPrefix("/") ? publicURL + location : location
        continue
      }
      if r.status == 200, let (action, fields) = Self.autoPostForm(String(decoding: r.body, as: UTF8.self)) {
        method = "POST"
        form = fields
        url = action
        continue
      }
      return Result(landed: nil, last: r, steps: steps)
    }
    throw TestError("too many redirects from \(start)")
  }

  public static func enc(_ s: String) -> String {
    s.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")) ?? s
  }

  /// The action and hidden fields of a `<form method="post">` page.
  public static func autoPostForm(_ html: String) -> (String, [(String, String)])? {
    guard let formRange = html.range(of: "<form method=\"post\" action=\"") else { return nil }
    let rest = html[formRange.upperBound...]
    guard let end = rest.firstIndex(of: "\"") else { return nil }
    let action = unescape(String(rest[..<end]))
    var fields: [(String, String)] = []
    var scan = Substring(html)
    while let i = scan.range(of: "<input type=\"hidden\" name=\"") {
      let after = scan[i.upperBound...]
      guard let nameEnd = after.firstIndex(of: "\""), let valueStart = after.range(of: "value=\"") else { break }
      let name = String(after[..<nameEnd])
      let valueRest = after[valueStart.upperBound...]
      guard let valueEnd = valueRest.firstIndex(of: "\"") else { break }
      fields.append((name, unescape(String(valueRest[..<valueEnd]))))
      scan = valueRest[valueEnd...]
    }
    return (action, fields)
  }

  static func unescape(_ s: String) -> String {
    s.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#x27;", with: "'").replacingOccurrences(of: "&#39;", with: "'")
      .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
  }
}

/// A real nginx on loopback in front of Roster, configured with one of the
/// snippets shipped in deploy/nginx (socket paths pointed at the test's).
public final class TestNginx: @unchecked Sendable {
  public let port: UInt16
  let process: Spawned

  public init(snippet: String, socketPaths: [String: String]) throws {
    guard let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"].first(where: FileManager.default.isExecutableFile(atPath:)) else {
      throw TestError("nginx is not installed (deploy/test.sh installs nginx-light)")
    }
    let dir = try TestFiles.makeTempDirectory(prefix: "roster-nginx")
    port = freeLoopbackPort()
    var locations = try String(contentsOfFile: TestFiles.repositoryRoot + "/deploy/nginx/" + snippet, encoding: .utf8)
    for (from, to) in socketPaths { locations = locations.replacingOccurrences(of: from, with: to) }
    let conf = """
      daemon off;
      \(getuid() == 0 ? "user root;" : "")
      worker_processes 1;
      pid \(dir)/nginx.pid;
      error_log \(dir)/error.log;
      events { worker_connections 64; }
      http {
        access_log off;
        client_body_temp_path \(dir)/body;
        proxy_temp_path \(dir)/proxy;
        fastcgi_temp_path \(dir)/fastcgi;
        uwsgi_temp_path \(dir)/uwsgi;
        scgi_temp_path \(dir)/scgi;
        server {
          listen 127.0.0.1:\(port);
          \(locations)
        }
      }
      """
    try conf.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
    process = try TestProcess.start([nginx, "-c", dir + "/nginx.conf", "-p", dir], output: dir + "/stdout.log")
    guard TestProcess.waitUntil(timeout: 10, { (try? TestHTTP(host: "127.0.0.1", port: self.port)) != nil }) else {
      process.stop()
      throw TestError("nginx did not start: \((try? String(contentsOfFile: dir + "/error.log", encoding: .utf8)) ?? "")")
    }
  }

  deinit { process.stop() }
}
