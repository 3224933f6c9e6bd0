/// A SQL statement whose text can only come from string literals in our own
/// source code: every interpolated value becomes a `$n` bind parameter. SQL
/// built from request input cannot be expressed with this type.
///
///     let q: SQL = "SELECT id FROM members WHERE workspace_id = \(ws) AND lower(email) = lower(\(email))"
public struct SQL: Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
  public private(set) var text: String
  public private(set) var binds: [PGBindValue]

  public init(stringLiteral value: StaticString) {
    text = value.description
    binds = []
  }

  public init(stringInterpolation: Interpolation) {
    text = stringInterpolation.text
    binds = stringInterpolation.binds
  }

  /// An empty fragment, for building a statement piece by piece.
  public static let empty = SQL(parts: "", [])

  init(parts text: String, _ binds: [PGBindValue]) {
    self.text = text
    self.binds = binds
  }

  public var description: String { text }

  public struct Interpolation: StringInterpolationProtocol {
    public typealias StringLiteralType = StaticString
    var text = ""
    var binds: [PGBindValue] = []

    public init(literalCapacity: Int, interpolationCount: Int) {
      text.reserveCapacity(literalCapacity + interpolationCount * 3)
    }

    public mutating func appendLiteral(_ literal: StaticString) {
      text += literal.description
    }

    /// A value: becomes `$n`.
    public mutating func appendInterpolation(_ value: some PGBindable) {
      binds.append(value.pgBindValue)
      text += "$\(binds.count)"
    }

    public mutating func appendInterpolation(_ value: (some PGBindable)?) {
      binds.append(value?.pgBindValue ?? .null)
      text += "$\(binds.count)"
    }

    /// Another fragment built the same way (its parameters are renumbered).
    public mutating func appendInterpolation(sql fragment: SQL) {
      text += SQL.renumber(fragment.text, offset: binds.count)
      binds += fragment.binds
    }
  }

  /// Appends a fragment (its parameters renumbered to follow ours).
  public mutating func append(_ other: SQL) {
    text += SQL.renumber(other.text, offset: binds.count)
    binds += other.binds
  }

  public static func + (lhs: SQL, rhs: SQL) -> SQL {
    var s = lhs
    s.append(rhs)
    return s
  }

  /// Joins fragments with a separator fragment.
  public static func join(_ parts: [SQL], separator: SQL) -> SQL {
    var out = SQL.empty
    for (i, p) in parts.enumerated() {
      if i > 0 { out.append(separator) }
      out.append(p)
    }
    return out
  }

  /// Shifts `$n` placeholders by `offset`. Placeholders appear only where our
  /// interpolation wrote them, never inside literals we did not write.
  static func renumber(_ text: String, offset: Int) -> String {
    // Byte-level: this runs for every composed statement (Foundation's
    // string search showed up in the SCIM create profile).
    let bytes = Array(text.utf8)
    guard offset > 0, bytes.contains(UInt8(ascii: "$")) else { return text }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count + 8)
    var i = 0
    while i < bytes.count {
      let b = bytes[i]
      i += 1
      out.append(b)
      guard b == UInt8(ascii: "$") else { continue }
      var n = 0
      var digits = 0
      while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
        n = n &* 10 &+ Int(bytes[i] - 0x30)
        digits += 1
        i += 1
      }
      if digits > 0 { out += String(n + offset).utf8 }
    }
    return String(decoding: out, as: UTF8.self)
  }
}
