import JSONRPC
import Testing

@Suite struct LineFramerTests {
  let stream = Array("{\"a\":1}\n{\"b\":\"é\"}\r\n\n  \n[1,2]\n{\"last\":true}".utf8)
  let expected: [[UInt8]] = ["{\"a\":1}", "{\"b\":\"é\"}", "[1,2]", "{\"last\":true}"].map { Array($0.utf8) }

  func lines(_ events: [LineFramer.Event]) -> [[UInt8]] {
    events.compactMap { if case .line(let l) = $0 { return l } else { return nil } }
  }

  /// Every chunk size from 1 byte to the whole stream gives the same lines.
  @Test func sameLinesAtEveryChunkBoundary() {
    for size in 1...stream.count {
      var framer = LineFramer()
      var events: [LineFramer.Event] = []
      var i = 0
      while i < stream.count {
        events += framer.push(Array(stream[i..<min(i + size, stream.count)]))
        i += size
      }
      events += framer.finish()
      #expect(lines(events) == expected, "chunk size \(size)")
    }
  }

  /// Every split point of the stream into two chunks.
  @Test func everyTwoWaySplit() {
    for cut in 0...stream.count {
      var framer = LineFramer()
      let events = framer.push(Array(stream[..<cut])) + framer.push(Array(stream[cut...])) + framer.finish()
      #expect(lines(events) == expected, "cut at \(cut)")
    }
  }

  @Test func overLongLineIsReportedOnceAndTheNextLineSurvives() {
    var framer = LineFramer(maxLineBytes: 16)
    var events = framer.push(Array(repeating: UInt8(ascii: "x"), count: 10))
    events += framer.push(Array(repeating: UInt8(ascii: "x"), count: 10))
    events += framer.push(Array(repeating: UInt8(ascii: "x"), count: 30))
    events += framer.push(Array("xx\n{\"ok\":1}\n".utf8))
    #expect(events == [.tooLong, .line(Array("{\"ok\":1}".utf8))])
  }

  @Test func overLongLineInOneChunkWithItsNewline() {
    var framer = LineFramer(maxLineBytes: 16)
    let events = framer.push(Array(repeating: UInt8(ascii: "x"), count: 40) + [0x0A] + Array("[]\n".utf8))
    #expect(events == [.tooLong, .line(Array("[]".utf8))])
  }
}
