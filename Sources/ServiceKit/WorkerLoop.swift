import Foundation
import JSON
import Postgres
import RosterRuntime
import Synchronization

/// Background work on threads of our own (never Swift concurrency's
/// cooperative pool, since every pass blocks on libpq, SMTP or DNS): each
/// thread repeats a pass while it finds work, and otherwise sleeps until a
/// NOTIFY on `channel` wakes it, the next item falls due, or `pollSeconds`
/// pass. After a failed pass (the database is down or refusing) it waits the
/// whole poll interval instead of spinning.
public final class WorkerLoop: Sendable {
  /// One thread's work: returns true when it did something (run it again at
  /// once), false when there was nothing to do.
  public typealias Pass = () throws -> Bool

  let name: String
  let threads: Int
  let pollSeconds: Double
  let logger: Logger
  let listener: PGListener?
  let stopping = Atomic<Bool>(false)
  let wake = DispatchSemaphore(value: 0)
  let finished = DispatchSemaphore(value: 0)

  /// `channel` nil: no wake-ups, a pass every `pollSeconds`.
  public init(name: String, threads: Int, pollSeconds: Double, channel: String?, config: PGConfig, logger: Logger) {
    self.name = name
    self.threads = threads
    self.pollSeconds = pollSeconds
    self.logger = logger
    let wake = self.wake
    listener = channel.map { ch in
      PGListener(config: config, channels: [ch]) { _, _ in
        for _ in 0..<threads { wake.signal() }
      }
    }
  }

  /// Starts the threads. `makePass` runs once on each thread and returns that
  /// thread's pass (so per-thread state, such as an SMTP connection, stays
  /// on its thread); `nextDue` gives the seconds until the next item is due.
  public func start(makePass: @escaping @Sendable () -> Pass, nextDue: @escaping @Sendable () throws -> Double) {
    listener?.start()
    for n in 0..<threads {
      let t = Thread { [self] in
        defer { finished.signal() }
        run(makePass(), nextDue: nextDue)
      }
      t.name = "\(name)-\(n)"
      t.start()
    }
  }

  private func run(_ pass: Pass, nextDue: () throws -> Double) {
    while !stopping.load(ordering: .relaxed) {
      var didWork = false
      var failed = false
      do {
        didWork = try pass()
      } catch {
        failed = true
        logger.warning("\(name) pass failed", ["error": .string(String(describing: error))])
      }
      if !didWork {
        let due = failed ? pollSeconds : ((try? nextDue()) ?? pollSeconds)
        _ = wake.wait(timeout: .now() + min(pollSeconds, max(0.05, due)))
      }
    }
  }

  /// Wakes every thread and waits for each to finish its current pass.
  public func stop() {
    guard !stopping.exchange(true, ordering: .relaxed) else { return }
    for _ in 0..<threads { wake.signal() }
    for _ in 0..<threads { finished.wait() }
    listener?.stop()
  }
}
