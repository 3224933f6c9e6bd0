import Synchronization

/// Named places in the code where a test can hold a request, to make a race
/// deterministic instead of hoping for it. Unarmed (always, outside tests)
/// a pause point is one relaxed atomic load.
public enum PausePoints {
  public typealias Hook = @Sendable () -> Void
  static let armed = Atomic<Int>(0)
  static let hooks = Mutex<[String: Hook]>([:])

  /// Runs `hook` whenever the code reaches `name` for `key` (e.g. a member id).
  public static func arm(_ name: String, key: String, _ hook: @escaping Hook) {
    hooks.withLock { $0[name + "|" + key] = hook }
    armed.add(1, ordering: .relaxed)
  }

  public static func disarm(_ name: String, key: String) {
    if hooks.withLock({ $0.removeValue(forKey: name + "|" + key) }) != nil { armed.subtract(1, ordering: .relaxed) }
  }

  @inline(__always)
  public static func here(_ name: String, key: String) {
    guard armed.load(ordering: .relaxed) > 0 else { return }
    if let hook = hooks.withLock({ $0[name + "|" + key] }) { hook() }
  }
}
