import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// The outcome of a TXT lookup (D3).
public enum TXTLookup: Sendable, Equatable {
  /// The TXT records found; each record's strings joined (split at 255 bytes by the publisher).
  case records([String])
  /// NXDOMAIN or no TXT record: "not yet".
  case none
  /// Timeout, SERVFAIL, refused, malformed answer: try again later.
  case temporaryFailure(String)
}

/// A small stub resolver for TXT records: UDP first, TCP when the answer is
/// truncated, a timeout per attempt. Blocking; run it on a thread you own.
public struct DNSClient: Sendable {
  public let host: String
  public let port: UInt16
  public let timeoutSeconds: Double
  public let attempts: Int

  public init(host: String, port: UInt16 = 53, timeoutSeconds: Double = 2, attempts: Int = 2) {
    self.host = host
    self.port = port
    self.timeoutSeconds = timeoutSeconds
    self.attempts = attempts
  }

  public func lookupTXT(_ name: String) -> TXTLookup {
    guard let query = DNSMessage.query(name: name, type: 16, id: UInt16.random(in: 0...UInt16.max)) else {
      return .temporaryFailure("invalid name")
    }
    var last = TXTLookup.temporaryFailure("no answer")
    for _ in 0..<attempts {
      switch exchangeUDP(query.bytes) {
      case .success(let reply):
        guard let parsed = DNSMessage.parse(reply, expectID: query.id) else {
          last = .temporaryFailure("malformed answer")
          continue
        }
        if parsed.truncated {
          switch exchangeTCP(query.bytes) {
          case .success(let full):
            guard let p = DNSMessage.parse(full, expectID: query.id) else { return .temporaryFailure("malformed TCP answer") }
            return p.outcome
          case .failure(let e):
            last = .temporaryFailure("TCP fallback failed: \(e.message)")
            continue
          }
        }
        return parsed.outcome
      case .failure(let e):
        last = .temporaryFailure(e.message)
      }
    }
    return last
  }

  struct IOFailure: Error { let message: String }

  /// A socket of `type` connected to the resolver, with the per-attempt timeout on reads and writes.
  private func connected(_ type: __socket_type) -> Result<Int32, IOFailure> {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { return .failure(IOFailure(message: "bad resolver address \(host)")) }
    let fd = socket(AF_INET, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return .failure(IOFailure(message: "socket failed")) }
    var tv = timeval(tv_sec: Int(timeoutSeconds), tv_usec: Int((timeoutSeconds - Double(Int(timeoutSeconds))) * 1e6))
    _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let rc = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else {
      close(fd)
      return .failure(IOFailure(message: type == SOCK_STREAM ? "TCP connect failed" : "connect failed"))
    }
    return .success(fd)
  }

  func exchangeUDP(_ query: [UInt8]) -> Result<[UInt8], IOFailure> {
    let fd: Int32
    switch connected(SOCK_DGRAM) {
    case .success(let s): fd = s
    case .failure(let e): return .failure(e)
    }
    defer { close(fd) }
    guard send(fd, query, query.count, 0) == query.count else { return .failure(IOFailure(message: "send failed")) }
    var buf = [UInt8](repeating: 0, count: 4096)
    let n = recv(fd, &buf, buf.count, 0)
    if n < 0 {
      return .failure(IOFailure(message: errno == EAGAIN || errno == EWOULDBLOCK ? "timeout" : String(cString: strerror(errno))))
    }
    return .success(Array(buf[0..<n]))
  }

  func exchangeTCP(_ query: [UInt8]) -> Result<[UInt8], IOFailure> {
    let fd: Int32
    switch connected(SOCK_STREAM) {
    case .success(let s): fd = s
    case .failure(let e): return .failure(e)
    }
    defer { close(fd) }
    let framed = [UInt8(query.count >> 8), UInt8(query.count & 0xFF)] + query
    guard send(fd, framed, framed.count, Int32(MSG_NOSIGNAL)) == framed.count else { return .failure(IOFailure(message: "send failed")) }
    func readExactly(_ count: Int) -> [UInt8]? {
      var out = [UInt8](repeating: 0, count: count)
      var got = 0
      while got < count {
        let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
        if n <= 0 { return nil }
        got += n
      }
      return out
    }
    guard let lenBytes = readExactly(2) else { return .failure(IOFailure(message: "timeout")) }
    let len = Int(lenBytes[0]) << 8 | Int(lenBytes[1])
    guard let body = readExactly(len) else { return .failure(IOFailure(message: "timeout")) }
    return .success(body)
  }
}

/// DNS wire format, just enough for TXT queries (RFC 1035).
enum DNSMessage {
  struct Query {
    let id: UInt16
    let bytes: [UInt8]
  }

  struct Parsed {
    let truncated: Bool
    let outcome: TXTLookup
  }

  static func query(name: String, type: UInt16, id: UInt16) -> Query? {
    var b: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
    for label in name.split(separator: ".") {
      let bytes = Array(label.utf8)
      guard !bytes.isEmpty, bytes.count <= 63 else { return nil }
      b.append(UInt8(bytes.count))
      b += bytes
    }
    b.append(0)
    b += [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
    return Query(id: id, bytes: b)
  }

  static func parse(_ m: [UInt8], expectID: UInt16) -> Parsed? {
    guard m.count >= 12 else { return nil }
    let id = UInt16(m[0]) << 8 | UInt16(m[1])
    guard id == expectID, m[2] & 0x80 != 0 else { return nil }
    let truncated = m[2] & 0x02 != 0
    let rcode = m[3] & 0x0F
    let qd = Int(m[4]) << 8 | Int(m[5])
    let an = Int(m[6]) << 8 | Int(m[7])
    if truncated { return Parsed(truncated: true, outcome: .none) }
    switch rcode {
    case 0: break
    case 3: return Parsed(truncated: false, outcome: .none)
    case 2: return Parsed(truncated: false, outcome: .temporaryFailure("SERVFAIL"))
    default: return Parsed(truncated: false, outcome: .temporaryFailure("rcode \(rcode)"))
    }
    var i = 12
    for _ in 0..<qd {
      guard let next = skipName(m, i), next + 4 <= m.count else { return nil }
      i = next + 4
    }
    var records: [String] = []
    for _ in 0..<an {
      guard let next = skipName(m, i), next + 10 <= m.count else { return nil }
      i = next
      let type = Int(m[i]) << 8 | Int(m[i + 1])
      let rdlen = Int(m[i + 8]) << 8 | Int(m[i + 9])
      i += 10
      guard i + rdlen <= m.count else { return nil }
      if type == 16 {
        var j = i
        var joined: [UInt8] = []
        while j < i + rdlen {
          let l = Int(m[j])
          guard j + 1 + l <= i + rdlen else { return nil }
          joined += m[(j + 1)..<(j + 1 + l)]
          j += 1 + l
        }
        records.append(String(decoding: joined, as: UTF8.self))
      }
      i += rdlen
    }
    return Parsed(truncated: false, outcome: records.isEmpty ? .none : .records(records))
  }

  /// Index after a (possibly compressed) name.
  static func skipName(_ m: [UInt8], _ start: Int) -> Int? {
    var i = start
    while i < m.count {
      let l = m[i]
      if l == 0 { return i + 1 }
      if l & 0xC0 == 0xC0 { return i + 2 <= m.count ? i + 2 : nil }
      i += 1 + Int(l)
    }
    return nil
  }
}
