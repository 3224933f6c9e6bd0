/// HTML text. Interpolating a `String` escapes it; only `HTML` values (built
/// the same way) are inserted as they are. A page is therefore escaped by
/// default, and raw markup has to be written as a literal in the source.
public struct HTML: Sendable, Equatable, ExpressibleByStringInterpolation, CustomStringConvertible {
  public private(set) var text: String

  public init(stringLiteral value: String) { text = value }
  public init(stringInterpolation: Interpolation) { text = stringInterpolation.text }

  public var description: String { text }

  public static let empty: HTML = ""

  /// Markup only when `condition` holds (a conditional written as a plain
  /// String literal would be escaped as text).
  public static func when(_ condition: Bool, _ markup: HTML) -> HTML { condition ? markup : .empty }

  public static func + (a: HTML, b: HTML) -> HTML {
    var out = a
    out.text += b.text
    return out
  }

  public static func += (a: inout HTML, b: HTML) { a.text += b.text }

  public struct Interpolation: StringInterpolationProtocol {
    var text = ""
    public init(literalCapacity: Int, interpolationCount: Int) { text.reserveCapacity(literalCapacity + 16 * interpolationCount) }
    public mutating func appendLiteral(_ literal: String) { text += literal }
    /// Text: escaped (element content and quoted attribute values alike).
    public mutating func appendInterpolation(_ s: String) { text += WebPage.escape(s) }
    public mutating func appendInterpolation(_ s: Substring) { text += WebPage.escape(String(s)) }
    public mutating func appendInterpolation(_ n: Int) { text += String(n) }
    public mutating func appendInterpolation(_ n: Int64) { text += String(n) }
    public mutating func appendInterpolation(_ h: HTML) { text += h.text }
    public mutating func appendInterpolation(_ hs: [HTML]) { for h in hs { text += h.text } }
    public mutating func appendInterpolation(_ h: HTML?) { if let h { text += h.text } }
  }
}

extension Array where Element == HTML {
  public func joined() -> HTML { reduce(HTML.empty, +) }
}
