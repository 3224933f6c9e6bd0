import Foundation
import JSON

#if canImport(Glibc)
  import Glibc
#endif

public enum LogLevel: String, Sendable, Comparable, CaseIterable {
  case debug, info, warning, error
  var rank: Int {
    switch self {
    case .debug: return 0
    case .info: return 1
    case .warning: return 2
    case .error: return 3
    }
  }
  public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}

public enum LogFormat: String, Sendable { case text, json }

/// Structured logs on stderr, one line per record. Callers pass only what is
/// safe to log: method names, ids, durations, outcomes — never params,
/// tokens or message bodies.
///
/// Each record is one `write(2)` of a whole line, without a lock: short
/// writes to a pipe or an O_APPEND file do not interleave, and a shared lock
/// here was the main source of contention under load.
public final class Logger: Sendable {
  public let process: String
  public let level: LogLevel
  public let format: LogFormat
  /// Where lines go: stderr, or a file a test reads back.
  let fd: Int32

  public init(process: String, level: LogLevel = .info, format: LogFormat = .text, fd: Int32 = 2) {
    self.process = process
    self.level = level
    self.format = format
    self.fd = fd
  }

  public func debug(_ message: String, _ fields: [String: JSONValue] = [:]) { log(.debug, message, fields) }
  public func info(_ message: String, _ fields: [String: JSONValue] = [:]) { log(.info, message, fields) }
  public func warning(_ message: String, _ fields: [String: JSONValue] = [:]) { log(.warning, message, fields) }
  public func error(_ message: String, _ fields: [String: JSONValue] = [:]) { log(.error, message, fields) }

  public func isEnabled(_ lvl: LogLevel) -> Bool { lvl >= level }

  public func log(_ lvl: LogLevel, _ message: String, _ fields: [String: JSONValue]) {
    guard lvl >= level else { return }
    var line: [UInt8] = []
    line.reserveCapacity(160)
    switch format {
    case .json:
      var o = fields
      o["ts"] = .string(Self.timestamp())
      o["level"] = .string(lvl.rawValue)
      o["process"] = .string(process)
      o["msg"] = .string(message)
      JSONWriter.write(.object(o), into: &line)
    case .text:
      line += Self.timestamp().utf8
      line.append(0x20)
      line += lvl.rawValue.uppercased().utf8
      line += " [".utf8
      line += process.utf8
      line += "] ".utf8
      line += message.utf8
      for key in fields.keys.sorted() {
        line.append(0x20)
        line += key.utf8
        line.append(UInt8(ascii: "="))
        let v = fields[key]!
        if let s = v.stringValue, !s.utf8.contains(0x20), !s.utf8.contains(0x22) {
          line += s.utf8
        } else {
          JSONWriter.write(v, into: &line)
        }
      }
    }
    line.append(0x0A)
    line.withUnsafeBytes { raw in
      var off = 0
      while off < raw.count {
        guard let base = raw.baseAddress else { return }
        let n = Glibc.write(fd, base + off, raw.count - off)
        if n <= 0 { if errno == EINTR { continue } else { return } }
        off += n
      }
    }
  }

  /// RFC 3339 UTC with milliseconds, formatted by hand (String(format:) is slow).
  static func timestamp() -> String {
    var tv = timeval()
    gettimeofday(&tv, nil)
    var t = tv.tv_sec
    var tmv = tm()
    gmtime_r(&t, &tmv)
    var b: [UInt8] = []
    b.reserveCapacity(24)
    func put(_ v: Int, _ width: Int) {
      var digits = [UInt8](repeating: 0x30, count: width)
      var x = v
      for i in stride(from: width - 1, through: 0, by: -1) {
        digits[i] = UInt8(0x30 + x % 10)
        x /= 10
      }
      b += digits
    }
    put(Int(tmv.tm_year) + 1900, 4); b.append(0x2D)
    put(Int(tmv.tm_mon) + 1, 2); b.append(0x2D)
    put(Int(tmv.tm_mday), 2); b.append(0x54)
    put(Int(tmv.tm_hour), 2); b.append(0x3A)
    put(Int(tmv.tm_min), 2); b.append(0x3A)
    put(Int(tmv.tm_sec), 2); b.append(0x2E)
    put(Int(tv.tv_usec / 1000), 3); b.append(0x5A)
    return String(decoding: b, as: UTF8.self)
  }
}
