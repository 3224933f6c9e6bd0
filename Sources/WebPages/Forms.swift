import Foundation
import HTTP1

/// A submitted HTML form: `application/x-www-form-urlencoded` or
/// `multipart/form-data` (file uploads). Text only: a value with a NUL or
/// invalid UTF-8 is refused as a whole, with the field it was in.
public struct FormData: Sendable {
  public struct File: Sendable {
    public var name: String
    public var filename: String
    public var bytes: [UInt8]
  }

  public var fields: [(name: String, value: String)] = []
  public var files: [File] = []

  public init(fields: [(name: String, value: String)] = [], files: [File] = []) {
    self.fields = fields
    self.files = files
  }

  public subscript(_ name: String) -> String? { fields.first { $0.name == name }?.value }
  public func all(_ name: String) -> [String] { fields.filter { $0.name == name }.map(\.value) }
  public func file(_ name: String) -> File? { files.first { $0.name == name && !($0.filename.isEmpty && $0.bytes.isEmpty) } }

  public struct Invalid: Error, Sendable {
    public let field: String?
    public let message: String
  }

  public static func parse(_ r: HTTPRequest) throws(Invalid) -> FormData {
    let type = r.header("Content-Type") ?? ""
    let media = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
    switch media {
    case "application/x-www-form-urlencoded", "":
      var out = FormData()
      for pair in r.body.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
        let kv = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
        let name = try text(percentDecoded(kv[0]), field: nil)
        let value = try text(kv.count > 1 ? percentDecoded(kv[1]) : [], field: name)
        out.fields.append((name, value))
      }
      return out
    case "multipart/form-data":
      guard let boundary = parameter("boundary", in: type), !boundary.isEmpty, boundary.utf8.count <= 200 else {
        throw Invalid(field: nil, message: "The form upload has no boundary.")
      }
      return try multipart(r.body, boundary: Array(boundary.utf8))
    default:
      throw Invalid(field: nil, message: "Forms are sent as application/x-www-form-urlencoded or multipart/form-data.")
    }
  }

  static func text(_ bytes: [UInt8], field: String?) throws(Invalid) -> String {
    guard !bytes.contains(0) else { throw Invalid(field: field, message: "The value contains a NUL character.") }
    guard let s = String(validating: bytes, as: UTF8.self) else { throw Invalid(field: field, message: "The value is not valid UTF-8 text.") }
    return s
  }

  static func percentDecoded(_ raw: ArraySlice<UInt8>) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(raw.count)
    var i = raw.startIndex
    while i < raw.endIndex {
      let b = raw[i]
      if b == UInt8(ascii: "+") {
        out.append(0x20)
      } else if b == UInt8(ascii: "%"), i + 2 < raw.endIndex, let h = HTTPRequest.hexValue(raw[i + 1]), let l = HTTPRequest.hexValue(raw[i + 2]) {
        out.append(h << 4 | l)
        i += 2
      } else {
        out.append(b)
      }
      i += 1
    }
    return out
  }

  /// `name=value` or `name="value"` in a header like Content-Type.
  static func parameter(_ name: String, in header: String) -> String? {
    for part in header.split(separator: ";").dropFirst() {
      let kv = part.split(separator: "=", maxSplits: 1)
      guard kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces).lowercased() == name else { continue }
      var v = kv[1].trimmingCharacters(in: .whitespaces)
      if v.hasPrefix("\""), v.hasSuffix("\""), v.count >= 2 { v = String(v.dropFirst().dropLast()) }
      return v
    }
    return nil
  }

  /// RFC 7578: parts separated by CRLF "--" boundary, each with headers.
  static func multipart(_ body: [UInt8], boundary: [UInt8]) throws(Invalid) -> FormData {
    let delimiter = Array("--".utf8) + boundary
    let bad = Invalid(field: nil, message: "The form upload is malformed.")
    guard var at = find(delimiter, in: body, from: 0) else { throw bad }
    var out = FormData()
    let next = [13, 10] + delimiter
    while true {
      at += delimiter.count
      if body.count >= at + 2, body[at] == UInt8(ascii: "-"), body[at + 1] == UInt8(ascii: "-") { return out }
      guard body.count >= at + 2, body[at] == 13, body[at + 1] == 10 else { throw bad }
      at += 2
      guard let headerEnd = find([13, 10, 13, 10], in: body, from: at), let end = find(next, in: body, from: headerEnd + 4) else { throw bad }
      let headers = String(decoding: body[at..<headerEnd], as: UTF8.self).components(separatedBy: "\r\n")
      guard let disposition = headers.first(where: { $0.lowercased().hasPrefix("content-disposition:") }),
        let name = parameter("name", in: disposition)
      else { throw bad }
      let content = Array(body[(headerEnd + 4)..<end])
      if let filename = parameter("filename", in: disposition) {
        out.files.append(File(name: name, filename: filename, bytes: content))
      } else {
        out.fields.append((name, try text(content, field: name)))
      }
      at = end + 2
    }
  }

  static func find(_ needle: [UInt8], in hay: [UInt8], from start: Int) -> Int? {
    guard !needle.isEmpty, hay.count >= needle.count, start <= hay.count - needle.count else { return nil }
    let first = needle[0]
    var i = start
    while i <= hay.count - needle.count {
      if hay[i] == first && hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
      i += 1
    }
    return nil
  }
}

extension HTTPRequest {
  /// The request's cookies (RFC 6265 `Cookie: a=b; c=d`).
  public var cookies: [String: String] {
    var out: [String: String] = [:]
    for h in headers where h.name.lowercased() == "cookie" {
      for pair in h.value.split(separator: ";") {
        let kv = pair.split(separator: "=", maxSplits: 1)
        guard kv.count == 2 else { continue }
        out[kv[0].trimmingCharacters(in: .whitespaces)] = kv[1].trimmingCharacters(in: .whitespaces)
      }
    }
    return out
  }
}
