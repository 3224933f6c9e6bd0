import CZlib
import Foundation

/// P1: the AuthnRequest Roster sends over the HTTP-Redirect binding.
public struct AuthnRequest: Sendable {
  /// ≥ 128 random bits; an XML ID must not start with a digit.
  public var id: String
  public var issueInstant: Date
  public var destination: String
  public var acsURL: String
  public var spEntityId: String

  public init(id: String, issueInstant: Date, destination: String, acsURL: String, spEntityId: String) {
    self.id = id
    self.issueInstant = issueInstant
    self.destination = destination
    self.acsURL = acsURL
    self.spEntityId = spEntityId
  }

  public var xml: String {
    """
    <samlp:AuthnRequest xmlns:samlp="\(SAMLNS.protocol_)" xmlns:saml="\(SAMLNS.assertion)" ID="\(XMLText.escape(id))" \
    Version="2.0" IssueInstant="\(XSDateTime.format(issueInstant))" Destination="\(XMLText.escape(destination))" \
    AssertionConsumerServiceURL="\(XMLText.escape(acsURL))" ProtocolBinding="\(SAMLNS.postBinding)">\
    <saml:Issuer>\(XMLText.escape(spEntityId))</saml:Issuer>\
    <samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified" AllowCreate="true"/>\
    </samlp:AuthnRequest>
    """
  }

  /// The IdP's SSO URL with `SAMLRequest` (raw DEFLATE, base64) and
  /// `RelayState` added to whatever query it already has.
  public func redirectURL(ssoURL: String, relayState: String, extra: [(String, String)] = []) -> String? {
    guard let deflated = Deflate.raw(Array(xml.utf8)) else { return nil }
    var items = [("SAMLRequest", Base64Text.encode(deflated)), ("RelayState", relayState)] + extra
    items = items.filter { !$0.1.isEmpty }
    let query = items.map { "\(URLText.component($0.0))=\(URLText.component($0.1))" }.joined(separator: "&")
    return ssoURL + (ssoURL.contains("?") ? "&" : "?") + query
  }
}

/// RFC 1951 raw DEFLATE through zlib (the HTTP-Redirect binding's encoding).
public enum Deflate {
  public static func raw(_ input: [UInt8]) -> [UInt8]? {
    var stream = z_stream()
    guard roster_deflateInit2(&stream, Z_BEST_COMPRESSION, -15) == Z_OK else { return nil }
    defer { deflateEnd(&stream) }
    var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 16)
    var source = input
    let rc = source.withUnsafeMutableBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        stream.next_in = src.baseAddress
        stream.avail_in = UInt32(src.count)
        stream.next_out = dst.baseAddress
        stream.avail_out = UInt32(dst.count)
        return deflate(&stream, Z_FINISH)
      }
    }
    guard rc == Z_STREAM_END else { return nil }
    return Array(out.prefix(Int(stream.total_out)))
  }

  /// Inflates raw DEFLATE, refusing output beyond `limit` bytes (a bomb).
  public static func inflate(_ input: [UInt8], limit: Int) -> [UInt8]? {
    var stream = z_stream()
    guard roster_inflateInit2(&stream, -15) == Z_OK else { return nil }
    defer { inflateEnd(&stream) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16_384)
    var source = input
    return source.withUnsafeMutableBufferPointer { src -> [UInt8]? in
      stream.next_in = src.baseAddress
      stream.avail_in = UInt32(src.count)
      while true {
        let rc = chunk.withUnsafeMutableBufferPointer { dst -> Int32 in
          stream.next_out = dst.baseAddress
          stream.avail_out = UInt32(dst.count)
          return CZlib.inflate(&stream, Z_NO_FLUSH)
        }
        let produced = chunk.count - Int(stream.avail_out)
        out += chunk[0..<produced]
        if out.count > limit { return nil }
        if rc == Z_STREAM_END { return out }
        if rc != Z_OK || (produced == 0 && stream.avail_in == 0) { return nil }
      }
    }
  }
}

enum Base64Text {
  static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
}

/// Escaping for XML text and attribute values we write.
public enum XMLText {
  public static func escape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for ch in s.unicodeScalars {
      switch ch {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&apos;"
      default: out.unicodeScalars.append(ch)
      }
    }
    return out
  }
}

/// Percent-encoding of query components (RFC 3986 unreserved characters kept).
public enum URLText {
  public static func component(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
      switch b {
      case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x2D, 0x2E, 0x5F, 0x7E: out.unicodeScalars.append(Unicode.Scalar(b))
      default: out += String(format: "%%%02X", b)
      }
    }
    return out
  }
}
