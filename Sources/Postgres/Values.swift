import Foundation
import JSON

/// A bind parameter as sent to the server (text format).
public enum PGBindValue: Sendable, Equatable {
  case null
  case text(String)
}

/// Types that can be bound as parameters. Values go to the server out of band
/// (PQexecPrepared), never into the SQL text.
public protocol PGBindable {
  var pgBindValue: PGBindValue { get }
}

extension String: PGBindable { public var pgBindValue: PGBindValue { .text(self) } }
extension Substring: PGBindable { public var pgBindValue: PGBindValue { .text(String(self)) } }
extension Int: PGBindable { public var pgBindValue: PGBindValue { .text(String(self)) } }
extension Int64: PGBindable { public var pgBindValue: PGBindValue { .text(String(self)) } }
extension Int32: PGBindable { public var pgBindValue: PGBindValue { .text(String(self)) } }
extension Bool: PGBindable { public var pgBindValue: PGBindValue { .text(self ? "t" : "f") } }
extension Double: PGBindable { public var pgBindValue: PGBindValue { .text(String(self)) } }
extension JSONValue: PGBindable { public var pgBindValue: PGBindValue { .text(JSONWriter.string(self)) } }
extension PGBindValue: PGBindable { public var pgBindValue: PGBindValue { self } }

extension Date: PGBindable {
  public var pgBindValue: PGBindValue { .text(PGTime.format(self)) }
}

/// A text array (`text[]`), e.g. for `= ANY($1::text[])`.
public struct PGTextArray: PGBindable, Sendable {
  public var values: [String]
  public init(_ values: [String]) { self.values = values }

  public var pgBindValue: PGBindValue {
    var s = "{"
    for (i, v) in values.enumerated() {
      if i > 0 { s += "," }
      s += "\""
      for ch in v.unicodeScalars {
        if ch == "\"" || ch == "\\" { s += "\\" }
        s.unicodeScalars.append(ch)
      }
      s += "\""
    }
    return .text(s + "}")
  }
}

/// Converts between PostgreSQL's ISO text output for `timestamptz` (sessions
/// run with TimeZone=UTC) and RFC 3339.
public enum PGTime {
  /// "2026-11-29 00:13:01.123456+00" → "2026-11-29T00:13:01.123456Z"
  public static func rfc3339(_ pg: String) -> String {
    var s = pg
    if let space = s.firstIndex(of: " ") { s.replaceSubrange(space...space, with: "T") }
    if s.hasSuffix("+00") { s.removeLast(3); s += "Z" }
    return s
  }

  public static func format(_ date: Date) -> String {
    let t = date.timeIntervalSince1970
    let secs = Int64(t.rounded(.down))
    let micros = Int64(((t - Double(secs)) * 1_000_000).rounded())
    var tmv = tm()
    var tt = time_t(secs)
    gmtime_r(&tt, &tmv)
    return String(
      format: "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1, Int(tmv.tm_mday),
      Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec), micros)
  }
}

/// Query results, copied out of libpq (the PGresult is freed at once).
public struct PGRows: Sendable {
  public let columns: [String]
  public let values: [[String?]]
  /// Rows touched by INSERT/UPDATE/DELETE (PQcmdTuples).
  public let affected: Int

  public init(columns: [String], values: [[String?]], affected: Int) {
    self.columns = columns
    self.values = values
    self.affected = affected
  }

  public var count: Int { values.count }
  public var isEmpty: Bool { values.isEmpty }
  public var first: PGRow? { values.isEmpty ? nil : PGRow(columns: columns, values: values[0]) }
  public var rows: [PGRow] { values.map { PGRow(columns: columns, values: $0) } }
}

/// One row; typed accessors by column name. A missing column or a value of the
/// wrong shape is a programming error in our SQL, reported as a thrown error.
public struct PGRow: Sendable {
  public let columns: [String]
  public let values: [String?]

  public subscript(_ name: String) -> String? {
    guard let i = columns.firstIndex(of: name) else { return nil }
    return values[i]
  }

  public func string(_ name: String) throws(PGError) -> String {
    guard let v = self[name] else { throw PGError.decoding("column \(name) is NULL or missing") }
    return v
  }
  public func int(_ name: String) throws(PGError) -> Int64 {
    guard let s = self[name], let v = Int64(s) else { throw PGError.decoding("column \(name) is not an integer") }
    return v
  }
  public func optionalInt(_ name: String) -> Int64? { self[name].flatMap { Int64($0) } }
  public func bool(_ name: String) throws(PGError) -> Bool {
    guard let s = self[name] else { throw PGError.decoding("column \(name) is NULL or missing") }
    return s == "t"
  }
  public func double(_ name: String) -> Double? { self[name].flatMap { Double($0) } }
  /// A timestamptz column as RFC 3339 text.
  public func time(_ name: String) -> String? { self[name].map(PGTime.rfc3339) }
  public func json(_ name: String) throws(PGError) -> JSONValue {
    guard let s = self[name] else { return .null }
    do { return try JSONParser.parse(s, maxDepth: 200) } catch { throw PGError.decoding("column \(name) is not JSON") }
  }
  /// A `text[]` or `uuid[]` column (simple elements without quotes or commas).
  public func stringArray(_ name: String) -> [String] {
    guard var s = self[name], s.count >= 2 else { return [] }
    s.removeFirst()
    s.removeLast()
    if s.isEmpty { return [] }
    return s.split(separator: ",").map { part in
      var p = String(part)
      if p.hasPrefix("\"") && p.hasSuffix("\"") && p.count >= 2 { p = String(p.dropFirst().dropLast()) }
      return p
    }
  }
}
