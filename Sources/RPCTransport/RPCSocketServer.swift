import JSON
import JSONRPC
import Sockets

#if canImport(Glibc)
  import Glibc
#endif

/// Serves a `Dispatcher` over a stream socket: one JSON text per line, both ways.
public final class RPCSocketServer: Sendable {
  public let server: StreamServer
  let dispatcher: Dispatcher
  let maxLineBytes: Int
  /// A request line must be complete this long after its first byte
  /// (a byte-at-a-time client cannot hold a connection for ever).
  let lineTimeoutSeconds: Double

  public init(
    listener: Listener, dispatcher: Dispatcher, options: StreamServer.Options = .init(), maxLineBytes: Int = 1 << 20,
    lineTimeoutSeconds: Double = 10
  ) {
    self.dispatcher = dispatcher
    self.maxLineBytes = maxLineBytes
    self.lineTimeoutSeconds = lineTimeoutSeconds
    let refusal = JSONWriter.bytes(
      Dispatcher.errorResponse(
        id: .null,
        RPCError(
          code: RPCError.Code.unavailable, reason: "too_many_connections",
          message: "Too many connections (at most \(options.maxConnections)); try again shortly."))) + [0x0A]
    server = StreamServer(
      listener: listener, options: options,
      refuse: { fd in
        refusal.withUnsafeBytes { _ = SocketCalls.sendAll(fd, $0) }
      },
      handler: { [dispatcher, maxLineBytes, lineTimeoutSeconds] conn in
        RPCSocketServer.serve(conn, dispatcher: dispatcher, maxLineBytes: maxLineBytes, lineTimeoutSeconds: lineTimeoutSeconds)
      })
  }

  public func start() { server.start() }
  public func stop(grace: Duration = .seconds(10)) { server.stop(grace: grace) }

  static func tooLongReply(_ maxLineBytes: Int) -> [UInt8] {
    let limit = maxLineBytes % (1 << 20) == 0 ? "\(maxLineBytes >> 20) MiB" : "\(maxLineBytes) bytes"
    return JSONWriter.bytes(
      Dispatcher.errorResponse(id: .null, .invalidRequest("the request line is longer than \(limit)", reason: "line_too_long"))) + [0x0A]
  }

  static func timeoutReply(_ seconds: Double) -> [UInt8] {
    JSONWriter.bytes(
      Dispatcher.errorResponse(
        id: .null,
        .invalidRequest(
          "the request line was not finished within \(Int(seconds)) seconds of its first byte; the connection is closed",
          reason: "request_timeout"))) + [0x0A]
  }

  static func serve(_ conn: Connection, dispatcher: Dispatcher, maxLineBytes: Int, lineTimeoutSeconds: Double = 10) {
    var framer = LineFramer(maxLineBytes: maxLineBytes)
    var context = CallContext(peerUID: conn.peer?.uid, peerGID: conn.peer?.gid, peerPID: conn.peer?.pid)
    let handoff = ConnectionHandoff()
    context.handoff = handoff
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    defer { buffer.deallocate() }

    func process(_ events: [LineFramer.Event]) -> Bool {
      guard !events.isEmpty else { return true }
      conn.setBusy(true)
      defer { conn.setBusy(false) }
      var out: [UInt8] = []
      for event in events {
        switch event {
        case .tooLong:
          out += tooLongReply(maxLineBytes)
        case .line(let line):
          if let reply = dispatcher.handle(line: line, context: context) {
            out += reply
            out.append(0x0A)
          }
        }
      }
      guard out.isEmpty || conn.write(out) else { return false }
      // A method that keeps the connection (events.subscribe) streams on it
      // now, on this thread; the connection ends when it returns.
      if let streamer = handoff.take() {
        conn.setBusy(false)
        streamer(conn)
        return false
      }
      return true
    }

    var timed = false
    while true {
      // Idle between lines: no limit (the app keeps connections open). Inside
      // a line: what is left of the line's time.
      let midLine = framer.isMidLine
      let elapsed = conn.setPartial(midLine)
      if midLine {
        let left = lineTimeoutSeconds - elapsed
        if left <= 0 {
          _ = conn.write(timeoutReply(lineTimeoutSeconds))
          return
        }
        // At least 1 ms: a timeout that rounds to zero means "wait for ever".
        conn.setReceiveTimeout(seconds: max(0.001, left))
        timed = true
      } else if timed {
        conn.setReceiveTimeout(seconds: 0)
        timed = false
      }
      let n = conn.read(into: buffer)
      if n < 0 && midLine && (errno == EAGAIN || errno == EWOULDBLOCK) {
        _ = conn.write(timeoutReply(lineTimeoutSeconds))
        return
      }
      if n <= 0 {
        // End of input (or error): a last line without newline still counts.
        _ = process(framer.finish())
        return
      }
      let events = framer.push(UnsafeBufferPointer(start: buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), count: n))
      if !process(events) { return }
    }
  }
}
