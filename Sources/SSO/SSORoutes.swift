import Foundation
import HTTP1
import Postgres
import WebPages

extension SSOService {
  /// The `/sso/…` paths (P1, P2, P7, P10). Anything hostile or unknown is a
  /// 4xx with a trace id; a database outage is a 503 with one.
  public func addRoutes(to web: WebServer) {
    web.add(prefix: "/sso/") { [self] r in
      do {
        return try route(r)
      } catch let e as PGError where e.isBadText {
        let id = trace(Attempt(), outcome: "refused", reason: "malformed_request", detail: "a value contains a NUL character")
        return WebPage.error(status: 400, title: "Sign-in refused", message: "The request contains characters that are not allowed.", traceId: id)
      } catch let e as PGError where e.isConnectionFailure {
        return WebPage.error(status: 503, title: "Try again shortly", message: "Sign-in is unavailable for a moment.", traceId: WebPage.traceId())
      } catch {
        let id = trace(Attempt(), outcome: "refused", reason: "internal_error", detail: nil)
        ctx.logger.error("sso request failed", ["trace": .string(id), "error": .string(String(describing: error))])
        return WebPage.error(status: 500, title: "Sign-in failed", message: "Something went wrong on our side.", traceId: id)
      }
    }
  }

  func route(_ r: HTTPRequest) throws -> HTTPResponse {
    let parts = r.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    switch (r.method, parts.count > 1 ? parts[1] : "", parts.count) {
    case ("GET", "saml", 4) where parts[3] == "metadata", ("HEAD", "saml", 4) where parts[3] == "metadata":
      return try metadata(connectionId: parts[2])
    case ("POST", "saml", 4) where parts[3] == "acs":
      return render(try acs(connectionId: parts[2], request: r))
    case ("GET", "oidc", 3) where parts[2] == "callback":
      return render(try oidcCallback(r))
    case (_, "saml", 4) where parts[3] == "acs", (_, "oidc", 3) where parts[2] == "callback", (_, "saml", 4) where parts[3] == "metadata":
      let id = trace(Attempt(), outcome: "refused", reason: "method_not_allowed", detail: "\(r.method.prefix(10)) \(r.path.prefix(200))")
      var page = WebPage.error(status: 405, title: "Method not allowed", message: "This address does not take \(r.method.prefix(10)).", traceId: id)
      page.headers.append(("Allow", parts[1] == "saml" && parts[3] == "acs" ? "POST" : "GET, HEAD"))
      return page
    default:
      return WebPage.error(status: 404, title: "Not found", message: "There is no sign-in page here.", traceId: WebPage.traceId())
    }
  }

  func render(_ outcome: WebOutcome) -> HTTPResponse {
    switch outcome {
    case .redirect(let location): return WebPage.redirect(location)
    case .refused(let status, let reason, let traceId):
      return WebPage.error(
        status: status, title: "Sign-in refused",
        message: "Your sign-in could not be completed (\(reason)). Start again from the app, or give your administrator the trace id.", traceId: traceId)
    case .setupResult(let linkId, let traceId):
      return setupResult(linkId, traceId)
    }
  }

  /// Where a setup test sign-in returns; the guided setup replaces this.
  func setupResult(_ linkId: String, _ traceId: String) -> HTTPResponse {
    if let hook = setupReturn.withLock({ $0 }) { return hook(linkId, traceId) }
    return WebPage.error(status: 200, title: "Test sign-in finished", message: "Look up the result in sso.traces.", traceId: traceId)
  }
}
