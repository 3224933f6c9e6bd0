import Foundation
import JSON

public enum CompareOp: String, Sendable, CaseIterable { case eq, ne, co, sw, ew, gt, ge, lt, le }

/// A parsed filter (RFC 7644 §3.4.2.2).
public indirect enum Filter: Sendable, Equatable {
  case compare(AttrPath, CompareOp, JSONValue)
  case present(AttrPath)
  case and(Filter, Filter)
  case or(Filter, Filter)
  case not(Filter)
  /// `attr[filter]`: the inner filter's paths are relative to `attr`'s values.
  case valuePath(AttrPath, Filter)
}

/// Recursive-descent filter parser. Precedence: grouping > not > and > or;
/// attribute names and operators are case-insensitive.
public struct FilterParser {
  public static let maxLength = 8192
  public static let maxDepth = 32

  enum Token: Equatable {
    case word(String)  // attribute paths, operators, keywords
    case string(String)
    case number(JSONValue)
    case lparen, rparen, lbracket, rbracket
  }

  var tokens: [Token]
  var i = 0
  var depth = 0

  public static func parse(_ text: String) throws(SCIMError) -> Filter {
    guard text.utf8.count <= maxLength else {
      throw .invalidFilter("The filter is longer than \(maxLength) characters.")
    }
    var p = FilterParser(tokens: try tokenize(text))
    guard !p.tokens.isEmpty else { throw .invalidFilter("The filter is empty.") }
    let f = try p.parseOr()
    guard p.i == p.tokens.count else { throw .invalidFilter("Unexpected text after the end of the filter.") }
    return f
  }

  static func tokenize(_ text: String) throws(SCIMError) -> [Token] {
    var out: [Token] = []
    let chars = Array(text.unicodeScalars)
    var i = 0
    while i < chars.count {
      let c = chars[i]
      switch c {
      case " ", "\t", "\n", "\r": i += 1
      case "(": out.append(.lparen); i += 1
      case ")": out.append(.rparen); i += 1
      case "[": out.append(.lbracket); i += 1
      case "]": out.append(.rbracket); i += 1
      case "\"":
        var j = i + 1
        var escaped = false
        while j < chars.count {
          if escaped { escaped = false } else if chars[j] == "\\" { escaped = true } else if chars[j] == "\"" { break }
          j += 1
        }
        guard j < chars.count else { throw .invalidFilter("Unterminated string in filter.") }
        var s = String.UnicodeScalarView()
        s.append(contentsOf: chars[i...j])
        guard case .string(let value) = try? JSONParser.parse(String(s)) else { throw .invalidFilter("Invalid string literal in filter.") }
        // Text columns cannot hold U+0000 (and a database driver would cut the value there).
        if value.utf8.contains(0) { throw .invalidFilter("A string in the filter contains a NUL character (U+0000).") }
        out.append(.string(value))
        i = j + 1
      default:
        var j = i
        while j < chars.count, !" \t\n\r()[]\"".unicodeScalars.contains(chars[j]) { j += 1 }
        var s = String.UnicodeScalarView()
        s.append(contentsOf: chars[i..<j])
        let word = String(s)
        if let first = word.first, first == "-" || first.isNumber {
          guard let n = try? JSONParser.parse(word), n.doubleValue != nil else { throw .invalidFilter("Invalid number '\(word.prefix(50))' in filter.") }
          out.append(.number(n))
        } else {
          out.append(.word(word))
        }
        i = j
      }
    }
    return out
  }

  func peekWord() -> String? {
    if i < tokens.count, case .word(let w) = tokens[i] { return w.lowercased() }
    return nil
  }

  mutating func parseOr() throws(SCIMError) -> Filter {
    var left = try parseAnd()
    while peekWord() == "or" {
      i += 1
      left = .or(left, try parseAnd())
    }
    return left
  }

  mutating func parseAnd() throws(SCIMError) -> Filter {
    var left = try parseUnary()
    while peekWord() == "and" {
      i += 1
      left = .and(left, try parseUnary())
    }
    return left
  }

  mutating func parseUnary() throws(SCIMError) -> Filter {
    depth += 1
    defer { depth -= 1 }
    guard depth <= Self.maxDepth else { throw .invalidFilter("The filter is nested deeper than \(Self.maxDepth) levels.") }
    guard i < tokens.count else { throw .invalidFilter("The filter ends too early.") }
    if peekWord() == "not" {
      i += 1
      guard i < tokens.count, tokens[i] == .lparen else { throw .invalidFilter("'not' must be followed by '('.") }
      return .not(try parseUnary())
    }
    if tokens[i] == .lparen {
      i += 1
      let inner = try parseOr()
      guard i < tokens.count, tokens[i] == .rparen else { throw .invalidFilter("Missing ')' in filter.") }
      i += 1
      return inner
    }
    guard case .word(let w) = tokens[i] else { throw .invalidFilter("Expected an attribute name in filter.") }
    i += 1
    if i < tokens.count, tokens[i] == .lbracket {
      // valuePath: attr[filter], optionally followed by .sub op value (Entra's
      // `emails[type eq "work"].value eq "x"`).
      let path = try attrPath(w)
      i += 1
      let inner = try parseOr()
      guard i < tokens.count, tokens[i] == .rbracket else { throw .invalidFilter("Missing ']' in filter.") }
      i += 1
      if let next = peekWord(), next.hasPrefix(".") {
        i += 1
        let subName = String(next.dropFirst())
        guard AttrPath.isName(subName) else { throw .invalidFilter("Invalid sub-attribute after ']'.") }
        let tail = try comparison(AttrPath(name: subName))
        return .valuePath(path, .and(inner, tail))
      }
      return .valuePath(path, inner)
    }
    return try comparison(try attrPath(w))
  }

  func attrPath(_ w: String) throws(SCIMError) -> AttrPath {
    do { return try AttrPath.parse(w) } catch { throw .invalidFilter(error.detail) }
  }

  mutating func comparison(_ path: AttrPath) throws(SCIMError) -> Filter {
    guard let opWord = peekWord() else { throw .invalidFilter("Expected an operator after '\(path)'.") }
    i += 1
    if opWord == "pr" { return .present(path) }
    guard let op = CompareOp(rawValue: opWord) else {
      throw .invalidFilter("Unknown operator '\(opWord.prefix(20))'; expected eq, ne, co, sw, ew, gt, ge, lt, le or pr.")
    }
    guard i < tokens.count else { throw .invalidFilter("Expected a value after '\(opWord)'.") }
    let value: JSONValue
    switch tokens[i] {
    case .string(let s): value = .string(s)
    case .number(let n): value = n
    case .word(let w) where ["true", "false", "null"].contains(w.lowercased()):
      value = w.lowercased() == "null" ? .null : .bool(w.lowercased() == "true")
    default: throw .invalidFilter("Expected a string, number, true, false or null after '\(opWord)'.")
    }
    i += 1
    return .compare(path, op, value)
  }
}

/// Evaluates a filter against one JSON value (used for PATCH value filters
/// such as `emails[type eq "work"]`, where paths are relative to the element).
public enum FilterEvaluator {
  public static func matches(_ f: Filter, _ v: JSONValue) -> Bool {
    switch f {
    case .and(let a, let b): return matches(a, v) && matches(b, v)
    case .or(let a, let b): return matches(a, v) || matches(b, v)
    case .not(let a): return !matches(a, v)
    case .present(let p):
      guard let x = lookup(p, v) else { return false }
      if case .string(let s) = x { return !s.isEmpty }
      if case .array(let a) = x { return !a.isEmpty }
      return !x.isNull
    case .compare(let p, let op, let expected):
      guard let x = lookup(p, v) else { return op == .ne && !expected.isNull ? true : (op == .eq && expected.isNull) }
      if case .array(let items) = x { return items.contains { compare($0, op, expected) } }
      return compare(x, op, expected)
    case .valuePath(let p, let inner):
      guard let x = lookup(p, v) else { return false }
      if case .array(let items) = x { return items.contains { matches(inner, $0) } }
      return matches(inner, x)
    }
  }

  static func lookup(_ p: AttrPath, _ v: JSONValue) -> JSONValue? {
    guard case .object(let o) = v else { return nil }
    guard let (_, top) = o.first(where: { $0.key.lowercased() == p.name.lowercased() }) else { return nil }
    guard let sub = p.sub else { return top }
    if case .array(let items) = top {
      return .array(items.compactMap { $0.objectValue?.first(where: { $0.key.lowercased() == sub.lowercased() })?.value })
    }
    return top.objectValue?.first(where: { $0.key.lowercased() == sub.lowercased() })?.value
  }

  static func compare(_ x: JSONValue, _ op: CompareOp, _ y: JSONValue) -> Bool {
    switch (x, y) {
    case (.string(let a), .string(let b)):
      let l = a.lowercased(), r = b.lowercased()
      switch op {
      case .eq: return l == r
      case .ne: return l != r
      case .co: return l.contains(r)
      case .sw: return l.hasPrefix(r)
      case .ew: return l.hasSuffix(r)
      case .gt: return l > r
      case .ge: return l >= r
      case .lt: return l < r
      case .le: return l <= r
      }
    case (.bool(let a), .bool(let b)):
      return op == .eq ? a == b : op == .ne ? a != b : false
    case (.string(let s), .bool(let b)):
      // Entra sends booleans as strings ("False").
      guard let a = Bool(s.lowercased()) else { return false }
      return op == .eq ? a == b : op == .ne ? a != b : false
    default:
      if let a = x.doubleValue, let b = y.doubleValue {
        switch op {
        case .eq: return a == b
        case .ne: return a != b
        case .gt: return a > b
        case .ge: return a >= b
        case .lt: return a < b
        case .le: return a <= b
        default: return false
        }
      }
      if y.isNull { return op == .ne ? !x.isNull : (op == .eq && x.isNull) }
      return false
    }
  }
}
