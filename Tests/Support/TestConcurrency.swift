import Foundation
import Synchronization

/// Runs `count` bodies on threads of their own, released together by a
/// barrier, and waits for all of them: the way an IdP sends several
/// requests at once. Errors are collected, not thrown away.
public enum Concurrently {
  public static func run(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) -> [any Error] {
    let ready = DispatchSemaphore(value: 0)
    let go = DispatchSemaphore(value: 0)
    let done = DispatchGroup()
    let errors = Mutex<[any Error]>([])
    for i in 0..<count {
      done.enter()
      let t = Thread {
        ready.signal()
        go.wait()
        do { try body(i) } catch { errors.withLock { $0.append(error) } }
        done.leave()
      }
      t.start()
    }
    for _ in 0..<count { ready.wait() }
    for _ in 0..<count { go.signal() }
    done.wait()
    return errors.withLock { $0 }
  }
}

/// Runs a blocking test body (sockets, sleeps, child processes) on a thread
/// of its own and waits for it without holding one of Swift concurrency's
/// two cooperative threads, which the other suites need meanwhile.
public enum OwnThread {
  @discardableResult
  public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (k: CheckedContinuation<T, any Error>) in
      let t = Thread {
        do { k.resume(returning: try body()) } catch { k.resume(throwing: error) }
      }
      t.stackSize = 4 << 20
      t.start()
    }
  }
}

/// Tests that measure the machine's responsiveness (the connection-exhaustion
/// "served within a second") and the ones that saturate it (the fault
/// scenarios) take turns, so one does not measure the other.
public enum MachineHogs {
  static let turn = DispatchSemaphore(value: 1)

  public static func exclusively<T>(_ body: () throws -> T) rethrows -> T {
    turn.wait()
    defer { turn.signal() }
    return try body()
  }
}
