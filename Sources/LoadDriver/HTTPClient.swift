import Foundation
import JSON
import Sockets

#if canImport(Glibc)
  import Glibc
#endif

/// A keep-alive HTTP/1.1 client (Unix socket or TCP) for SCIM, the web
/// paths and the load's IdPs, as the benchmarks and the load driver use it.
/// One thread at a time.
public final class HTTPClient: @unchecked Sendable {
  var client: LineClient
  /// The Authorization header's value (SCIM's bearer token), if any.
  let auth: String?
  let connect: () throws -> LineClient
  /// The server closes after each reply (scim2-server speaks HTTP/1.0): reconnect per request.
  var mustReconnect = false

  public init(unix: String, token: String?) throws {
    connect = { try LineClient(unixPath: unix) }
    client = try connect()
    auth = token.map { "Bearer \($0)" }
  }

  public init(port: UInt16, token: String?) throws {
    connect = { try LineClient(host: "127.0.0.1", port: port) }
    client = try connect()
    auth = token.map { "Bearer \($0)" }
  }

  /// The last response's Location header.
  public var location: String?

  public func request(_ method: String, _ target: String, body: [UInt8] = [], contentType: String = "application/scim+json") throws -> (Int, [UInt8]) {
    if mustReconnect { client = try connect() }
    var head = "\(method) \(target) HTTP/1.1\r\nHost: bench\r\n"
    if let auth { head += "Authorization: \(auth)\r\n" }
    if !body.isEmpty { head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n" }
    location = nil
    head += "\r\n"
    try client.send(Array(head.utf8) + body)
    guard let status = try client.readLine() else { throw SocketError("the server closed the connection") }
    let statusText = String(decoding: status, as: UTF8.self)
    let code = Int(statusText.split(separator: " ")[1]) ?? 0
    mustReconnect = statusText.hasPrefix("HTTP/1.0")
    var length: Int?
    while let line = try client.readLine() {
      let l = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
      if l.isEmpty { break }
      if l.lowercased().hasPrefix("content-length:") { length = Int(l.dropFirst(15).trimmingCharacters(in: .whitespaces)) }
      if l.lowercased() == "connection: close" { mustReconnect = true }
      if l.lowercased().hasPrefix("location:") { location = l.dropFirst(9).trimmingCharacters(in: .whitespaces) }
    }
    var out: [UInt8] = []
    if code == 204 || code == 304 {
      return (code, out)
    } else if let length {
      while out.count < length { out += try client.readSome(max: length - out.count) }
    } else {
      while true {
        let chunk = try client.readSome()
        if chunk.isEmpty { break }
        out += chunk
      }
      mustReconnect = true
    }
    return (code, out)
  }
}
