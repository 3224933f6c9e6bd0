import Foundation
import JSON
import Postgres
import RosterStore
import RosterTestSupport
import Synchronization
import Testing

/// The event feed under concurrent writers: a reader that follows the
/// cursor sees every event exactly once, in increasing cursor order, even
/// when transactions that started earlier commit later.
@Suite struct EventFeedTests {
  @Test func aFollowingReaderNeverSkipsAnEvent() throws {
    let pool = PGPool(config: PGConfig(conninfo: try TestPostgres.shared.freshDatabase()), size: 8)
    defer { pool.closeAll() }
    let writers = 6
    let perWriter = 40
    let done = Atomic<Int>(0)
    for w in 0..<writers {
      Thread {
        for i in 0..<perWriter {
          try? pool.transaction { tx in
            try EventLog.emit(tx, type: "test.event", workspaceId: nil, data: ["w": .int(w), "i": .int(i)])
            // Hold some transactions open so later ones commit first.
            if (w + i) % 3 == 0 { usleep(UInt32.random(in: 1_000...8_000)) }
          }
        }
        done.add(1, ordering: .relaxed)
      }.start()
    }
    var cursor = EventLog.Cursor.start
    var seen: [String] = []
    var keys = Set<String>()
    // Events become visible once every older transaction in the cluster has
    // ended, so a follower keeps polling; give it a generous deadline.
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline {
      let finished = done.load(ordering: .relaxed) == writers
      let page = try EventLog.list(pool, after: cursor, limit: 7, workspaceId: nil)
      for e in page.events {
        let c = e["cursor"]!.stringValue!
        seen.append(c)
        keys.insert("\(e["data"]!["w"]!)-\(e["data"]!["i"]!)")
        cursor = EventLog.Cursor(c)!
      }
      if finished && page.events.isEmpty && seen.count >= writers * perWriter { break }
      if page.events.isEmpty { usleep(2_000) }
    }
    #expect(keys.count == writers * perWriter, "every event seen")
    #expect(seen.count == writers * perWriter, "each exactly once")
    let ordered = seen.map { c in c.split(separator: "-").map { UInt64($0)! } }
    #expect(zip(ordered, ordered.dropFirst()).allSatisfy { $0.lexicographicallyPrecedes($1) })
  }
}
