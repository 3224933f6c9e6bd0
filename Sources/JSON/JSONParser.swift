/// Why a JSON text was refused.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
  public enum Kind: Sendable, Equatable { case syntax, invalidUTF8, tooDeep }
  public let kind: Kind
  public let message: String
  public let offset: Int

  public var description: String { "\(message) at byte \(offset)" }
}

/// A strict RFC 8259 parser with a nesting limit. Written by hand (rather than
/// Foundation's JSONSerialization) so that the depth limit, invalid UTF-8 and
/// integer/double distinction are ours to decide and report precisely.
public struct JSONParser {
  public static let defaultMaxDepth = 64

  public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSONValue {
    try parse(Array(text.utf8), maxDepth: maxDepth)
  }

  public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSONValue {
    try bytes.withUnsafeBufferPointer { buf throws(JSONParseError) in try parse(bytes: buf, maxDepth: maxDepth) }
  }

  public static func parse(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int = defaultMaxDepth) throws(JSONParseError)
    -> JSONValue
  {
    var p = Cursor(bytes: bytes, maxDepth: maxDepth)
    p.skipWhitespace()
    let v = try p.value(depth: 0)
    p.skipWhitespace()
    if p.i != bytes.count { throw p.error("unexpected data after the JSON value") }
    return v
  }

  struct Cursor {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    var i = 0

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
      self.bytes = bytes
      self.maxDepth = maxDepth
    }

    func error(_ message: String, _ kind: JSONParseError.Kind = .syntax) -> JSONParseError {
      JSONParseError(kind: kind, message: message, offset: i)
    }

    mutating func skipWhitespace() {
      while i < bytes.count {
        switch bytes[i] {
        case 0x20, 0x09, 0x0A, 0x0D: i += 1
        default: return
        }
      }
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
      guard i < bytes.count else { throw error("unexpected end of JSON") }
      switch bytes[i] {
      case UInt8(ascii: "{"): return try object(depth: depth + 1)
      case UInt8(ascii: "["): return try array(depth: depth + 1)
      case UInt8(ascii: "\""): return .string(try string())
      case UInt8(ascii: "t"): try literal("true"); return .bool(true)
      case UInt8(ascii: "f"): try literal("false"); return .bool(false)
      case UInt8(ascii: "n"): try literal("null"); return .null
      case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
      default: throw error("unexpected character")
      }
    }

    mutating func literal(_ word: StaticString) throws(JSONParseError) {
      let n = word.utf8CodeUnitCount
      guard i + n <= bytes.count else { throw error("unexpected end of JSON") }
      let w = word.utf8Start
      for k in 0..<n where bytes[i + k] != w[k] { throw error("invalid literal") }
      i += n
    }

    mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
      if depth > maxDepth { throw error("JSON nested deeper than \(maxDepth) levels", .tooDeep) }
      i += 1
      var result: [String: JSONValue] = [:]
      skipWhitespace()
      if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(result) }
      while true {
        skipWhitespace()
        guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw error("expected a string key") }
        let key = try string()
        skipWhitespace()
        guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw error("expected ':'") }
        i += 1
        skipWhitespace()
        result[key] = try value(depth: depth)
        skipWhitespace()
        guard i < bytes.count else { throw error("unexpected end of JSON") }
        if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
        if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(result) }
        throw error("expected ',' or '}'")
      }
    }

    mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
      if depth > maxDepth { throw error("JSON nested deeper than \(maxDepth) levels", .tooDeep) }
      i += 1
      var result: [JSONValue] = []
      skipWhitespace()
      if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(result) }
      while true {
        skipWhitespace()
        result.append(try value(depth: depth))
        skipWhitespace()
        guard i < bytes.count else { throw error("unexpected end of JSON") }
        if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
        if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(result) }
        throw error("expected ',' or ']'")
      }
    }

    mutating func number() throws(JSONParseError) -> JSONValue {
      let start = i
      var isInteger = true
      if bytes[i] == UInt8(ascii: "-") { i += 1 }
      guard i < bytes.count else { throw error("invalid number") }
      if bytes[i] == UInt8(ascii: "0") {
        i += 1
      } else if bytes[i] >= UInt8(ascii: "1") && bytes[i] <= UInt8(ascii: "9") {
        while i < bytes.count, isDigit(bytes[i]) { i += 1 }
      } else {
        throw error("invalid number")
      }
      if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
        isInteger = false
        i += 1
        guard i < bytes.count, isDigit(bytes[i]) else { throw error("invalid number") }
        while i < bytes.count, isDigit(bytes[i]) { i += 1 }
      }
      if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
        isInteger = false
        i += 1
        if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count, isDigit(bytes[i]) else { throw error("invalid number") }
        while i < bytes.count, isDigit(bytes[i]) { i += 1 }
      }
      let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
      if isInteger, let n = Int64(text) { return .int(n) }
      guard let d = Double(text), d.isFinite else { throw error("number out of range") }
      return .double(d)
    }

    @inline(__always) func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    mutating func string() throws(JSONParseError) -> String {
      i += 1  // opening quote
      var out: [UInt8] = []
      var runStart = i
      var needsValidation = false
      while true {
        guard i < bytes.count else { throw error("unterminated string") }
        let b = bytes[i]
        if b == UInt8(ascii: "\"") {
          if out.isEmpty {
            // Fast path: no escapes.
            let run = UnsafeBufferPointer(rebasing: bytes[runStart..<i])
            i += 1
            return try makeString(run, validate: needsValidation)
          }
          out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i]))
          i += 1
          return try out.withUnsafeBufferPointer { buf throws(JSONParseError) in
            try makeString(buf, validate: needsValidation)
          }
        }
        if b < 0x20 { throw error("control character in string") }
        if b >= 0x80 { needsValidation = true }
        if b == UInt8(ascii: "\\") {
          out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i]))
          i += 1
          guard i < bytes.count else { throw error("unterminated string") }
          let e = bytes[i]
          i += 1
          switch e {
          case UInt8(ascii: "\""): out.append(0x22)
          case UInt8(ascii: "\\"): out.append(0x5C)
          case UInt8(ascii: "/"): out.append(0x2F)
          case UInt8(ascii: "b"): out.append(0x08)
          case UInt8(ascii: "f"): out.append(0x0C)
          case UInt8(ascii: "n"): out.append(0x0A)
          case UInt8(ascii: "r"): out.append(0x0D)
          case UInt8(ascii: "t"): out.append(0x09)
          case UInt8(ascii: "u"):
            var scalar = try hex4()
            if scalar >= 0xD800 && scalar <= 0xDBFF {
              guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                throw error("unpaired surrogate in \\u escape")
              }
              i += 2
              let low = try hex4()
              guard low >= 0xDC00 && low <= 0xDFFF else { throw error("unpaired surrogate in \\u escape") }
              scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
              throw error("unpaired surrogate in \\u escape")
            }
            guard let u = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
            out.append(contentsOf: Array(String(Character(u)).utf8))
          default: throw error("invalid escape sequence")
          }
          runStart = i
          continue
        }
        i += 1
      }
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
      guard i + 4 <= bytes.count else { throw error("invalid \\u escape") }
      var v: UInt32 = 0
      for _ in 0..<4 {
        let c = bytes[i]
        let d: UInt32
        switch c {
        case 0x30...0x39: d = UInt32(c - 0x30)
        case 0x41...0x46: d = UInt32(c - 0x41 + 10)
        case 0x61...0x66: d = UInt32(c - 0x61 + 10)
        default: throw error("invalid \\u escape")
        }
        v = v * 16 + d
        i += 1
      }
      return v
    }

    func makeString(_ buf: UnsafeBufferPointer<UInt8>, validate: Bool) throws(JSONParseError) -> String {
      if !validate { return String(decoding: buf, as: UTF8.self) }
      guard let s = String(validating: buf, as: UTF8.self) else { throw error("invalid UTF-8 in string", .invalidUTF8) }
      return s
    }
  }
}
