import Foundation
import JSON
import Sockets

/// A minimal HTTP/1.1 client over a Unix socket, for driving scim.sock the
/// way nginx or an IdP would (keep-alive, raw bytes when a test needs them).
public final class TestHTTP {
  public struct Response {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    public func header(_ n: String) -> String? { headers.first { $0.0.lowercased() == n.lowercased() }?.1 }
    public var json: JSONValue? { body.isEmpty ? nil : try? JSONParser.parse(body, maxDepth: 200) }
  }

  public let client: LineClient
  public var token: String?

  public init(socket: String, token: String? = nil) throws {
    client = try LineClient(unixPath: socket, timeoutSeconds: 30)
    self.token = token
  }

  public init(host: String, port: UInt16, token: String? = nil) throws {
    client = try LineClient(host: host, port: port, timeoutSeconds: 30)
    self.token = token
  }

  public func request(
    _ method: String, _ target: String, json: JSONValue? = nil, headers: [(String, String)] = [], contentType: String = "application/scim+json"
  ) throws -> Response {
    var h = headers
    if let token, !h.contains(where: { $0.0.lowercased() == "authorization" }) { h.append(("Authorization", "Bearer \(token)")) }
    var body: [UInt8] = []
    if let json {
      body = JSONWriter.bytes(json)
      h.append(("Content-Type", contentType))
    }
    return try raw(method, target, headers: h, body: body)
  }

  public func raw(_ method: String, _ target: String, headers: [(String, String)], body: [UInt8]) throws -> Response {
    var head = "\(method) \(target) HTTP/1.1\r\nHost: roster\r\n"
    for (k, v) in headers { head += "\(k): \(v)\r\n" }
    if !body.isEmpty || method == "POST" || method == "PUT" || method == "PATCH" { head += "Content-Length: \(body.count)\r\n" }
    head += "\r\n"
    try client.send(Array(head.utf8) + body)
    return try readResponse()
  }

  /// Sends bytes as they are and reads one response.
  public func send(_ bytes: [UInt8]) throws -> Response {
    try client.send(bytes)
    return try readResponse()
  }

  public func readResponse() throws -> Response {
    guard let statusLine = try client.readLine() else { throw TestError("connection closed") }
    let parts = String(decoding: statusLine, as: UTF8.self).split(separator: " ")
    guard parts.count >= 2, let status = Int(parts[1]) else { throw TestError("bad status line") }
    var headers: [(String, String)] = []
    while let line = try client.readLine() {
      var l = String(decoding: line, as: UTF8.self)
      if l.hasSuffix("\r") { l.removeLast() }
      if l.isEmpty { break }
      if let c = l.firstIndex(of: ":") { headers.append((String(l[..<c]), l[l.index(after: c)...].trimmingCharacters(in: .whitespaces))) }
    }
    if status == 100 { return try readResponse() }
    var body: [UInt8] = []
    if headers.contains(where: { $0.0.lowercased() == "transfer-encoding" && $0.1.lowercased().contains("chunked") }) {
      // Chunked (Prometheus and other Go servers for larger answers).
      while let sizeLine = try client.readLine() {
        let text = String(decoding: sizeLine, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let size = Int(text.split(separator: ";").first ?? "", radix: 16) else { throw TestError("bad chunk size '\(text)'") }
        if size == 0 {
          while let trailer = try client.readLine(), !String(decoding: trailer, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {}
          break
        }
        var chunk: [UInt8] = []
        while chunk.count < size { chunk += try client.readSome(max: size - chunk.count) }
        body += chunk
        _ = try client.readLine()  // the CRLF after the chunk
      }
      return Response(status: status, headers: headers, body: body)
    }
    let length = Int(headers.first { $0.0.lowercased() == "content-length" }?.1 ?? "0") ?? 0
    while body.count < length { body += try client.readSome(max: length - body.count) }
    return Response(status: status, headers: headers, body: body)
  }
}
