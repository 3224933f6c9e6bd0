import Foundation
import ProcessSpawn
import JSON
import RosterRuntime
import Sockets
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Latency samples and their summary.
struct Samples {
  var values: [Double] = []
  mutating func add(_ v: Double) { values.append(v) }
  func percentile(_ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    let idx = min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))
    return sorted[idx]
  }
}

func now() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func fmt(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }

/// Prints a Markdown table.
func table(_ header: [String], _ rows: [[String]]) {
  print("| " + header.joined(separator: " | ") + " |")
  print("|" + header.map { _ in "---" }.joined(separator: "|") + "|")
  for r in rows { print("| " + r.joined(separator: " | ") + " |") }
}

/// Runs `clients` closed-loop clients for `seconds`, each on its own thread and
/// connection; returns (requests/s, latency samples in µs).
func closedLoop(clients: Int, seconds: Double, makeClient: @escaping @Sendable () throws -> (@Sendable () throws -> Void)) -> (Double, Samples) {
  let results = Mutex<[Samples]>([])
  let total = Atomic<Int>(0)
  let group = DispatchGroup()
  let start = Atomic<Bool>(false)
  for _ in 0..<clients {
    group.enter()
    let t = Thread {
      defer { group.leave() }
      guard let op = try? makeClient() else { return }
      while !start.load(ordering: .acquiring) { usleep(100) }
      var s = Samples()
      let end = now() + seconds
      var n = 0
      while true {
        let t0 = now()
        if t0 >= end { break }
        do { try op() } catch { break }
        s.add((now() - t0) * 1e6)
        n += 1
      }
      total.add(n, ordering: .relaxed)
      results.withLock { $0.append(s) }
    }
    t.start()
  }
  usleep(200_000)
  let t0 = now()
  start.store(true, ordering: .releasing)
  group.wait()
  let elapsed = now() - t0
  var all = Samples()
  for s in results.withLock({ $0 }) { all.values += s.values }
  return (Double(total.load(ordering: .relaxed)) / elapsed, all)
}

/// A line-protocol request/response over a Unix socket.
func lineRoundTrip(_ path: String, _ request: [UInt8]) throws -> @Sendable () throws -> Void {
  let client = try LineClient(unixPath: path)
  let box = UncheckedBox(client)
  return {
    try box.value.send(request)
    guard try box.value.readLine() != nil else { throw SocketError("eof") }
  }
}

/// Lets one thread own a non-Sendable client inside a @Sendable closure.
final class UncheckedBox<T>: @unchecked Sendable {
  let value: T
  init(_ v: T) { value = v }
}

/// Starts this executable again with other arguments (a server for a baseline).
func spawnSelf(_ args: [String]) throws -> pid_t {
  try Spawn.start([URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path] + args, output: nil)
}

struct BenchError: Error, CustomStringConvertible {
  let description: String
  init(_ d: String) { description = d }
}

/// A shared request counter (spreads clients over the data set).
final class Counter: Sendable {
  private let value = Atomic<Int>(0)
  func next() -> Int { value.add(1, ordering: .relaxed).newValue }
  var current: Int { value.load(ordering: .relaxed) }
}

/// A line client owned by one benchmark thread.
final class LineClientBox: @unchecked Sendable {
  let client: LineClient
  init(_ path: String) throws { client = try LineClient(unixPath: path) }
  func roundTrip(_ line: [UInt8]) throws -> JSONValue {
    try client.send(line)
    guard let reply = try client.readLine() else { throw BenchError("connection closed") }
    return try JSONParser.parse(reply, maxDepth: 512)
  }
}
