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
