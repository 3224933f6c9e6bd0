import CLibxml2

/// Exclusive XML Canonicalization 1.0 (without comments) of one element's
/// subtree, optionally leaving out one descendant (the enveloped
/// signature), through libxml2's `xmlC14NExecute` with a visibility callback.
public enum ExclusiveC14N {
  public struct Failure: Error, Equatable {}

  /// Which nodes belong to the subset: the callback gets this through its
  /// user-data pointer (a C function pointer cannot capture context).
  struct Subset {
    let apex: xmlNodePtr
    let excluded: xmlNodePtr?
  }

  static let isVisible: xmlC14NIsVisibleCallback = { userData, node, parent in
    guard let userData, let node else { return 0 }
    let subset = userData.assumingMemoryBound(to: Subset.self).pointee
    // Namespace and attribute nodes belong to their element (`parent`);
    // every other node is judged by its own position.
    let kind = UnsafeRawPointer(node).load(fromByteOffset: MemoryLayout<UnsafeMutableRawPointer?>.size, as: xmlElementType.self)
    var n: xmlNodePtr? = (kind == XML_NAMESPACE_DECL || kind == XML_ATTRIBUTE_NODE) ? parent : node
    while let x = n {
      if let e = subset.excluded, x == e { return 0 }
      if x == subset.apex { return 1 }
      n = x.pointee.parent
    }
    return 0
  }

  public static func canonicalize(_ element: XMLNode, excluding: XMLNode? = nil, inclusivePrefixes: [String] = []) throws(Failure) -> [UInt8] {
    var subset = Subset(apex: element.node, excluded: excluding?.node)
    guard let buffer = xmlAllocOutputBuffer(nil) else { throw Failure() }
    // The prefix list as a NULL-terminated C array, alive for the call.
    let cPrefixes: [UnsafeMutablePointer<xmlChar>?] = inclusivePrefixes.map { p in
      p.withCString { xmlStrdup(UnsafeRawPointer($0).assumingMemoryBound(to: xmlChar.self)) }
    } + [nil]
    defer { cPrefixes.forEach { if let p = $0 { roster_xmlFree(p) } } }
    var prefixes = cPrefixes
    let rc = withUnsafeMutablePointer(to: &subset) { ptr in
      prefixes.withUnsafeMutableBufferPointer { list in
        xmlC14NExecute(
          element.owner.doc, isVisible, UnsafeMutableRawPointer(ptr), Int32(XML_C14N_EXCLUSIVE_1_0.rawValue),
          inclusivePrefixes.isEmpty ? nil : list.baseAddress, 0, buffer)
      }
    }
    defer { xmlOutputBufferClose(buffer) }
    xmlResetLastError()
    // A negative result or nothing written fails closed (P2).
    guard rc >= 0, let content = xmlOutputBufferGetContent(buffer) else { throw Failure() }
    let size = Int(xmlOutputBufferGetSize(buffer))
    guard size > 0 else { throw Failure() }
    return Array(UnsafeBufferPointer(start: content, count: size))
  }
}
