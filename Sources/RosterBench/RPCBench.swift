import Foundation
import JSON
import Sockets

#if canImport(Glibc)
  import Glibc
#endif

/// `system.health` over a Roster socket against a minimal Unix-socket echo
/// server (same line framing, thread per connection) as the baseline.
enum RPCBench {
  /// Returns the p50 µs with one client of Roster and of the echo baseline.
  @discardableResult
  static func run(socket: String, seconds: Double) throws -> (roster: Double, echo: Double) {
    let echoPath = "/tmp/roster-bench-echo-\(getpid()).sock"
    let pid = try spawnSelf(["echo-server", echoPath])
    defer {
      kill(pid, SIGTERM)
      var st: Int32 = 0
      waitpid(pid, &st, 0)
      unlink(echoPath)
    }
    for _ in 0..<100 where !FileManager.default.fileExists(atPath: echoPath) { usleep(20_000) }
    let request = Array("{\"jsonrpc\":\"2.0\",\"method\":\"system.health\",\"id\":1}\n".utf8)
    var rows: [[String]] = []
    var p50: [Double] = []
    for (name, path) in [("roster system.health", socket), ("echo baseline", echoPath)] {
      // Warm-up.
      _ = closedLoop(clients: 2, seconds: 0.5) { try lineRoundTrip(path, request) }
      var row = [name]
      let (rps1, lat1) = closedLoop(clients: 1, seconds: seconds) { try lineRoundTrip(path, request) }
      row += [fmt(lat1.percentile(50)), fmt(lat1.percentile(99)), fmt(rps1, 0)]
      p50.append(lat1.percentile(50))
      for c in [4, 16] {
        let (rps, _) = closedLoop(clients: c, seconds: seconds) { try lineRoundTrip(path, request) }
        row.append(fmt(rps, 0))
      }
      rows.append(row)
    }
    table(["server", "p50 µs (1 client)", "p99 µs (1 client)", "req/s 1 client", "req/s 4 clients", "req/s 16 clients"], rows)
    return (p50[0], p50[1])
  }

  /// The baseline: read a line, write a fixed line back.
  static func echoServer(path: String) throws -> Never {
    let listener = try Listener.bind(.unix(path))
    let reply = Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"status\":\"ok\"}}\n".utf8)
    let server = StreamServer(listener: listener) { conn in
      let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
      defer { buf.deallocate() }
      while true {
        let n = conn.read(into: buf)
        if n <= 0 { return }
        var lines = 0
        for i in 0..<n where buf[i] == 0x0A { lines += 1 }
        for _ in 0..<lines { if !conn.write(reply) { return } }
      }
    }
    server.start()
    _ = Signals.waitForTermination()
    server.stop(grace: .milliseconds(100))
    exit(0)
  }
}

import RosterRuntime
