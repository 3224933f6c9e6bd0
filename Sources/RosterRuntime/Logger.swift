import Foundation
import JSON
import Synchronization

public enum LogLevel: String, Sendable, Comparable, CaseIterable {
  case debug, info, warning, error
  var rank: Int { LogLevel.allCases.firstIndex(of: self)! }
  public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}

public enum LogFormat: String, Sendable { case text, json }

/// Structured logs on stderr, one line per record. Callers pass only what is
/// safe to log: method names, ids, durations, outcomes — never params,
/// tokens or message bodies.
public final class Logger: Sendable {
  public let process: String
  public let level: LogLevel
  public let format: LogFormat
  private let lock = Mutex(())

  public init(process: String, level: LogLevel = .info, format: LogFormat = .text) {
    self.process = process
    self.level = level
    self.format = format
  }

  public func debug(_ message: String, _ fields: [String: JSONValue] = [:]) { log(.debug, message, fields) }
  public func info(_ message: String, _ fields: [String: JSONValue] = [:]) { log(.info, message, fields) }
  public func warning(_ message: String, _ fields: [String: JSONValue] = [:]) { log(.warning, message, fields) }
  public func error(_ message: String, _ fields: [String: JSONValue] = [:]) { log(.error, message, fields) }

  public func log(_ lvl: LogLevel, _ message: String, _ fields: [String: JSONValue]) {
    guard lvl >= level else { return }
    let ts = Self.timestamp()
    var line: String
    switch format {
    case .json:
      var o = fields
      o["ts"] = .string(ts)
      o["level"] = .string(lvl.rawValue)
      o["process"] = .string(process)
      o["msg"] = .string(message)
      line = JSONWriter.string(.object(o))
    case .text:
      line = "\(ts) \(lvl.rawValue.uppercased()) [\(process)] \(message)"
      for key in fields.keys.sorted() {
        let v = fields[key]!
        line += " \(key)=" + (v.stringValue.map { $0.contains(" ") ? "\"\($0)\"" : $0 } ?? JSONWriter.string(v))
      }
    }
    line += "\n"
    lock.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
  }

  static func timestamp() -> String {
    var tv = timeval()
    gettimeofday(&tv, nil)
    var t = tv.tv_sec
    var tmv = tm()
    gmtime_r(&t, &tmv)
    return String(
      format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday, tmv.tm_hour, tmv.tm_min,
      tmv.tm_sec, Int(tv.tv_usec / 1000))
  }
}
