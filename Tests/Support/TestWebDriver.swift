import Foundation
import JSON
import Sockets

/// A real browser for page tests: Debian's headless Chromium, driven over
/// the W3C WebDriver protocol (JSON over HTTP) by chromedriver. Both come
/// from `apt-get install chromium chromium-driver` (deploy/test.sh).
public final class TestBrowserSession: @unchecked Sendable {
  let driver: Spawned
  let port: UInt16
  let dir: String
  public let sessionId: String
  /// Where screenshots go (the test output).
  public let screenshotDir: String

  public static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver") }

  public init(screenshotDir: String) throws {
    guard Self.available else { throw TestError("chromedriver is not installed: run deploy/test.sh (it installs chromium and chromium-driver)") }
    dir = try TestFiles.makeTempDirectory(prefix: "roster-chrome")
    port = freeLoopbackPort()
    self.screenshotDir = screenshotDir
    try FileManager.default.createDirectory(atPath: screenshotDir, withIntermediateDirectories: true)
    driver = try TestProcess.start(["/usr/bin/chromedriver", "--port=\(port)", "--allowed-ips=127.0.0.1"], output: dir + "/chromedriver.log")
    let p = port
    guard TestProcess.waitUntil(timeout: 20, { (try? Self.request(p, "GET", "/status"))?["value"]?["ready"] == true }) else {
      driver.stop()
      throw TestError("chromedriver did not start: " + ((try? String(contentsOfFile: dir + "/chromedriver.log", encoding: .utf8)) ?? ""))
    }
    let options: JSONValue = [
      "binary": "/usr/bin/chromium",
      "args": [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=en-US",
        .string("--user-data-dir=\(dir)/profile"), "--no-first-run", "--disable-extensions", "--force-device-scale-factor=1",
      ],
    ]
    let created = try Self.request(
      port, "POST", "/session", ["capabilities": ["alwaysMatch": ["browserName": "chrome", "goog:chromeOptions": options]]])
    guard let id = created["value"]?["sessionId"]?.stringValue else { throw TestError("no WebDriver session: \(created)") }
    sessionId = id
  }

  deinit { close() }

  public func close() {
    _ = try? Self.request(port, "DELETE", "/session/\(sessionId)")
    driver.stop()
  }

  // MARK: The protocol

  static func request(_ port: UInt16, _ method: String, _ path: String, _ body: JSONValue? = nil) throws -> JSONValue {
    let client = try LineClient(host: "127.0.0.1", port: port, timeoutSeconds: 60)
    let bytes = body.map { JSONWriter.bytes($0) } ?? []
    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    if method == "POST" { head += "Content-Type: application/json; charset=utf-8\r\nContent-Length: \(bytes.count)\r\n" }
    head += "\r\n"
    try client.send(Array(head.utf8) + bytes)
    // Read the head, then exactly the body (chromedriver may keep the connection open).
    var raw: [UInt8] = []
    var split: Range<Int>?
    while split == nil {
      let chunk = try client.readSome(max: 1 << 16)
      if chunk.isEmpty { throw TestError("chromedriver closed the connection") }
      raw += chunk
      split = raw.firstRange(of: Array("\r\n\r\n".utf8))
    }
    let headText = String(decoding: raw[..<split!.lowerBound], as: UTF8.self).lowercased()
    var payload = Array(raw[split!.upperBound...])
    if let line = headText.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
      let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
    {
      while payload.count < length {
        let chunk = try client.readSome(max: length - payload.count)
        if chunk.isEmpty { break }
        payload += chunk
      }
    } else if headText.contains("transfer-encoding: chunked") {
      while !payload.suffix(5).elementsEqual(Array("0\r\n\r\n".utf8)) {
        let chunk = try client.readSome(max: 1 << 16)
        if chunk.isEmpty { break }
        payload += chunk
      }
      payload = dechunk(payload)
    }
    return try JSONParser.parse(payload, maxDepth: 200)
  }

  static func dechunk(_ b: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var i = 0
    while let lineEnd = b[i...].firstRange(of: [13, 10]) {
      let size = Int(String(decoding: b[i..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";")[0], radix: 16) ?? 0
      if size == 0 { break }
      out += b[lineEnd.upperBound..<(lineEnd.upperBound + size)]
      i = lineEnd.upperBound + size + 2
    }
    return out
  }

  @discardableResult
  func command(_ method: String, _ path: String, _ body: JSONValue? = nil) throws -> JSONValue {
    let answer = try Self.request(port, method, "/session/\(sessionId)" + path, method == "POST" ? (body ?? [:]) : nil)
    if let error = answer["value"]?["error"]?.stringValue {
      throw TestError("WebDriver \(method) \(path): \(error): \(answer["value"]?["message"]?.stringValue?.prefix(400) ?? "")")
    }
    return answer["value"] ?? .null
  }

  // MARK: What a test does

  public func open(_ url: String) throws { try command("POST", "/url", ["url": .string(url)]) }
  public var url: String { (try? command("GET", "/url").stringValue) ?? nil ?? "" }
  public var title: String { (try? command("GET", "/title").stringValue) ?? nil ?? "" }
  public var source: String { (try? command("GET", "/source").stringValue) ?? nil ?? "" }

  public struct Element {
    let session: TestBrowserSession
    public let id: String

    public func click() throws { try session.command("POST", "/element/\(id)/click") }
    public func type(_ text: String) throws { try session.command("POST", "/element/\(id)/value", ["text": .string(text)]) }
    public func clear() throws { try session.command("POST", "/element/\(id)/clear") }
    public var text: String { (try? session.command("GET", "/element/\(id)/text").stringValue) ?? nil ?? "" }
    public func property(_ name: String) -> JSONValue { (try? session.command("GET", "/element/\(id)/property/\(name)")) ?? .null }
    public func attribute(_ name: String) -> String? { (try? session.command("GET", "/element/\(id)/attribute/\(name)"))?.stringValue }
    public var value: String { property("value").stringValue ?? "" }
    public var tag: String { (try? session.command("GET", "/element/\(id)/name").stringValue) ?? nil ?? "" }
  }

  static let elementKey = "element-6066-11e4-a52e-4f735466cecf"

  public func find(_ css: String) throws -> Element {
    let v = try command("POST", "/element", ["using": "css selector", "value": .string(css)])
    guard let id = v[Self.elementKey]?.stringValue else { throw TestError("no element \(css)") }
    return Element(session: self, id: id)
  }

  public func findAll(_ css: String) throws -> [Element] {
    try command("POST", "/elements", ["using": "css selector", "value": .string(css)]).arrayValue?.compactMap {
      $0[Self.elementKey]?.stringValue.map { Element(session: self, id: $0) }
    } ?? []
  }

  public func exists(_ css: String) -> Bool { ((try? findAll(css)) ?? []).isEmpty == false }

  /// Waits for an element (a form's answer replaces the page a moment after the click).
  @discardableResult
  public func waitFor(_ css: String, timeout: Double = 15) -> Bool { TestProcess.waitUntil(timeout: timeout) { self.exists(css) } }

  /// The link or button whose visible text contains `text`.
  public func findByText(_ text: String, in css: String = "a, button") throws -> Element {
    for e in try findAll(css) where e.text.contains(text) { return e }
    throw TestError("nothing like '\(text)' among \(css)")
  }

  public var active: Element? {
    guard let v = try? command("GET", "/element/active"), let id = v[Self.elementKey]?.stringValue else { return nil }
    return Element(session: self, id: id)
  }

  @discardableResult
  public func script(_ js: String, _ args: [JSONValue] = []) throws -> JSONValue {
    try command("POST", "/execute/sync", ["script": .string(js), "args": .array(args)])
  }

  /// Presses keys as a person would (WebDriver key codes: Tab U+E004, Enter U+E007, Space U+E00D).
  public func press(_ keys: [String]) throws {
    var actions: [JSONValue] = []
    for k in keys {
      actions.append(["type": "keyDown", "value": .string(k)])
      actions.append(["type": "keyUp", "value": .string(k)])
    }
    try command("POST", "/actions", ["actions": [["type": "key", "id": "keyboard", "actions": .array(actions)]]])
  }

  public static let tab = "\u{E004}"
  public static let enter = "\u{E007}"
  public static let space = "\u{E00D}"

  /// Types text into whatever has the focus.
  public func typeKeys(_ text: String) throws { try press(text.map { String($0) }) }

  /// The whole page as a PNG in the test output (the window grows to the page's height).
  @discardableResult
  public func screenshot(_ name: String) throws -> String {
    let height = try script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight);").intValue ?? 900
    try command("POST", "/window/rect", ["width": 1280, "height": .int(min(max(height + 140, 600), 6000))])
    defer { _ = try? command("POST", "/window/rect", ["width": 1280, "height": 900]) }
    guard let b64 = try command("GET", "/screenshot").stringValue, let png = Data(base64Encoded: b64) else {
      throw TestError("no screenshot")
    }
    let path = screenshotDir + "/" + name + ".png"
    try png.write(to: URL(fileURLWithPath: path))
    return path
  }

  /// Waits until the page's URL satisfies `condition` (navigation by forms and redirects).
  public func waitForURL(timeout: Double = 20, _ condition: (String) -> Bool) -> Bool {
    TestProcess.waitUntil(timeout: timeout) { condition(self.url) }
  }
}
