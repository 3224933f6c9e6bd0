/// Compact JSON output with sorted object keys (stable, diffable output).
/// Never emits a raw newline, so one value is always one line on the wire.
public enum JSONWriter {
  public static func string(_ value: JSONValue) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(128)
    write(value, into: &out)
    return String(decoding: out, as: UTF8.self)
  }

  /// `pretty`: indented by two spaces, one member per line (for people;
  /// the wire format stays compact).
  public static func string(_ value: JSONValue, pretty: Bool) -> String {
    guard pretty else { return string(value) }
    var out: [UInt8] = []
    writePretty(value, indent: 0, into: &out)
    return String(decoding: out, as: UTF8.self)
  }

  static func writePretty(_ value: JSONValue, indent: Int, into out: inout [UInt8]) {
    func pad(_ n: Int) { out.append(contentsOf: [UInt8](repeating: 0x20, count: n)) }
    switch value {
    case .array(let a) where !a.isEmpty:
      out.append(contentsOf: "[\n".utf8)
      for (n, v) in a.enumerated() {
        pad(indent + 2)
        writePretty(v, indent: indent + 2, into: &out)
        out.append(contentsOf: (n + 1 < a.count ? ",\n" : "\n").utf8)
      }
      pad(indent)
      out.append(UInt8(ascii: "]"))
    case .object(let o) where !o.isEmpty:
      out.append(contentsOf: "{\n".utf8)
      let keys = o.keys.sorted()
      for (n, key) in keys.enumerated() {
        pad(indent + 2)
        writeString(key, into: &out)
        out.append(contentsOf: ": ".utf8)
        writePretty(o[key]!, indent: indent + 2, into: &out)
        out.append(contentsOf: (n + 1 < keys.count ? ",\n" : "\n").utf8)
      }
      pad(indent)
      out.append(UInt8(ascii: "}"))
    default:
      write(value, into: &out)
    }
  }

  public static func bytes(_ value: JSONValue) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(128)
    write(value, into: &out)
    return out
  }

  public static func write(_ value: JSONValue, into out: inout [UInt8]) {
    switch value {
    case .null: out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
    case .bool(let b): out.append(contentsOf: b ? Array("true".utf8) : Array("false".utf8))
    case .int(let i): out.append(contentsOf: String(i).utf8)
    case .double(let d):
      if !d.isFinite {
        out.append(contentsOf: "null".utf8)
      } else if d.rounded() == d && abs(d) < 1e15 {
        out.append(contentsOf: String(Int64(d)).utf8)
      } else {
        out.append(contentsOf: "\(d)".utf8)
      }
    case .string(let s): writeString(s, into: &out)
    case .array(let a):
      out.append(UInt8(ascii: "["))
      for (n, v) in a.enumerated() {
        if n > 0 { out.append(UInt8(ascii: ",")) }
        write(v, into: &out)
      }
      out.append(UInt8(ascii: "]"))
    case .object(let o):
      out.append(UInt8(ascii: "{"))
      for (n, key) in o.keys.sorted().enumerated() {
        if n > 0 { out.append(UInt8(ascii: ",")) }
        writeString(key, into: &out)
        out.append(UInt8(ascii: ":"))
        write(o[key]!, into: &out)
      }
      out.append(UInt8(ascii: "}"))
    }
  }

  static let hex: [UInt8] = Array("0123456789abcdef".utf8)

  public static func writeString(_ s: String, into out: inout [UInt8]) {
    out.append(0x22)
    for b in s.utf8 {
      switch b {
      case 0x22: out.append(0x5C); out.append(0x22)
      case 0x5C: out.append(0x5C); out.append(0x5C)
      case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
      case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
      case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
      case 0x00..<0x20:
        out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xF)]])
      default: out.append(b)
      }
    }
    out.append(0x22)
  }
}
