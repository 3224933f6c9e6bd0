#if canImport(Glibc)
  import Glibc
#endif

/// A bound, listening socket. For Unix sockets it refuses to replace anything
/// that is not a stale socket, and sets the socket file to 0660.
public final class Listener: Sendable {
  public let fd: Int32
  public let address: ListenAddress

  private init(fd: Int32, address: ListenAddress) {
    self.fd = fd
    self.address = address
  }

  public static func bind(_ address: ListenAddress, backlog: Int32 = 512) throws(SocketError) -> Listener {
    switch address {
    case .unix(let path): return try bindUnix(path, backlog: backlog)
    case .tcp(let host, let port): return try bindTCP(host: host, port: port, backlog: backlog)
    }
  }

  static func bindUnix(_ path: String, backlog: Int32) throws(SocketError) -> Listener {
    var addr = try SocketCalls.makeUnixAddress(path)
    try clearStaleSocket(path)
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SocketError("socket") }
    let rc = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    if rc != 0 {
      let e = errno
      Glibc.close(fd)
      throw SocketError("bind", code: e, detail: path)
    }
    // Clients need write permission on the socket file to connect.
    chmod(path, 0o660)
    guard listen(fd, backlog) == 0 else {
      let e = errno
      Glibc.close(fd)
      unlink(path)
      throw SocketError("listen", code: e, detail: path)
    }
    return Listener(fd: fd, address: .unix(path))
  }

  /// A socket path may be reused only when nothing answers on it.
  static func clearStaleSocket(_ path: String) throws(SocketError) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }  // nothing there
    guard (st.st_mode & S_IFMT) == S_IFSOCK else {
      throw SocketError("bind", code: EEXIST, detail: "'\(path)' exists and is not a socket; refusing to replace it")
    }
    if let fd = try? SocketCalls.connectUnix(path) {
      Glibc.close(fd)
      throw SocketError("bind", code: EADDRINUSE, detail: "another process is already serving '\(path)'")
    }
    unlink(path)
  }

  static func bindTCP(host: String, port: UInt16, backlog: Int32) throws(SocketError) -> Listener {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { throw SocketError("inet_pton", code: EINVAL, detail: host) }
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw SocketError("socket") }
    var one: Int32 = 1
    _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    let rc = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if rc != 0 {
      let e = errno
      Glibc.close(fd)
      throw SocketError("bind", code: e, detail: "\(host):\(port)")
    }
    guard listen(fd, backlog) == 0 else {
      let e = errno
      Glibc.close(fd)
      throw SocketError("listen", code: e, detail: "\(host):\(port)")
    }
    // Port 0 asks the kernel for a free port: report the real one.
    var bound = sockaddr_in()
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &bound) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return Listener(fd: fd, address: .tcp(host: host, port: UInt16(bigEndian: bound.sin_port)))
  }

  /// Closes the socket and removes a Unix socket file.
  public func close() {
    _ = Glibc.close(fd)
    if case .unix(let path) = address { unlink(path) }
  }
}
