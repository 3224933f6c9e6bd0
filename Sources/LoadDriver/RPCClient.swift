import Foundation
import JSON
import Sockets

/// What a call came to, as the load driver sorts it.
public enum CallOutcome: Sendable {
  case ok(JSONValue)
  /// A definite answer that is an error (the request was wrong or refused).
  case refused(code: Int64, reason: String, message: String)
  /// No definite answer: the process or the database was away (connection
  /// refused or dropped, a timeout, `database_unavailable`, 503). A write
  /// may or may not have happened.
  case unavailable(String)
}

/// A JSON-RPC client on one of several sockets (copies of a process, as a
/// load balancer would see them): on a failed connection it moves to the next.
public final class RPCClient: @unchecked Sendable {
  let paths: [String]
  var index: Int
  var client: LineClient?
  var nextId: Int64 = 0
  let timeoutSeconds: Double

  public init(paths: [String], start: Int = 0, timeoutSeconds: Double = 15) {
    self.paths = paths
    index = start % max(1, paths.count)
    self.timeoutSeconds = timeoutSeconds
  }

  /// Drops the connection and uses the next copy on the next call.
  public func failOver() {
    client = nil
    index = (index + 1) % paths.count
  }

  public func call(_ method: String, _ params: JSONValue = [:]) -> CallOutcome {
    nextId += 1
    let line = JSONWriter.bytes(["jsonrpc": "2.0", "id": .int(nextId), "method": .string(method), "params": params]) + [0x0A]
    do {
      if client == nil { client = try LineClient(unixPath: paths[index], timeoutSeconds: timeoutSeconds) }
      try client!.send(line)
      guard let reply = try client!.readLine() else {
        failOver()
        return .unavailable("the connection closed")
      }
      let v = try JSONParser.parse(reply, maxDepth: 512)
      if let e = v["error"] {
        let code = e["code"]?.intValue ?? 0
        let reason = e["data"]?["reason"]?.stringValue ?? ""
        if code == -32004 || reason == "too_many_connections" || reason == "shutting_down" {
          failOver()
          return .unavailable(reason)
        }
        return .refused(code: code, reason: reason, message: e["message"]?.stringValue ?? "")
      }
      return .ok(v["result"] ?? .null)
    } catch {
      failOver()
      return .unavailable("\(error)")
    }
  }
}

/// HTTP on several listeners (copies: SCIM, the web paths), failing over
/// like `RPCClient`. A 503 or a failed connection is "unavailable".
public final class HTTPPool: @unchecked Sendable {
  let paths: [String]
  let token: String?
  var index: Int
  var client: HTTPClient?

  /// `token`: SCIM's bearer token; nil for the browser-facing paths.
  public init(paths: [String], token: String?, start: Int = 0) {
    self.paths = paths
    self.token = token
    index = start % max(1, paths.count)
  }

  public func failOver() {
    client = nil
    index = (index + 1) % paths.count
  }

  public enum Outcome {
    case answered(Int, JSONValue?)
    case unavailable(String)
  }

  public enum RawOutcome {
    case answered(status: Int, body: [UInt8], location: String?)
    case unavailable(String)
  }

  public func send(_ method: String, _ target: String, body: [UInt8] = [], contentType: String = "application/scim+json") -> RawOutcome {
    do {
      if client == nil { client = try HTTPClient(unix: paths[index], token: token) }
      let (status, bytes) = try client!.request(method, target, body: body, contentType: contentType)
      if status == 503 || status == 0 {
        failOver()
        return .unavailable("HTTP \(status)")
      }
      return .answered(status: status, body: bytes, location: client!.location)
    } catch {
      failOver()
      return .unavailable("\(error)")
    }
  }

  /// A SCIM request: JSON in, JSON out.
  public func request(_ method: String, _ target: String, _ body: JSONValue? = nil) -> Outcome {
    switch send(method, target, body: body.map { JSONWriter.bytes($0) } ?? []) {
    case .unavailable(let why): return .unavailable(why)
    case .answered(let status, let bytes, _): return .answered(status, bytes.isEmpty ? nil : try? JSONParser.parse(bytes, maxDepth: 512))
    }
  }
}
