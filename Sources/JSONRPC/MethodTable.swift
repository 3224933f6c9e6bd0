import Synchronization

/// The methods a dispatcher serves: an immutable table that requests read
/// with one atomic load, no lock. Registering (at start-up, before the
/// socket is served; tests add a method or two later) publishes a new table.
/// Tables are never freed — a request may still be reading an older one,
/// and there are only as many as there were registrations (a handful).
final class MethodTable: Sendable {
  private final class Snapshot: Sendable {
    let methods: [String: MethodSpec]
    init(_ methods: [String: MethodSpec]) { self.methods = methods }
  }

  /// The current snapshot's address (a retained, never released object).
  private let published: Atomic<UInt>
  /// Serialises registrations (never taken by requests).
  private let writer = Mutex<Void>(())

  init() {
    published = Atomic(UInt(bitPattern: Unmanaged.passRetained(Snapshot([:])).toOpaque()))
  }

  var current: [String: MethodSpec] {
    // Never zero: init publishes a table before anything can read.
    guard let p = UnsafeRawPointer(bitPattern: published.load(ordering: .acquiring)) else { return [:] }
    return Unmanaged<Snapshot>.fromOpaque(p).takeUnretainedValue().methods
  }

  func add(_ specs: [MethodSpec]) {
    writer.withLock { _ in
      var next = current
      for s in specs { next[s.name] = s }
      published.store(UInt(bitPattern: Unmanaged.passRetained(Snapshot(next)).toOpaque()), ordering: .releasing)
    }
  }
}
