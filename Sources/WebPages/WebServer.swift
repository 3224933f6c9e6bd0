import Crypto
import Foundation
import HTTP1
import JSON
import RosterRuntime
import Sockets
import Synchronization

/// The browser-facing listener (ROSTER_WEB_LISTEN): the SSO module's `/sso/…`
/// and the guided setup's `/setup/…` add their routes here. Every answer
/// carries the same strict headers (G3): no framing, no referrer (a setup
/// token is in the path), no outside resources, nothing cached.
public final class WebServer: Sendable {
  public typealias Route = @Sendable (HTTPRequest) -> HTTPResponse?
  let routes = Mutex<[(prefix: String, route: Route)]>([])
  let logger: Logger

  public init(logger: Logger) { self.logger = logger }

  /// Adds a handler for paths starting with `prefix` (it may still answer nil).
  public func add(prefix: String, _ route: @escaping Route) { routes.withLock { $0.append((prefix, route)) } }

  public static let securityHeaders: [(name: String, value: String)] = [
    (
      "Content-Security-Policy",
      "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"), ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"),
  ]

  public func handle(_ r: HTTPRequest) -> HTTPResponse {
    var response: HTTPResponse?
    for (prefix, route) in routes.withLock({ $0 }) where r.path.hasPrefix(prefix) {
      response = route(r)
      if response != nil { break }
    }
    var out = response ?? WebPage.error(status: 404, title: "Not found", message: "There is no page here.", traceId: WebPage.traceId())
    for h in Self.securityHeaders where !out.headers.contains(where: { $0.name.lowercased() == h.name.lowercased() }) { out.headers.append(h) }
    return out
  }

  public func serve(_ address: ListenAddress, maxConnections: Int, requestTimeoutSeconds: Double = 10) throws -> HTTPServer {
    let listener = try Listener.bind(address)
    var options = StreamServer.Options()
    options.maxConnections = maxConnections
    let server = HTTPServer(
      listener: listener, options: options, limits: .timed(requestTimeoutSeconds),
      onError: { status, message in
        var r = WebPage.error(status: status, title: "Bad request", message: message, traceId: WebPage.traceId())
        r.headers += WebServer.securityHeaders
        return r
      },
      handler: { [self] req in self.handle(req) })
    server.start()
    logger.info("serving the web paths", ["listen": .string(listener.address.description)])
    return server
  }
}

/// Small server-rendered pages with HTML escaping by default.
public enum WebPage {
  public static func traceId() -> String { "t-" + Secrets.token(bits: 80) }

  public static func escape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for ch in s.unicodeScalars {
      switch ch {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&#39;"
      default: out.unicodeScalars.append(ch)
      }
    }
    return out
  }

  public static func html(status: Int = 200, _ body: String) -> HTTPResponse {
    HTTPResponse(status: status, headers: [("Content-Type", "text/html; charset=utf-8")], body: Array(body.utf8))
  }

  /// A refusal the browser sees: what happened and the trace id for the
  /// admin, never a stack or the message that was refused.
  public static func error(status: Int, title: String, message: String, traceId: String?) -> HTTPResponse {
    html(
      status: status,
      """
      <!doctype html>
      <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
      <title>\(escape(title))</title></head>
      <body><main><h1>\(escape(title))</h1><p>\(escape(message))</p>\
      \(traceId.map { "<p>Trace id for your administrator: <code>\(escape($0))</code></p>" } ?? "")</main></body></html>

      """)
  }

  public static func redirect(_ location: String) -> HTTPResponse {
    HTTPResponse(status: 303, headers: [("Location", location), ("Content-Type", "text/plain; charset=utf-8")], body: Array("See \(location)".utf8))
  }
}
