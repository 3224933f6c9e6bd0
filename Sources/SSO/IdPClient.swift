import Foundation
import JSON
import Synchronization

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

/// HTTPS to identity providers (OIDC discovery, JWKS, token endpoint; SAML
/// metadata URLs) through FoundationNetworking's URLSession. Called from
/// request threads of our own; each call blocks its thread (never Swift
/// concurrency's cooperative pool) until the answer or the timeout.
public final class IdPClient: Sendable {
  public struct Failure: Error, Equatable, Sendable {
    public let message: String
  }

  public struct Response: Sendable {
    public let status: Int
    public let body: [UInt8]
    public var json: JSONValue? { try? JSONParser.parse(body, maxDepth: 32) }
  }

  let session: URLSession
  let allowHTTPLoopback: Bool
  static let maxBody = 1 << 20
  static let timeout: TimeInterval = 10

  public init(allowHTTPLoopback: Bool) {
    self.allowHTTPLoopback = allowHTTPLoopback
    let config = URLSessionConfiguration.ephemeral
    config.timeoutIntervalForRequest = Self.timeout
    config.timeoutIntervalForResource = Self.timeout
    config.httpCookieStorage = nil
    config.urlCache = nil
    config.requestCachePolicy = .reloadIgnoringLocalCacheData
    session = URLSession(configuration: config, delegate: NoRedirects(), delegateQueue: nil)
  }

  /// https, or http to loopback when allowed (ROSTER_IDP_ALLOW_HTTP_LOOPBACK).
  public func checkedURL(_ s: String) throws(Failure) -> URL {
    guard let c = URLComponents(string: s), let scheme = c.scheme?.lowercased(), let host = c.host, let url = c.url else {
      throw Failure(message: "'\(s.prefix(200))' is not a URL")
    }
    let loopback = host == "127.0.0.1" || host == "localhost" || host == "::1"
    guard scheme == "https" || (scheme == "http" && loopback && allowHTTPLoopback) else {
      throw Failure(message: "\(s.prefix(200)) must use https")
    }
    return url
  }

  public func get(_ url: String) throws(Failure) -> Response {
    var r = URLRequest(url: try checkedURL(url))
    r.setValue("application/json", forHTTPHeaderField: "Accept")
    return try perform(r)
  }

  /// A form POST (the token endpoint), with HTTP Basic client authentication when given.
  public func postForm(_ url: String, _ form: [(String, String)], basic: (user: String, password: String)? = nil) throws(Failure) -> Response {
    var r = URLRequest(url: try checkedURL(url))
    r.httpMethod = "POST"
    r.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
    r.setValue("application/json", forHTTPHeaderField: "Accept")
    if let basic {
      // RFC 6749 §2.3.1: both parts form-encoded before base64.
      let credentials = Self.formEncode(basic.user) + ":" + Self.formEncode(basic.password)
      r.setValue("Basic " + Data(credentials.utf8).base64EncodedString(), forHTTPHeaderField: "Authorization")
    }
    r.httpBody = Data(form.map { Self.formEncode($0.0) + "=" + Self.formEncode($0.1) }.joined(separator: "&").utf8)
    return try perform(r)
  }

  static func formEncode(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
      switch b {
      case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x2D, 0x2E, 0x5F, 0x7E: out.unicodeScalars.append(Unicode.Scalar(b))
      case 0x20: out += "+"
      default: out += String(format: "%%%02X", b)
      }
    }
    return out
  }

  func perform(_ request: URLRequest) throws(Failure) -> Response {
    let done = DispatchSemaphore(value: 0)
    let result = Mutex<Result<Response, Failure>>(.failure(Failure(message: "no answer")))
    let task = session.dataTask(with: request) { data, response, error in
      let r: Result<Response, Failure>
      if let error {
        r = .failure(Failure(message: "\(request.url?.host ?? "the IdP") did not answer: \(error.localizedDescription)"))
      } else if let http = response as? HTTPURLResponse {
        let body = data.map { [UInt8]($0) } ?? []
        r = body.count > Self.maxBody ? .failure(Failure(message: "the IdP's answer is larger than 1 MiB")) : .success(Response(status: http.statusCode, body: body))
      } else {
        r = .failure(Failure(message: "no HTTP answer"))
      }
      result.withLock { $0 = r }
      done.signal()
    }
    task.resume()
    if done.wait(timeout: .now() + Self.timeout + 2) == .timedOut {
      task.cancel()
      throw Failure(message: "\(request.url?.host ?? "the IdP") did not answer within \(Int(Self.timeout)) s")
    }
    return try result.withLock { $0 }.get()
  }
}

/// Redirects are not followed: a token endpoint that redirects is misconfigured
/// (and following one could send the client secret elsewhere).
final class NoRedirects: NSObject, URLSessionTaskDelegate, Sendable {
  func urlSession(
    _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse, newRequest request: URLRequest,
    completionHandler: @escaping @Sendable (URLRequest?) -> Void
  ) {
    completionHandler(nil)
  }
}
