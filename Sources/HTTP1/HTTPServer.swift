import Foundation
import Sockets

#if canImport(Glibc)
  import Glibc
#endif

public struct HTTPRequest: Sendable {
  public var method: String
  /// The request target as sent (path and query).
  public var target: String
  /// The percent-decoded path.
  public var path: String
  /// The raw query string (without '?'), nil if none.
  public var rawQuery: String?
  public var version: String
  public var headers: [(name: String, value: String)]
  public var body: [UInt8]

  public init(method: String, target: String, version: String = "HTTP/1.1", headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
    self.method = method
    self.target = target
    self.version = version
    self.headers = headers
    self.body = body
    let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
    path = HTTPRequest.percentDecode(String(parts[0]), plusIsSpace: false) ?? String(parts[0])
    rawQuery = parts.count > 1 ? String(parts[1]) : nil
  }

  public func header(_ name: String) -> String? {
    headers.first { $0.name.lowercased() == name.lowercased() }?.value
  }

  /// Query parameters, decoded (`+` is a space), in order.
  public var query: [(String, String)] { HTTPRequest.parseQuery(rawQuery) }

  public static func parseQuery(_ raw: String?) -> [(String, String)] {
    guard let raw, !raw.isEmpty else { return [] }
    return raw.split(separator: "&").map { pair in
      let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      let k = percentDecode(String(kv[0]), plusIsSpace: true) ?? String(kv[0])
      let v = kv.count > 1 ? (percentDecode(String(kv[1]), plusIsSpace: true) ?? String(kv[1])) : ""
      return (k, v)
    }
  }

  public static func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case 0x30...0x39: return c - 0x30
    case 0x41...0x46: return c - 0x41 + 10
    case 0x61...0x66: return c - 0x61 + 10
    default: return nil
    }
  }

  public static func percentDecode(_ s: String, plusIsSpace: Bool) -> String? {
    var out: [UInt8] = []
    let bytes = Array(s.utf8)
    var i = 0
    while i < bytes.count {
      let b = bytes[i]
      if b == UInt8(ascii: "%") {
        guard i + 2 < bytes.count, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) else { return nil }
        out.append(hi << 4 | lo)
        i += 3
      } else if b == UInt8(ascii: "+") && plusIsSpace {
        out.append(0x20)
        i += 1
      } else {
        out.append(b)
        i += 1
      }
    }
    return String(validating: out, as: UTF8.self)
  }
}

public struct HTTPResponse: Sendable {
  public var status: Int
  public var headers: [(name: String, value: String)]
  public var body: [UInt8]

  public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
    self.status = status
    self.headers = headers
    self.body = body
  }

  static let reasons: [Int: String] = [
    100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 411: "Length Required", 412: "Precondition Failed",
    408: "Request Timeout", 413: "Payload Too Large", 415: "Unsupported Media Type", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
  ]

  func serialize(keepAlive: Bool, headOnly: Bool) -> [UInt8] {
    var s = "HTTP/1.1 \(status) \(Self.reasons[status] ?? "Status")\r\n"
    for h in headers where h.name.lowercased() != "content-length" && h.name.lowercased() != "connection" {
      s += "\(h.name): \(h.value)\r\n"
    }
    s += "Date: \(httpDate())\r\n"
    if status != 204 && status != 304 { s += "Content-Length: \(body.count)\r\n" }
    s += keepAlive ? "" : "Connection: close\r\n"
    s += "\r\n"
    var out = Array(s.utf8)
    if !headOnly && status != 204 && status != 304 { out += body }
    return out
  }
}

/// IMF-fixdate, formatted by hand.
func httpDate() -> String {
  var t = time(nil)
  var tmv = tm()
  gmtime_r(&t, &tmv)
  let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
  let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
  func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
  return "\(days[Int(tmv.tm_wday)]), \(two(tmv.tm_mday)) \(months[Int(tmv.tm_mon)]) \(tmv.tm_year + 1900) \(two(tmv.tm_hour)):\(two(tmv.tm_min)):\(two(tmv.tm_sec)) GMT"
}

/// A small HTTP/1.1 server: Content-Length and chunked bodies, keep-alive,
/// `Expect: 100-continue`, limits, one thread per connection (handlers may block).
public final class HTTPServer: Sendable {
  public struct Limits: Sendable {
    public var maxHeaderBytes = 16 * 1024
    public var maxBodyBytes = 1 << 20
    /// A keep-alive connection may wait this long for its next request.
    public var idleTimeoutSeconds: Double = 60
    /// The request line and headers must arrive within this of the first byte (else 408).
    public var headerTimeoutSeconds: Double = 10
    /// The whole request, body included, must arrive within this of the first byte (else 408).
    public var requestTimeoutSeconds: Double = 30
    public init() {}

    /// Headers within `seconds`, the whole request within three times that.
    public static func timed(_ seconds: Double) -> Limits {
      var l = Limits()
      l.headerTimeoutSeconds = seconds
      l.requestTimeoutSeconds = seconds * 3
      return l
    }
  }

  public let server: StreamServer
  public typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse
  /// Builds the response for a protocol error (400, 413, 431, …) so it can be in the application's format.
  public typealias ErrorResponder = @Sendable (_ status: Int, _ message: String) -> HTTPResponse

  public init(listener: Listener, options: StreamServer.Options = .init(), limits: Limits = .init(), onError: @escaping ErrorResponder, handler: @escaping Handler) {
    let busy = onError(503, "Too many connections; try again shortly.").serialize(keepAlive: false, headOnly: false)
    server = StreamServer(
      listener: listener, options: options,
      refuse: { fd in busy.withUnsafeBytes { _ = SocketCalls.sendAll(fd, $0) } },
      handler: { conn in
        var c = HTTPConnection(conn: conn, limits: limits, handler: handler, onError: onError)
        c.run()
      })
  }

  public func start() { server.start() }
  public func stop(grace: Duration = .seconds(10)) { server.stop(grace: grace) }
}

struct HTTPConnection {
  let conn: Connection
  let limits: HTTPServer.Limits
  let handler: HTTPServer.Handler
  let onError: HTTPServer.ErrorResponder
  var buffer: [UInt8] = []
  var eof = false
  /// A request has begun arriving (its deadline runs) / its head is in.
  var inRequest = false
  var headDone = false

  init(conn: Connection, limits: HTTPServer.Limits, handler: @escaping HTTPServer.Handler, onError: @escaping HTTPServer.ErrorResponder) {
    self.conn = conn
    self.limits = limits
    self.handler = handler
    self.onError = onError
  }

  /// A configured limit as people read it (16 KiB, 1 MiB).
  static func size(_ bytes: Int) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
    if bytes >= 1 << 10 && bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
    return "\(bytes) bytes"
  }

  struct Failure: Error {
    let status: Int
    let message: String

    static func timedOut(_ seconds: Double, headDone: Bool) -> Failure {
      Failure(status: 408, message: "The request \(headDone ? "body" : "headers") did not arrive within \(Int(seconds)) seconds.")
    }
  }

  /// Reads more. Between requests the idle timeout applies; once a request
  /// has begun, what is left of its deadline (header or whole request) does,
  /// and running out of it is a 408, so a byte-at-a-time client cannot keep
  /// a connection.
  mutating func fill() throws -> Bool {
    var chunk = [UInt8](repeating: 0, count: 65536)
    var deadline: Double? = nil
    if inRequest || !buffer.isEmpty {
      let elapsed = conn.setPartial(true)
      let limit = headDone ? limits.requestTimeoutSeconds : limits.headerTimeoutSeconds
      let left = limit - elapsed
      if left <= 0 { throw Failure.timedOut(limit, headDone: headDone) }
      // At least 1 ms: a timeout that rounds to zero means "wait for ever".
      conn.setReceiveTimeout(seconds: max(0.001, min(left, limits.idleTimeoutSeconds)))
      deadline = limit
    }
    let n = chunk.withUnsafeMutableBytes { conn.read(into: $0) }
    if n < 0, let deadline, errno == EAGAIN || errno == EWOULDBLOCK {
      throw Failure.timedOut(deadline, headDone: headDone)
    }
    if n <= 0 {
      eof = true
      return false
    }
    buffer += chunk[0..<n]
    return true
  }

  mutating func run() {
    conn.setReceiveTimeout(seconds: limits.idleTimeoutSeconds)
    while true {
      do {
        guard let head = try readHead() else { return }
        headDone = true
        var request = try parseHead(head)
        let keepAlive = wantsKeepAlive(request)
        request.body = try readBody(request)
        // The request is in: from here the connection is working (never
        // evicted, and a graceful stop waits for its reply).
        inRequest = false
        headDone = false
        conn.setPartial(false)
        conn.setReceiveTimeout(seconds: limits.idleTimeoutSeconds)
        conn.setBusy(true)
        defer { conn.setBusy(false) }
        let response = handler(request)
        let bytes = response.serialize(keepAlive: keepAlive, headOnly: request.method == "HEAD")
        if !conn.write(bytes) || !keepAlive { return }
      } catch let f as Failure {
        conn.setBusy(true)
        _ = conn.write(onError(f.status, f.message).serialize(keepAlive: false, headOnly: false))
        lingeringClose()
        return
      } catch {
        return
      }
    }
  }

  /// After an error reply the client may still be sending (a body over the
  /// limit): read and drop a little of it so closing does not reset the
  /// connection before the client has read our reply.
  func lingeringClose() {
    _ = shutdown(conn.fd, Int32(SHUT_WR))
    conn.setReceiveTimeout(seconds: 1)
    var chunk = [UInt8](repeating: 0, count: 65536)
    var drained = 0
    while drained < 4 << 20 {
      let n = chunk.withUnsafeMutableBytes { conn.read(into: $0) }
      if n <= 0 { return }
      drained += n
    }
  }

  func wantsKeepAlive(_ r: HTTPRequest) -> Bool {
    let c = r.header("Connection")?.lowercased() ?? ""
    if r.version == "HTTP/1.0" { return c.contains("keep-alive") }
    return !c.contains("close")
  }

  /// Bytes of the request line and headers (up to the blank line); nil at a clean end of input.
  mutating func readHead() throws -> [UInt8]? {
    var scanFrom = 0
    while true {
      if let end = findHeadEnd(from: scanFrom) {
        if end.start > limits.maxHeaderBytes { throw Failure(status: 431, message: "The request headers are larger than \(HTTPConnection.size(limits.maxHeaderBytes)).") }
        let head = Array(buffer[..<end.start])
        buffer.removeFirst(end.afterEnd)
        return head
      }
      scanFrom = max(0, buffer.count - 3)
      if buffer.count > limits.maxHeaderBytes { throw Failure(status: 431, message: "The request headers are larger than \(HTTPConnection.size(limits.maxHeaderBytes)).") }
      // Leading blank lines between requests are allowed (RFC 9112 §2.2).
      while buffer.first == 0x0D || buffer.first == 0x0A { buffer.removeFirst() }
      if !buffer.isEmpty { inRequest = true }
      if try !fill() {
        if buffer.isEmpty { return nil }
        throw Failure(status: 400, message: "The connection ended in the middle of the request headers.")
      }
    }
  }

  func findHeadEnd(from: Int) -> (start: Int, afterEnd: Int)? {
    var i = from
    while i < buffer.count {
      if buffer[i] == 0x0A {
        if i + 1 < buffer.count, buffer[i + 1] == 0x0A { return (i, i + 2) }
        if i + 2 < buffer.count, buffer[i + 1] == 0x0D, buffer[i + 2] == 0x0A { return (i, i + 3) }
      }
      i += 1
    }
    return nil
  }

  func parseHead(_ head: [UInt8]) throws -> HTTPRequest {
    // Split on bytes: in Swift strings "\r\n" is one Character.
    var lines: [Substring] = []
    for raw in head.split(separator: 0x0A, omittingEmptySubsequences: false) {
      let bytes = raw.last == 0x0D ? raw.dropLast() : raw
      guard let line = String(validating: bytes, as: UTF8.self) else {
        throw Failure(status: 400, message: "The request headers are not valid UTF-8.")
      }
      lines.append(Substring(line))
    }
    guard !lines.isEmpty else { throw Failure(status: 400, message: "Empty request.") }
    let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: false)
    guard requestLine.count == 3, !requestLine[0].isEmpty, requestLine[0].allSatisfy({ $0.isLetter && $0.isUppercase }),
      requestLine[1].hasPrefix("/")
    else { throw Failure(status: 400, message: "Malformed request line.") }
    let version = String(requestLine[2])
    guard version == "HTTP/1.1" || version == "HTTP/1.0" else { throw Failure(status: 505, message: "Only HTTP/1.1 and HTTP/1.0 are supported.") }
    var headers: [(name: String, value: String)] = []
    for line in lines where !line.isEmpty {
      guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else { throw Failure(status: 400, message: "Malformed header line.") }
      let name = line[..<colon]
      guard name.allSatisfy({ $0.isLetter || $0.isNumber || "-_!#$%&'*+.^`|~".contains($0) }) else {
        throw Failure(status: 400, message: "Malformed header name.")
      }
      var value = line[line.index(after: colon)...]
      while let f = value.first, f == " " || f == "\t" { value = value.dropFirst() }
      while let l = value.last, l == " " || l == "\t" { value = value.dropLast() }
      headers.append((String(name), String(value)))
    }
    let request = HTTPRequest(method: String(requestLine[0]), target: String(requestLine[1]), version: version, headers: headers)
    guard HTTPRequest.percentDecode(String(requestLine[1].split(separator: "?", maxSplits: 1)[0]), plusIsSpace: false) != nil else {
      throw Failure(status: 400, message: "The request path has an invalid percent-encoding.")
    }
    return request
  }

  mutating func readBody(_ r: HTTPRequest) throws -> [UInt8] {
    let te = r.header("Transfer-Encoding")?.lowercased()
    let cl = r.header("Content-Length")
    if te != nil && cl != nil { throw Failure(status: 400, message: "Both Transfer-Encoding and Content-Length were sent.") }
    if let te {
      guard te.split(separator: ",").last?.trimmingCharacters(in: .whitespaces) == "chunked" else {
        throw Failure(status: 501, message: "Transfer-Encoding '\(te)' is not supported.")
      }
      try continueIfExpected(r)
      return try readChunked()
    }
    guard let cl else { return [] }
    guard !cl.isEmpty, cl.allSatisfy(\.isNumber), let length = Int(cl) else { throw Failure(status: 400, message: "Invalid Content-Length.") }
    if length > limits.maxBodyBytes { throw Failure(status: 413, message: "The request body is larger than \(HTTPConnection.size(limits.maxBodyBytes)).") }
    if length > 0 { try continueIfExpected(r) }
    while buffer.count < length {
      if try !fill() { throw Failure(status: 400, message: "The connection ended before the whole body arrived.") }
    }
    let body = Array(buffer[..<length])
    buffer.removeFirst(length)
    return body
  }

  func continueIfExpected(_ r: HTTPRequest) throws {
    if r.header("Expect")?.lowercased() == "100-continue" && buffer.isEmpty {
      _ = conn.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
    }
  }

  mutating func readLine() throws -> String {
    var scanFrom = 0
    while true {
      if let nl = buffer[scanFrom...].firstIndex(of: 0x0A) {
        var line = Array(buffer[..<nl])
        buffer.removeFirst(nl + 1)
        if line.last == 0x0D { line.removeLast() }
        return String(decoding: line, as: UTF8.self)
      }
      scanFrom = buffer.count
      if buffer.count > 4096 { throw Failure(status: 400, message: "Malformed chunk header.") }
      if try !fill() { throw Failure(status: 400, message: "The connection ended inside a chunked body.") }
    }
  }

  mutating func readChunked() throws -> [UInt8] {
    var body: [UInt8] = []
    while true {
      let sizeLine = try readLine()
      let hex = sizeLine.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
      guard !hex.isEmpty, let size = Int(hex, radix: 16), size >= 0 else { throw Failure(status: 400, message: "Malformed chunk size.") }
      if size == 0 {
        // Trailers until the blank line.
        while try !readLine().isEmpty {}
        return body
      }
      // Compared without adding: a chunk size near Int.max must not overflow.
      if size > limits.maxBodyBytes - body.count { throw Failure(status: 413, message: "The request body is larger than \(HTTPConnection.size(limits.maxBodyBytes)).") }
      while buffer.count < size + 2 {
        if try !fill() { throw Failure(status: 400, message: "The connection ended inside a chunk.") }
      }
      body += buffer[..<size]
      guard buffer[size] == 0x0D || buffer[size] == 0x0A else { throw Failure(status: 400, message: "Malformed chunk.") }
      buffer.removeFirst(buffer[size] == 0x0D ? size + 2 : size + 1)
    }
  }
}
