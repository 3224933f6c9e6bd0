import Foundation
import JSON

/// A real Prometheus (Debian's `prometheus` package) on loopback, with a
/// config written by the test, queried through its HTTP API.
public final class TestPrometheus: @unchecked Sendable {
  public let port: UInt16
  public let dir: String
  let process: Spawned

  public static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus") }

  /// `config` is the prometheus.yml text; `files` are written next to it (rule files).
  public init(config: String, files: [String: String] = [:]) throws {
    guard Self.available else { throw TestError("prometheus is not installed: run deploy/test.sh (it installs Debian's prometheus)") }
    dir = try TestFiles.makeTempDirectory(prefix: "roster-prometheus")
    port = freeLoopbackPort()
    for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
    try config.write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
    process = try TestProcess.start(
      [
        "/usr/bin/prometheus", "--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/data", "--web.listen-address=127.0.0.1:\(port)",
        "--log.level=warn",
      ], output: dir + "/prometheus.log")
    let p = port
    guard TestProcess.waitUntil(timeout: 30, { (try? TestHTTP(host: "127.0.0.1", port: p).raw("GET", "/-/ready", headers: [], body: []))?.status == 200 })
    else {
      process.stop()
      throw TestError("prometheus did not start: \((try? String(contentsOfFile: dir + "/prometheus.log", encoding: .utf8)) ?? "")")
    }
  }

  deinit { process.stop() }

  /// GET /api/v1/… and its `data` (throws on a status other than success).
  public func api(_ path: String, _ query: [(String, String)] = []) throws -> JSONValue {
    let q = query.map { $0.0 + "=" + TestBrowser.enc($0.1) }.joined(separator: "&")
    let r = try TestHTTP(host: "127.0.0.1", port: port).raw("GET", "/api/v1/" + path + (q.isEmpty ? "" : "?" + q), headers: [], body: [])
    guard let json = r.json, json["status"] == "success" else {
      throw TestError("prometheus \(path) \(q): \(r.status) \(String(decoding: r.body, as: UTF8.self).prefix(500))")
    }
    return json["data"] ?? .null
  }

  /// An instant query's result vector.
  public func query(_ expr: String) throws -> [JSONValue] { try api("query", [("query", expr)])["result"]?.arrayValue ?? [] }
}
