import JSON
import JSONRPC
import Testing

/// Every example of jsonrpc.org/specification §7, request by request.
@Suite struct SpecificationExamplesTests {
  let dispatcher: Dispatcher = {
    let d = Dispatcher(title: "spec", version: "1")
    d.register(
      MethodSpec("subtract", summary: "", params: [ParamSpec("minuend", .integer), ParamSpec("subtrahend", .integer)], acceptsPositional: true) { p, _ in
        .int(try p.int("minuend") - p.int("subtrahend"))
      })
    d.register(
      MethodSpec("sum", summary: "", params: (0..<3).map { .optional("n\($0)", .integer) }, acceptsPositional: true) { p, _ in
        .int((0..<3).compactMap { p.optionalInt("n\($0)") }.reduce(0, +))
      })
    d.register(MethodSpec("update", summary: "", params: (0..<5).map { .optional("n\($0)", .integer) }, acceptsPositional: true) { _, _ in .null })
    d.register(MethodSpec("notify_hello", summary: "", params: [.optional("n", .integer)], acceptsPositional: true) { _, _ in .null })
    d.register(MethodSpec("notify_sum", summary: "", params: (0..<3).map { .optional("n\($0)", .integer) }, acceptsPositional: true) { _, _ in .null })
    d.register(MethodSpec("get_data", summary: "") { _, _ in ["hello", 5] })
    return d
  }()

  func exchange(_ request: String) throws -> JSONValue? {
    guard let out = dispatcher.handle(line: Array(request.utf8), context: CallContext()) else { return nil }
    return try JSONParser.parse(out)
  }

  func error(_ code: Int, id: JSONValue) -> (JSONValue) -> Bool {
    { $0["jsonrpc"] == "2.0" && $0["id"] == id && $0["error"]?["code"] == .int(Int64(code)) && $0["error"]?["message"]?.stringValue != nil && $0["result"] == nil }
  }

  @Test func positionalParameters() throws {
    #expect(try exchange(#"{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}"#) == ["jsonrpc": "2.0", "result": 19, "id": 1])
    #expect(try exchange(#"{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}"#) == ["jsonrpc": "2.0", "result": -19, "id": 2])
  }

  @Test func namedParameters() throws {
    #expect(try exchange(#"{"jsonrpc": "2.0", "method": "subtract", "params": {"subtrahend": 23, "minuend": 42}, "id": 3}"#) == ["jsonrpc": "2.0", "result": 19, "id": 3])
    #expect(try exchange(#"{"jsonrpc": "2.0", "method": "subtract", "params": {"minuend": 42, "subtrahend": 23}, "id": 4}"#) == ["jsonrpc": "2.0", "result": 19, "id": 4])
  }

  @Test func notificationsGetNoReply() throws {
    #expect(try exchange(#"{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}"#) == nil)
    #expect(try exchange(#"{"jsonrpc": "2.0", "method": "foobar"}"#) == nil)
  }

  @Test func nonExistentMethod() throws {
    let r = try #require(try exchange(#"{"jsonrpc": "2.0", "method": "foobar", "id": "1"}"#))
    #expect(error(-32601, id: "1")(r))
  }

  @Test func invalidJSON() throws {
    let r = try #require(try exchange(#"{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]"#))
    #expect(error(-32700, id: nil)(r))
  }

  @Test func invalidRequestObject() throws {
    let r = try #require(try exchange(#"{"jsonrpc": "2.0", "method": 1, "params": "bar"}"#))
    #expect(error(-32600, id: nil)(r))
  }

  @Test func batchWithInvalidJSON() throws {
    let r = try #require(
      try exchange(#"[ {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"}, {"jsonrpc": "2.0", "method" ]"#))
    #expect(error(-32700, id: nil)(r))
  }

  @Test func emptyBatch() throws {
    let r = try #require(try exchange("[]"))
    #expect(error(-32600, id: nil)(r))
  }

  @Test func invalidBatchOfOne() throws {
    let r = try #require(try exchange("[1]")?.arrayValue)
    #expect(r.count == 1 && error(-32600, id: nil)(r[0]))
  }

  @Test func invalidBatchOfThree() throws {
    let r = try #require(try exchange("[1,2,3]")?.arrayValue)
    #expect(r.count == 3 && r.allSatisfy(error(-32600, id: nil)))
  }

  @Test func mixedBatch() throws {
    let r = try #require(
      try exchange(
        #"""
        [
          {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
          {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
          {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
          {"foo": "boo"},
          {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
          {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
        ]
        """#.split(separator: "\n").joined())?.arrayValue)
    #expect(r.count == 5)
    #expect(r.contains(["jsonrpc": "2.0", "result": 7, "id": "1"]))
    #expect(r.contains(["jsonrpc": "2.0", "result": 19, "id": "2"]))
    #expect(r.contains(where: error(-32600, id: nil)))
    #expect(r.contains(where: error(-32601, id: "5")))
    #expect(r.contains(["jsonrpc": "2.0", "result": ["hello", 5], "id": "9"]))
  }

  @Test func allNotificationBatchGetsNothing() throws {
    #expect(
      try exchange(
        #"[{"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},{"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}]"#)
        == nil)
  }
}
