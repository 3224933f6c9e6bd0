import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Counters and histograms rendered in the Prometheus text exposition format.
/// Label values come from our code (method names, statuses), never from raw
/// input, so the set of series stays bounded.
///
/// Updates go to one of a fixed set of shards chosen per thread, so request
/// threads do not contend on one lock; a scrape merges the shards.
public final class Metrics: Sendable {
  public typealias Labels = KeyValuePairs<String, String>

  struct Histogram {
    var counts: [UInt64]
    var sum: Double = 0
    var count: UInt64 = 0
  }
  struct Shard {
    /// series key ("name" + rendered labels) → value
    var counters: [String: (name: String, labels: String, value: Double)] = [:]
    var histograms: [String: (name: String, labels: String, value: Histogram)] = [:]
  }
  public struct Gauge: Sendable {
    public var name: String
    public var help: String
    public var labels: [(String, String)]
    public var value: Double
    public init(_ name: String, _ help: String, _ labels: [(String, String)] = [], _ value: Double) {
      self.name = name
      self.help = help
      self.labels = labels
      self.value = value
    }
  }

  public static let latencyBuckets: [Double] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
  ]
  static let shardCount = 16
  final class ShardBox: Sendable {
    let lock = Mutex(Shard())
  }
  private let shards: [ShardBox] = (0..<Metrics.shardCount).map { _ in ShardBox() }
  private let help = Mutex<[String: (type: String, text: String)]>([:])
  /// Gauges computed when scraped (queue depths read from the database, …).
  private let collectors = Mutex<[@Sendable () -> [Gauge]]>([])

  public init() {}

  public func describe(_ name: String, type: String, help text: String) {
    help.withLock { $0[name] = (type, text) }
  }

  private var shard: ShardBox { shards[ThreadSlot.current % Self.shardCount] }

  static func render(_ labels: Labels) -> String {
    labels.map { "\($0.key)=\"\(escape($0.value))\"" }.joined(separator: ",")
  }

  public func increment(_ name: String, _ labels: Labels = [:], by value: Double = 1) {
    let l = Self.render(labels)
    shard.lock.withLock { s in
      let key = name + "{" + l
      if let existing = s.counters[key] {
        s.counters[key] = (name, l, existing.value + value)
      } else {
        s.counters[key] = (name, l, value)
      }
    }
  }

  public func observe(_ name: String, _ labels: Labels = [:], _ value: Double) {
    let l = Self.render(labels)
    shard.lock.withLock { s in
      let key = name + "{" + l
      var h = s.histograms[key]?.value ?? Histogram(counts: Array(repeating: 0, count: Self.latencyBuckets.count))
      for (i, b) in Self.latencyBuckets.enumerated() where value <= b { h.counts[i] += 1 }
      h.sum += value
      h.count += 1
      s.histograms[key] = (name, l, h)
    }
  }

  public func addCollector(_ c: @escaping @Sendable () -> [Gauge]) {
    collectors.withLock { $0.append(c) }
  }

  public func counterValue(_ name: String, _ labels: Labels = [:]) -> Double {
    let key = name + "{" + Self.render(labels)
    return shards.reduce(0) { acc, shard in acc + (shard.lock.withLock { $0.counters[key]?.value } ?? 0) }
  }

  public func render() -> String {
    var counters: [String: (name: String, labels: String, value: Double)] = [:]
    var histograms: [String: (name: String, labels: String, value: Histogram)] = [:]
    for shard in shards {
      let s = shard.lock.withLock { $0 }
      for (k, c) in s.counters { counters[k] = (c.name, c.labels, (counters[k]?.value ?? 0) + c.value) }
      for (k, h) in s.histograms {
        var merged = histograms[k]?.value ?? Histogram(counts: Array(repeating: 0, count: Self.latencyBuckets.count))
        for i in merged.counts.indices { merged.counts[i] += h.value.counts[i] }
        merged.sum += h.value.sum
        merged.count += h.value.count
        histograms[k] = (h.name, h.labels, merged)
      }
    }
    let help = self.help.withLock { $0 }
    var out = ""
    var described = Set<String>()
    func header(_ name: String, _ type: String, _ fallback: String) {
      guard described.insert(name).inserted else { return }
      out += "# HELP \(name) \(help[name]?.text ?? fallback)\n# TYPE \(name) \(help[name]?.type ?? type)\n"
    }
    func braces(_ l: String) -> String { l.isEmpty ? "" : "{\(l)}" }
    for k in counters.keys.sorted() {
      let c = counters[k]!
      header(c.name, "counter", c.name)
      out += "\(c.name)\(braces(c.labels)) \(Self.format(c.value))\n"
    }
    for k in histograms.keys.sorted() {
      let (name, labels, h) = histograms[k]!
      header(name, "histogram", name)
      let prefix = labels.isEmpty ? "" : labels + ","
      for (i, b) in Self.latencyBuckets.enumerated() {
        out += "\(name)_bucket{\(prefix)le=\"\(Self.format(b))\"} \(h.counts[i])\n"
      }
      out += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(h.count)\n"
      out += "\(name)_sum\(braces(labels)) \(Self.format(h.sum))\n"
      out += "\(name)_count\(braces(labels)) \(h.count)\n"
    }
    for c in collectors.withLock({ $0 }) {
      for g in c() {
        header(g.name, "gauge", g.help)
        let l = g.labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",")
        out += "\(g.name)\(braces(l)) \(Self.format(g.value))\n"
      }
    }
    return out
  }

  static func escape(_ s: String) -> String {
    guard s.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return s }
    var o = ""
    for ch in s {
      switch ch {
      case "\\": o += "\\\\"
      case "\"": o += "\\\""
      case "\n": o += "\\n"
      default: o.append(ch)
      }
    }
    return o
  }

  static func format(_ d: Double) -> String {
    if d.isNaN { return "NaN" }
    if d.isInfinite { return d > 0 ? "+Inf" : "-Inf" }
    if d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
    return "\(d)"
  }
}

/// A small per-thread number, assigned on first use, for picking shards.
enum ThreadSlot {
  private static let next = Atomic<Int>(0)
  private static let key: pthread_key_t = {
    var k = pthread_key_t()
    pthread_key_create(&k, nil)
    return k
  }()

  static var current: Int {
    if let p = pthread_getspecific(key) { return Int(bitPattern: p) - 1 }
    let slot = next.add(1, ordering: .relaxed).newValue
    pthread_setspecific(key, UnsafeRawPointer(bitPattern: slot + 1))
    return slot
  }
}
