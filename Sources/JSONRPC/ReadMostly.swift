#if canImport(Glibc)
  import Glibc
#endif

/// A value read on every request and written rarely (method registration).
/// Readers share a pthread read lock instead of queueing on one mutex, which
/// under many connection threads was the main source of contention.
final class ReadMostly<Value>: @unchecked Sendable {
  // Guarded by `lock`.
  private var value: Value
  private let lock: UnsafeMutablePointer<pthread_rwlock_t>

  init(_ value: Value) {
    self.value = value
    lock = .allocate(capacity: 1)
    pthread_rwlock_init(lock, nil)
  }

  deinit {
    pthread_rwlock_destroy(lock)
    lock.deallocate()
  }

  func read<R>(_ body: (Value) throws -> R) rethrows -> R {
    pthread_rwlock_rdlock(lock)
    defer { pthread_rwlock_unlock(lock) }
    return try body(value)
  }

  func write<R>(_ body: (inout Value) throws -> R) rethrows -> R {
    pthread_rwlock_wrlock(lock)
    defer { pthread_rwlock_unlock(lock) }
    return try body(&value)
  }
}
