import Crypto
import Foundation
import JSON
import RosterTestSupport
import Testing

/// A provisioning process whose web listener is on loopback TCP, so a real
/// browser can reach the setup pages at ROSTER_PUBLIC_URL.
final class SetupFixture: @unchecked Sendable {
  let f: ProvisioningFixture
  let webPort: UInt16
  let publicURL: String

  init() throws {
    webPort = freeLoopbackPort()
    publicURL = "http://127.0.0.1:\(webPort)"
    f = try ProvisioningFixture(environment: [
      "ROSTER_WEB_LISTEN": "tcp:127.0.0.1:\(webPort)", "ROSTER_PUBLIC_URL": publicURL, "ROSTER_IDP_ALLOW_HTTP_LOOPBACK": "true",
      "ROSTER_SECRET_KEY": Data(Secrets.randomBytes(32)).base64EncodedString(),
    ])
  }

  struct Link {
    let url: String
    let id: String
    var token: String { String(url.split(separator: "/").last!) }
    var path: String { "/setup/" + token }
  }

  func link(_ w: ProvisioningFixture.Workspace, steps: [String]? = nil, ttlHours: Int? = nil) throws -> Link {
    var p: [String: JSONValue] = ["workspaceId": .string(w.id), "actor": f.admin(w)]
    if let steps { p["steps"] = .array(steps.map { .string($0) }) }
    if let ttlHours { p["ttlHours"] = .int(Int64(ttlHours)) }
    let r = try f.rpc.call("setup.createLink", .object(p))
    return Link(url: r["url"]!.stringValue!, id: r["linkId"]!.stringValue!)
  }

  /// One request to the web listener, as a browser on the same origin would send it.
  func http(_ method: String, _ path: String, form: [(String, String)]? = nil, headers: [(String, String)] = []) throws -> TestHTTP.Response {
    var h = headers
    var body: [UInt8] = []
    if let form {
      body = Array(form.map { TestBrowser.enc($0.0) + "=" + TestBrowser.enc($0.1) }.joined(separator: "&").utf8)
      h.append(("Content-Type", "application/x-www-form-urlencoded"))
    }
    return try TestHTTP(host: "127.0.0.1", port: webPort).raw(method, path, headers: h, body: body)
  }

  /// The hidden form key of a setup page (what a same-origin form sends).
  func formKey(_ link: Link, step: String = "domains") throws -> String {
    let page = String(decoding: try http("GET", link.path + "/" + step).body, as: UTF8.self)
    guard let r = page.range(of: "name=\"form_key\" value=\"") else { throw TestError("no form key on the page") }
    return String(page[r.upperBound...].prefix { $0 != "\"" })
  }

  static func text(_ r: TestHTTP.Response) -> String { String(decoding: r.body, as: UTF8.self) }

  /// The value of a copy field (a read-only text area) on a page.
  static func copyField(_ html: String, _ id: String) throws -> String {
    guard let start = html.range(of: "<textarea id=\"\(id)\""), let open = html[start.upperBound...].range(of: ">"),
      let close = html[open.upperBound...].range(of: "</textarea>")
    else { throw TestError("no copy field \(id) on the page") }
    return String(html[open.upperBound..<close.lowerBound]).replacingOccurrences(of: "&amp;", with: "&")
  }
}
