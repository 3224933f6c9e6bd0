import Synchronization

/// Counters, gauges and histograms rendered in the Prometheus text exposition
/// format. Label values come from our code (method names, statuses), never
/// from raw input, so the set of series stays bounded.
public final class Metrics: Sendable {
  struct Key: Hashable {
    var name: String
    var labels: [String: String]
  }
  struct Histogram {
    var buckets: [Double]
    var counts: [UInt64]
    var sum: Double = 0
    var count: UInt64 = 0
  }
  struct State {
    var counters: [Key: Double] = [:]
    var histograms: [Key: Histogram] = [:]
    var help: [String: (String, String)] = [:]
  }

  public static let latencyBuckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
  private let state = Mutex(State())
  /// Gauges computed when scraped (queue depths read from the database, …).
  private let collectors = Mutex<[@Sendable () -> [(name: String, help: String, labels: [String: String], value: Double)]]>([])

  public init() {}

  public func describe(_ name: String, type: String, help: String) {
    state.withLock { $0.help[name] = (type, help) }
  }

  public func increment(_ name: String, _ labels: [String: String] = [:], by value: Double = 1) {
    state.withLock { $0.counters[Key(name: name, labels: labels), default: 0] += value }
  }

  public func observe(_ name: String, _ labels: [String: String] = [:], _ value: Double) {
    state.withLock { s in
      let key = Key(name: name, labels: labels)
      var h = s.histograms[key] ?? Histogram(buckets: Self.latencyBuckets, counts: Array(repeating: 0, count: Self.latencyBuckets.count))
      for (i, b) in h.buckets.enumerated() where value <= b { h.counts[i] += 1 }
      h.sum += value
      h.count += 1
      s.histograms[key] = h
    }
  }

  public func addCollector(_ c: @escaping @Sendable () -> [(name: String, help: String, labels: [String: String], value: Double)]) {
    collectors.withLock { $0.append(c) }
  }

  public func counterValue(_ name: String, _ labels: [String: String] = [:]) -> Double {
    state.withLock { $0.counters[Key(name: name, labels: labels)] ?? 0 }
  }

  public func render() -> String {
    var out = ""
    let (counters, histograms, help) = state.withLock { ($0.counters, $0.histograms, $0.help) }
    func labelText(_ l: [String: String], extra: (String, String)? = nil) -> String {
      var pairs = l.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
      if let extra { pairs.append(extra) }
      if pairs.isEmpty { return "" }
      return "{" + pairs.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
    }
    var described = Set<String>()
    func header(_ name: String, _ type: String, _ fallbackHelp: String) {
      guard described.insert(name).inserted else { return }
      let h = help[name]
      out += "# HELP \(name) \(h?.1 ?? fallbackHelp)\n# TYPE \(name) \(h?.0 ?? type)\n"
    }
    for key in counters.keys.sorted(by: { ($0.name, labelText($0.labels)) < ($1.name, labelText($1.labels)) }) {
      header(key.name, "counter", key.name)
      out += "\(key.name)\(labelText(key.labels)) \(format(counters[key]!))\n"
    }
    for key in histograms.keys.sorted(by: { ($0.name, labelText($0.labels)) < ($1.name, labelText($1.labels)) }) {
      let h = histograms[key]!
      header(key.name, "histogram", key.name)
      for (i, b) in h.buckets.enumerated() {
        out += "\(key.name)_bucket\(labelText(key.labels, extra: ("le", format(b)))) \(h.counts[i])\n"
      }
      out += "\(key.name)_bucket\(labelText(key.labels, extra: ("le", "+Inf"))) \(h.count)\n"
      out += "\(key.name)_sum\(labelText(key.labels)) \(format(h.sum))\n"
      out += "\(key.name)_count\(labelText(key.labels)) \(h.count)\n"
    }
    for c in collectors.withLock({ $0 }) {
      for g in c() {
        header(g.name, "gauge", g.help)
        out += "\(g.name)\(labelText(g.labels)) \(format(g.value))\n"
      }
    }
    return out
  }

  func escape(_ s: String) -> String {
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

  func format(_ d: Double) -> String {
    if d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
    return "\(d)"
  }
}
