import CLibxml2

/// Why XML input was refused. Each case is a refusal an attacker can
/// provoke; none of them is a crash.
public enum XMLInputError: Error, Equatable, Sendable {
  /// Not well-formed XML (or not UTF-8, or deeper than libxml2's limits).
  case malformed(String)
  /// A DOCTYPE (and so entity declarations) — refused outright.
  case doctype
}

/// A parsed XML document. Hostile input is expected: parsing never touches
/// the network, never loads or applies a DTD, never substitutes entities,
/// and any document with a DOCTYPE is refused. One document is used by one
/// thread (libxml2 documents are not shared between threads).
public final class XMLDoc {
  let doc: xmlDocPtr

  /// Options: no network; libxml2's default limits (depth 256, text size)
  /// stay on (no XML_PARSE_HUGE); no NOENT, DTDLOAD or DTDATTR.
  static let options = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOERROR.rawValue | XML_PARSE_NOWARNING.rawValue)

  public init(parsing bytes: [UInt8]) throws(XMLInputError) {
    XMLLibrary.initialize()
    guard !bytes.isEmpty, bytes.count < Int(Int32.max) else { throw .malformed("empty document") }
    // Refused before libxml2 sees it, so no DTD is ever parsed (not even to
    // check an entity's well-formedness). A SAML message never has one; the
    // same text inside a comment or CDATA is refused too (fail closed).
    if Self.contains(bytes, Array("<!DOCTYPE".utf8)) { throw .doctype }
    let parsed: xmlDocPtr? = bytes.withUnsafeBufferPointer { buf in
      buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buf.count) {
        xmlReadMemory($0, Int32(buf.count), nil, "UTF-8", Self.options)
      }
    }
    xmlResetLastError()
    guard let parsed else { throw .malformed("not well-formed XML") }
    if parsed.pointee.intSubset != nil || parsed.pointee.extSubset != nil {
      xmlFreeDoc(parsed)
      throw .doctype
    }
    doc = parsed
  }

  deinit { xmlFreeDoc(doc) }

  static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard haystack.count >= needle.count, let first = needle.first else { return false }
    var i = 0
    let last = haystack.count - needle.count
    while i <= last {
      if haystack[i] == first && haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
      i += 1
    }
    return false
  }

  public var root: XMLNode? { xmlDocGetRootElement(doc).map { XMLNode(node: $0, owner: self) } }

  /// Every element in document order.
  public func allElements() -> [XMLNode] {
    var out: [XMLNode] = []
    func walk(_ n: xmlNodePtr?) {
      var c = n
      while let x = c {
        if x.pointee.type == XML_ELEMENT_NODE {
          out.append(XMLNode(node: x, owner: self))
          walk(x.pointee.children)
        }
        c = x.pointee.next
      }
    }
    walk(doc.pointee.children)
    return out
  }

  /// Whether the tree has an entity reference, a processing instruction or
  /// any node kind a SAML message never needs.
  public var hasUnexpectedNodes: Bool {
    var found = false
    func walk(_ n: xmlNodePtr?) {
      var c = n
      while let x = c, !found {
        switch x.pointee.type {
        case XML_ELEMENT_NODE: walk(x.pointee.children)
        case XML_TEXT_NODE, XML_COMMENT_NODE, XML_CDATA_SECTION_NODE: break
        default: found = true
        }
        c = x.pointee.next
      }
    }
    walk(doc.pointee.children)
    return found
  }
}

/// Process-wide libxml2 set-up, done once before any parsing thread starts.
public enum XMLLibrary {
  static let once: Void = { xmlInitParser() }()
  public static func initialize() { _ = once }
}

/// An element of an `XMLDoc` (it keeps the document alive).
public struct XMLNode {
  let node: xmlNodePtr
  let owner: XMLDoc

  public var localName: String { String(cString: node.pointee.name) }
  public var namespaceURI: String? { node.pointee.ns.flatMap { $0.pointee.href.map { String(cString: $0) } } }

  public func `is`(_ name: String, _ namespace: String) -> Bool { localName == name && namespaceURI == namespace }

  /// Child elements, in order.
  public var children: [XMLNode] {
    var out: [XMLNode] = []
    var c = node.pointee.children
    while let x = c {
      if x.pointee.type == XML_ELEMENT_NODE { out.append(XMLNode(node: x, owner: owner)) }
      c = x.pointee.next
    }
    return out
  }

  public func children(_ name: String, _ namespace: String) -> [XMLNode] { children.filter { $0.is(name, namespace) } }
  public func child(_ name: String, _ namespace: String) -> XMLNode? { children.first { $0.is(name, namespace) } }

  /// Every descendant element (not self), document order.
  public var descendants: [XMLNode] {
    var out: [XMLNode] = []
    func walk(_ n: xmlNodePtr?) {
      var c = n
      while let x = c {
        if x.pointee.type == XML_ELEMENT_NODE {
          out.append(XMLNode(node: x, owner: owner))
          walk(x.pointee.children)
        }
        c = x.pointee.next
      }
    }
    walk(node.pointee.children)
    return out
  }

  public var parent: XMLNode? {
    guard let p = node.pointee.parent, p.pointee.type == XML_ELEMENT_NODE else { return nil }
    return XMLNode(node: p, owner: owner)
  }

  /// An attribute without a namespace.
  public func attribute(_ name: String) -> String? {
    guard let v = xmlGetNoNsProp(node, name) else { return nil }
    defer { roster_xmlFree(v) }
    return String(cString: v)
  }

  /// Names and values of every attribute (for ID checks).
  public var attributes: [(name: String, value: String)] {
    var out: [(String, String)] = []
    var a = node.pointee.properties
    while let x = a {
      let name = String(cString: x.pointee.name)
      if let v = xmlNodeGetContent(UnsafeMutableRawPointer(x).assumingMemoryBound(to: xmlNode.self)) {
        out.append((name, String(cString: v)))
        roster_xmlFree(v)
      }
      a = x.pointee.next
    }
    return out
  }

  /// The concatenated text of this element and its descendants. Comments
  /// are not text; callers read values only from re-parsed canonical bytes
  /// (where comments are gone), so a comment cannot split a value.
  public var text: String {
    guard let v = xmlNodeGetContent(node) else { return "" }
    defer { roster_xmlFree(v) }
    return String(cString: v)
  }

  /// Text with surrounding whitespace removed.
  public var trimmedText: String {
    var t = Substring(text)
    while let f = t.first, f.isWhitespace { t = t.dropFirst() }
    while let l = t.last, l.isWhitespace { t = t.dropLast() }
    return String(t)
  }

  public var isElementOnlyText: Bool { node.pointee.children == nil || children.isEmpty }

  public static func == (a: XMLNode, b: XMLNode) -> Bool { a.node == b.node }
}
