import Foundation

/// One email as it goes on the wire (RFC 5322 + MIME), built from a template
/// rendering. Lines end in CRLF and stay under 998 octets; the body is
/// quoted-printable UTF-8; a non-ASCII subject is RFC 2047 encoded.
public struct MailMessage: Sendable, Equatable {
  public var from: String
  public var to: String
  public var subject: String
  public var text: String
  public var messageId: String
  public var date: Date

  public init(from: String, to: String, subject: String, text: String, messageId: String, date: Date) {
    self.from = from
    self.to = to
    self.subject = subject
    self.text = text
    self.messageId = messageId
    self.date = date
  }

  public func render() -> [UInt8] {
    var h = ""
    h += "Date: \(MIME.rfc5322Date(date))\r\n"
    h += "From: Roster <\(from)>\r\n"
    h += "To: <\(to)>\r\n"
    h += MIME.header("Subject", subject)
    h += "Message-ID: \(messageId)\r\n"
    h += "MIME-Version: 1.0\r\n"
    h += "Content-Type: text/plain; charset=utf-8\r\n"
    h += "Content-Transfer-Encoding: quoted-printable\r\n"
    h += "Auto-Submitted: auto-generated\r\n"
    h += "\r\n"
    return Array(h.utf8) + Array(MIME.quotedPrintable(text).utf8)
  }
}

public enum MIME {
  /// "Sun, 29 Nov 2026 01:23:19 +0000"
  public static func rfc5322Date(_ d: Date) -> String {
    var t = time_t(d.timeIntervalSince1970)
    var tmv = tm()
    gmtime_r(&t, &tmv)
    let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(days[Int(tmv.tm_wday)]), \(two(tmv.tm_mday)) \(months[Int(tmv.tm_mon)]) \(tmv.tm_year + 1900) \(two(tmv.tm_hour)):\(two(tmv.tm_min)):\(two(tmv.tm_sec)) +0000"
  }

  /// A header field; non-ASCII values become RFC 2047 encoded-words
  /// (UTF-8, Q encoding), folded so no line exceeds 76 characters.
  public static func header(_ name: String, _ value: String) -> String {
    let clean = value.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
    if clean.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 }) && name.count + 2 + clean.utf8.count <= 998 {
      return "\(name): \(clean)\r\n"
    }
    // Encoded words of at most 75 characters, never splitting a UTF-8 sequence.
    var words: [String] = []
    var current = ""
    for ch in clean {
      var encoded = ""
      for b in String(ch).utf8 {
        let c = UInt8(b)
        if (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) {
          encoded.append(Character(Unicode.Scalar(c)))
        } else if c == 0x20 {
          encoded += "_"
        } else {
          encoded += String(format: "=%02X", c)
        }
      }
      if current.count + encoded.count > 45 {  // keeps "Name: =?UTF-8?Q?…?=" well under 76
        words.append(current)
        current = ""
      }
      current += encoded
    }
    if !current.isEmpty { words.append(current) }
    return "\(name): " + words.map { "=?UTF-8?Q?\($0)?=" }.joined(separator: "\r\n ") + "\r\n"
  }

  /// Quoted-printable (RFC 2045) with CRLF line ends and soft breaks at 76.
  /// A leading "." is encoded too, so the body never relies on SMTP dot-stuffing alone.
  public static func quotedPrintable(_ text: String) -> String {
    var out = ""
    let lines = text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
    for (n, line) in lines.enumerated() {
      var encodedLine = ""
      var length = 0
      let bytes = Array(line.utf8)
      for (i, b) in bytes.enumerated() {
        var piece: String
        let last = i == bytes.count - 1
        if (b == 0x20 || b == 0x09) && last {
          piece = String(format: "=%02X", b)  // trailing whitespace must be encoded
        } else if (b >= 33 && b <= 126 && b != 61) || b == 0x20 || b == 0x09 {
          piece = String(Character(Unicode.Scalar(b)))
          if i == 0 && b == 0x2E { piece = "=2E" }
        } else {
          piece = String(format: "=%02X", b)
        }
        if length + piece.count > 75 {
          encodedLine += "=\r\n"
          length = 0
        }
        encodedLine += piece
        length += piece.count
      }
      out += encodedLine
      if n < lines.count - 1 { out += "\r\n" }
    }
    return out + "\r\n"
  }
}
