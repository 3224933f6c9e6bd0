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

  public init(publicURL: String, webSocket: String, appRedirectPrefix: String) {
    self.publicURL = publicURL
    self.webSocket = webSocket
    self.appRedirectPrefix = appRedirectPrefix
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
      return try TestHTTP(socket: webSocket).raw(method, String(url.dropFirst(publicURL.count)), headers: headers, body: body)
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

  static func enc(_ s: String) -> String {
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
