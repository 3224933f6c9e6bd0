/// RFC 3492 Punycode (what IDNA's "xn--" labels carry).
enum Punycode {
  static let base = 36, tmin = 1, tmax = 26, skew = 38, damp = 700, initialBias = 72, initialN = 128

  static func digit(_ d: Int) -> Character {
    Character(Unicode.Scalar(UInt8(d < 26 ? 0x61 + d : 0x30 + d - 26)))
  }

  static func value(_ c: UInt8) -> Int? {
    switch c {
    case 0x61...0x7A: return Int(c - 0x61)
    case 0x41...0x5A: return Int(c - 0x41)
    case 0x30...0x39: return Int(c - 0x30) + 26
    default: return nil
    }
  }

  static func adapt(_ delta: Int, _ numPoints: Int, _ first: Bool) -> Int {
    var delta = first ? delta / damp : delta / 2
    delta += delta / numPoints
    var k = 0
    while delta > ((base - tmin) * tmax) / 2 {
      delta /= base - tmin
      k += base
    }
    return k + (base - tmin + 1) * delta / (delta + skew)
  }

  static func encode(_ input: String) -> String? {
    let scalars = input.unicodeScalars.map { Int($0.value) }
    var output = String(input.unicodeScalars.filter { $0.isASCII }.map(Character.init))
    let basicCount = output.count
    var handled = basicCount
    if basicCount > 0 { output.append("-") }
    var n = initialN, delta = 0, bias = initialBias
    while handled < scalars.count {
      guard let m = scalars.filter({ $0 >= n }).min() else { return nil }
      let (prod, overflow) = (m - n).multipliedReportingOverflow(by: handled + 1)
      if overflow { return nil }
      delta += prod
      n = m
      for c in scalars {
        if c < n { delta += 1 }
        if c == n {
          var q = delta
          var k = base
          while true {
            let t = k <= bias ? tmin : (k >= bias + tmax ? tmax : k - bias)
            if q < t { break }
            output.append(digit(t + (q - t) % (base - t)))
            q = (q - t) / (base - t)
            k += base
          }
          output.append(digit(q))
          bias = adapt(delta, handled + 1, handled == basicCount)
          delta = 0
          handled += 1
        }
      }
      delta += 1
      n += 1
    }
    return output
  }

  /// Decodes the part after "xn--"; nil when it is not valid Punycode
  /// (bad digits, overflow, or a code point that is not a scalar value).
  static func decode(_ input: String) -> String? {
    let bytes = Array(input.utf8)
    guard bytes.allSatisfy({ $0 < 0x80 }), bytes.count <= 63 else { return nil }
    var output: [Unicode.Scalar] = []
    var start = 0
    if let dash = bytes.lastIndex(of: UInt8(ascii: "-")) {
      for b in bytes[..<dash] { output.append(Unicode.Scalar(b)) }
      start = dash + 1
    }
    var n = initialN, i = 0, bias = initialBias
    var pos = start
    while pos < bytes.count {
      let oldi = i
      var w = 1
      var k = base
      while true {
        guard pos < bytes.count, let d = value(bytes[pos]) else { return nil }
        pos += 1
        let (dw, o1) = d.multipliedReportingOverflow(by: w)
        let (ni, o2) = i.addingReportingOverflow(dw)
        if o1 || o2 || ni > 0x10FFFF * 64 { return nil }
        i = ni
        let t = k <= bias ? tmin : (k >= bias + tmax ? tmax : k - bias)
        if d < t { break }
        let (nw, o3) = w.multipliedReportingOverflow(by: base - t)
        if o3 { return nil }
        w = nw
        k += base
      }
      bias = adapt(i - oldi, output.count + 1, oldi == 0)
      n += i / (output.count + 1)
      i %= output.count + 1
      guard n <= 0x10FFFF, let scalar = Unicode.Scalar(UInt32(n)), !scalar.isASCII else { return nil }
      output.insert(scalar, at: i)
      i += 1
    }
    var s = ""
    s.unicodeScalars.append(contentsOf: output)
    return s
  }
}
