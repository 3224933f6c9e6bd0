#if canImport(Glibc)
  import Glibc
#endif

/// A blocking client for line-framed protocols on a stream socket. One thread
/// at a time; used by `roster call`, tests and benchmarks.
public final class LineClient {
  public let fd: Int32
  private var buffer: [UInt8] = []

  public init(unixPath: String, timeoutSeconds: Double = 30) throws(SocketError) {
    fd = try SocketCalls.connectUnix(unixPath)
    SocketCalls.setTimeout(fd, option: SO_RCVTIMEO, seconds: timeoutSeconds)
    SocketCalls.setTimeout(fd, option: SO_SNDTIMEO, seconds: timeoutSeconds)
  }

  public init(host: String, port: UInt16, timeoutSeconds: Double = 30) throws(SocketError) {
    fd = try SocketCalls.connectTCP(host: host, port: port, timeoutSeconds: timeoutSeconds)
    SocketCalls.setTimeout(fd, option: SO_RCVTIMEO, seconds: timeoutSeconds)
    SocketCalls.setTimeout(fd, option: SO_SNDTIMEO, seconds: timeoutSeconds)
  }

  deinit { close(fd) }

  public func send(_ bytes: [UInt8]) throws(SocketError) {
    let ok = bytes.withUnsafeBytes { SocketCalls.sendAll(fd, $0) }
    if !ok { throw SocketError("send") }
  }

  /// Half-closes the connection (like socat after its input ends).
  public func finishSending() { _ = shutdown(fd, Int32(SHUT_WR)) }

  /// Reads raw bytes (for protocols that are not line based, e.g. HTTP bodies).
  public func readSome(max: Int = 65536) throws(SocketError) -> [UInt8] {
    if !buffer.isEmpty {
      let n = min(max, buffer.count)
      let out = Array(buffer[..<n])
      buffer.removeFirst(n)
      return out
    }
    var chunk = [UInt8](repeating: 0, count: max)
    let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
    if n < 0 { throw SocketError("recv") }
    return Array(chunk[0..<n])
  }

  /// The next `\n`-terminated line without its newline; nil at end of input.
  public func readLine() throws(SocketError) -> [UInt8]? {
    var scanFrom = 0
    while true {
      if let nl = buffer[scanFrom...].firstIndex(of: 0x0A) {
        let line = Array(buffer[..<nl])
        buffer.removeFirst(nl + 1)
        return line
      }
      scanFrom = buffer.count
      var chunk = [UInt8](repeating: 0, count: 65536)
      let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65536, 0) }
      if n < 0 { throw SocketError("recv") }
      if n == 0 {
        if buffer.isEmpty { return nil }
        let line = buffer
        buffer.removeAll()
        return line
      }
      buffer.append(contentsOf: chunk[0..<n])
    }
  }
}
