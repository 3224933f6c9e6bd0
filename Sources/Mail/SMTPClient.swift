import Foundation
import Sockets

#if canImport(Glibc)
  import Glibc
#endif

/// What an SMTP exchange ended with.
public enum SMTPOutcome: Sendable, Equatable {
  case accepted
  /// 4xx, a timeout or a lost connection: try again later.
  case temporary(String)
  /// 5xx: the relay refused this message for good.
  case permanent(String)
}

struct SMTPReply {
  let code: Int
  let text: String
}

/// A small SMTP client (RFC 5321) for a local relay that does TLS and onward
/// delivery: EHLO (HELO if refused), MAIL FROM, one RCPT TO per recipient,
/// DATA with dot-stuffing, RSET between messages, QUIT. Blocking, with
/// connect and read timeouts; one connection is reused for many messages.
public final class SMTPClient {
  public let host: String
  public let port: UInt16
  public let heloName: String
  public let timeoutSeconds: Double
  private var client: LineClient?
  private var lastUsed = Date.distantPast

  public init(host: String, port: UInt16, heloName: String, timeoutSeconds: Double = 15) {
    self.host = host
    self.port = port
    self.heloName = heloName
    self.timeoutSeconds = timeoutSeconds
  }

  deinit { close() }

  public func close() {
    if let c = client { _ = try? c.send(Array("QUIT\r\n".utf8)) }
    client = nil
  }

  struct Failure: Error {
    let outcome: SMTPOutcome
  }

  func read() throws -> SMTPReply {
    guard let c = client else { throw Failure(outcome: .temporary("not connected")) }
    var text: [String] = []
    while true {
      let line: [UInt8]?
      do { line = try c.readLine() } catch { throw Failure(outcome: .temporary("the relay did not answer in time")) }
      guard var l = line.map({ String(decoding: $0, as: UTF8.self) }) else {
        throw Failure(outcome: .temporary("the relay closed the connection"))
      }
      if l.hasSuffix("\r") { l.removeLast() }
      guard l.count >= 3, let code = Int(l.prefix(3)) else { throw Failure(outcome: .temporary("malformed reply from the relay: \(l.prefix(100))")) }
      text.append(String(l.dropFirst(4)))
      guard text.count <= 100 else { throw Failure(outcome: .temporary("the relay sent a reply of more than 100 lines")) }
      // Multi-line replies: "250-…" continues, "250 …" ends.
      if l.count == 3 || l[l.index(l.startIndex, offsetBy: 3)] == " " { return SMTPReply(code: code, text: text.joined(separator: " ")) }
    }
  }

  func command(_ line: String) throws -> SMTPReply {
    guard let c = client else { throw Failure(outcome: .temporary("not connected")) }
    do { try c.send(Array((line + "\r\n").utf8)) } catch { throw Failure(outcome: .temporary("the relay connection broke")) }
    return try read()
  }

  func expect(_ reply: SMTPReply, _ ok: ClosedRange<Int>, during step: String) throws {
    guard ok.contains(reply.code) else {
      let message = "\(step): \(reply.code) \(reply.text)"
      throw Failure(outcome: reply.code >= 500 ? .permanent(message) : .temporary(message))
    }
  }

  func connect() throws {
    do {
      client = try LineClient(host: host, port: port, timeoutSeconds: timeoutSeconds)
    } catch {
      throw Failure(outcome: .temporary("cannot connect to the relay at \(host):\(port): \(error)"))
    }
    try expect(try read(), 220...220, during: "greeting")
    let ehlo = try command("EHLO \(heloName)")
    if ehlo.code != 250 {
      try expect(try command("HELO \(heloName)"), 250...250, during: "HELO")
    }
  }

  /// Sends one message; reconnects when needed. Never throws: the outcome says what happened.
  public func send(from: String, to recipients: [String], message: [UInt8]) -> SMTPOutcome {
    do {
      for r in recipients + [from] where r.contains("\r") || r.contains("\n") || r.contains(">") || r.contains("<") {
        return .permanent("invalid address '\(r.prefix(100))'")
      }
      for r in recipients where !r.unicodeScalars.allSatisfy(\.isASCII) {
        return .permanent("the address \(r) needs SMTPUTF8, which this relay path does not offer")
      }
      if client == nil || Date().timeIntervalSince(lastUsed) > 30 {
        close()
        try connect()
      } else if try command("RSET").code != 250 {
        close()
        try connect()
      }
      try expect(try command("MAIL FROM:<\(from)>"), 250...250, during: "MAIL FROM")
      for r in recipients {
        try expect(try command("RCPT TO:<\(r)>"), 250...251, during: "RCPT TO <\(r)>")
      }
      try expect(try command("DATA"), 354...354, during: "DATA")
      guard let c = client else { throw Failure(outcome: .temporary("not connected")) }
      do { try c.send(Self.dotStuffed(message)) } catch { throw Failure(outcome: .temporary("the relay connection broke during DATA")) }
      try expect(try read(), 250...250, during: "end of DATA")
      lastUsed = Date()
      return .accepted
    } catch let f as Failure {
      // After any failure the session state is unknown: start afresh next time.
      client = nil
      return f.outcome
    } catch {
      client = nil
      return .temporary(String(describing: error))
    }
  }

  /// CRLF line ends, a "." doubled at the start of a line, and the final ".".
  static func dotStuffed(_ message: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(message.count + 64)
    var atLineStart = true
    var i = 0
    while i < message.count {
      let b = message[i]
      if atLineStart && b == 0x2E { out.append(0x2E) }
      if b == 0x0A && (out.last != 0x0D) { out.append(0x0D) }
      out.append(b)
      atLineStart = b == 0x0A
      i += 1
    }
    if out.count < 2 || out[out.count - 2] != 0x0D || out[out.count - 1] != 0x0A { out += [0x0D, 0x0A] }
    out += Array(".\r\n".utf8)
    return out
  }
}
