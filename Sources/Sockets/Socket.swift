#if canImport(Glibc)
  import Glibc
#endif

/// A failed socket call, with the errno text.
public struct SocketError: Error, CustomStringConvertible, Sendable {
  public let operation: String
  public let code: Int32
  public let detail: String

  public init(_ operation: String, code: Int32 = errno, detail: String = "") {
    self.operation = operation
    self.code = code
    self.detail = detail
  }

  public var description: String {
    let reason = String(cString: strerror(code))
    return detail.isEmpty ? "\(operation): \(reason)" : "\(operation): \(detail) (\(reason))"
  }
}

/// Where a server listens.
public enum ListenAddress: Sendable, Equatable, CustomStringConvertible {
  case unix(String)
  case tcp(host: String, port: UInt16)

  /// Parses `unix:PATH` or `tcp:HOST:PORT` (the `ROSTER_SCIM_LISTEN` syntax).
  public static func parse(_ text: String) -> ListenAddress? {
    if text.hasPrefix("unix:") {
      let path = String(text.dropFirst(5))
      return path.isEmpty ? nil : .unix(path)
    }
    if text.hasPrefix("tcp:") {
      let rest = text.dropFirst(4)
      guard let colon = rest.lastIndex(of: ":"), let port = UInt16(rest[rest.index(after: colon)...]) else { return nil }
      let host = String(rest[..<colon])
      var addr = in_addr()
      guard inet_pton(AF_INET, host, &addr) == 1 else { return nil }
      return .tcp(host: host, port: port)
    }
    return nil
  }

  public var description: String {
    switch self {
    case .unix(let p): return "unix:\(p)"
    case .tcp(let h, let p): return "tcp:\(h):\(p)"
    }
  }
}

/// Mirror of glibc's `struct ucred`, which the Glibc module hides behind `__USE_GNU`.
public struct PeerCredentials: Sendable, Equatable {
  public var pid: Int32 = 0
  public var uid: UInt32 = 0
  public var gid: UInt32 = 0
  public init(pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0) {
    self.pid = pid
    self.uid = uid
    self.gid = gid
  }
}

public enum SocketCalls {
  /// Largest `sun_path` content: 108 bytes including the terminating NUL.
  public static let maxUnixPathBytes = 107

  public static func makeUnixAddress(_ path: String) throws(SocketError) -> sockaddr_un {
    let bytes = Array(path.utf8)
    guard bytes.count <= maxUnixPathBytes else {
      throw SocketError("socket path", code: ENAMETOOLONG, detail: "'\(path)' is \(bytes.count) bytes; at most \(maxUnixPathBytes) fit")
    }
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
      raw.copyBytes(from: bytes)
      raw[bytes.count] = 0
    }
    return addr
  }

  public static func setCloseOnExec(_ fd: Int32) {
    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
  }

  public static func peerCredentials(_ fd: Int32) -> PeerCredentials? {
    var cred = PeerCredentials()
    var len = socklen_t(MemoryLayout<PeerCredentials>.size)
    let rc = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)
    return rc == 0 ? cred : nil
  }

  public static func setTimeout(_ fd: Int32, option: Int32, seconds: Double) {
    var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
    _ = setsockopt(fd, SOL_SOCKET, option, &tv, socklen_t(MemoryLayout<timeval>.size))
  }

  /// Writes everything or fails (short writes are resumed; EINTR retried).
  public static func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var offset = 0
    while offset < bytes.count {
      let n = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
      if n < 0 {
        if errno == EINTR { continue }
        return false
      }
      offset += n
    }
    return true
  }

  public static func connectUnix(_ path: String) throws(SocketError) -> Int32 {
    var addr = try makeUnixAddress(path)
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SocketError("socket") }
    let rc = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    if rc != 0 {
      let e = errno
      close(fd)
      throw SocketError("connect", code: e, detail: path)
    }
    return fd
  }

  /// Connects over IPv4; `timeoutSeconds` bounds the connect itself (Linux
  /// applies SO_SNDTIMEO to connect).
  public static func connectTCP(host: String, port: UInt16, timeoutSeconds: Double = 10) throws(SocketError) -> Int32 {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { throw SocketError("inet_pton", code: EINVAL, detail: host) }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SocketError("socket") }
    setTimeout(fd, option: SO_SNDTIMEO, seconds: timeoutSeconds)
    let rc = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if rc != 0 {
      let e = errno
      close(fd)
      throw SocketError("connect", code: e, detail: "\(host):\(port)")
    }
    var one: Int32 = 1
    _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    return fd
  }
}
