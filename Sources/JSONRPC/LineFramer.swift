/// Splits a byte stream into newline-terminated lines, whatever the chunk
/// boundaries. A trailing `\r` is dropped (CRLF clients), blank lines are
/// skipped, and a line longer than `maxLineBytes` is reported once and then
/// discarded up to its newline so the connection can go on.
public struct LineFramer: Sendable {
  public enum Event: Equatable, Sendable {
    case line([UInt8])
    case tooLong
  }

  public let maxLineBytes: Int
  private var buffer: [UInt8] = []
  /// Where the newline scan resumes in `buffer` (bytes before it hold no newline).
  private var scanFrom = 0
  /// True while dropping the rest of an over-long line.
  private var discarding = false

  public init(maxLineBytes: Int = 1 << 20) {
    self.maxLineBytes = maxLineBytes
  }

  /// Bytes waiting for their newline.
  public var pendingCount: Int { buffer.count }

  /// True when part of a line has arrived and its newline has not.
  public var isMidLine: Bool { !buffer.isEmpty || discarding }

  public mutating func push(_ chunk: UnsafeBufferPointer<UInt8>) -> [Event] {
    var events: [Event] = []
    var start = 0
    if discarding {
      guard let nl = chunk.firstIndex(of: 0x0A) else { return [] }
      discarding = false
      start = nl + 1
    }
    buffer.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[start...]))
    var lineStart = 0
    var i = scanFrom
    while i < buffer.count {
      if buffer[i] == 0x0A {
        emit(buffer[lineStart..<i], into: &events)
        lineStart = i + 1
      }
      i += 1
    }
    if lineStart > 0 { buffer.removeFirst(lineStart) }
    scanFrom = buffer.count
    if buffer.count > maxLineBytes {
      events.append(.tooLong)
      buffer.removeAll(keepingCapacity: false)
      scanFrom = 0
      discarding = true
    }
    return events
  }

  public mutating func push(_ chunk: [UInt8]) -> [Event] {
    chunk.withUnsafeBufferPointer { push($0) }
  }

  /// End of input: a last line without a newline still counts.
  public mutating func finish() -> [Event] {
    var events: [Event] = []
    if !discarding { emit(buffer[...], into: &events) }
    buffer.removeAll()
    scanFrom = 0
    discarding = false
    return events
  }

  private func emit(_ slice: ArraySlice<UInt8>, into events: inout [Event]) {
    var line = slice
    if line.last == 0x0D { line = line.dropLast() }
    if line.count > maxLineBytes {
      events.append(.tooLong)
      return
    }
    if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }
    events.append(.line(Array(line)))
  }
}
