import JSON
import JSONRPC
import Testing

@Suite struct DispatcherTests {
  let dispatcher: Dispatcher = {
    let d = Dispatcher(title: "t", version: "1")
    d.register(
      MethodSpec(
        "member.add", summary: "Adds a member.",
        params: [
          ParamSpec("workspaceId", .uuid), ParamSpec("email", .email), .optional("role", .enumeration(["admin", "creator", "viewer"])),
          ParamSpec("actor", .object([.optional("memberId", .uuid), .optional("ops", .string)])),
        ]
      ) { p, _ in ["email": .string(try p.string("email"))] })
    d.register(MethodSpec("boom", summary: "Fails.") { _, _ in throw TestFailure() })
    return d
  }()

  struct TestFailure: Error {}

  func call(_ params: JSONValue, method: String = "member.add") -> JSONValue {
    dispatcher.handle(message: ["jsonrpc": "2.0", "id": 1, "method": .string(method), "params": params], context: CallContext())!
  }

  let ok: JSONValue = ["workspaceId": "3f2504e0-4f89-41d3-9a0c-0305e82c3301", "email": "a@b.co", "actor": ["ops": "x"]]

  @Test func validParamsReachTheHandler() {
    #expect(call(ok)["result"]?["email"] == "a@b.co")
  }

  @Test func missingParamIsNamed() {
    var p = ok.objectValue!
    p["email"] = nil
    let e = call(.object(p))["error"]
    #expect(e?["code"] == -32602)
    #expect(e?["data"]?["param"] == "email")
    #expect(e?["data"]?["reason"] == "missing_param")
  }

  @Test func unknownParamIsRefused() {
    var p = ok.objectValue!
    p["workspaceID"] = "x"
    #expect(call(.object(p))["error"]?["data"]?["reason"] == "unknown_param")
  }

  @Test(arguments: [
    ("workspaceId", JSONValue.string("nope"), "workspaceId"), ("email", .string("not-an-email"), "email"),
    ("role", .string("owner"), "role"), ("actor", .string("x"), "actor"), ("actor", JSONValue.object(["memberId": 5]), "actor.memberId"),
    ("actor", JSONValue.object(["bogus": 1]), "actor.bogus"),
  ])
  func wrongTypesAndValuesAreNamed(_ key: String, _ value: JSONValue, _ param: String) {
    var p = ok.objectValue!
    p[key] = value
    let e = call(.object(p))["error"]
    #expect(e?["code"] == -32602)
    #expect(e?["data"]?["param"] == .string(param))
  }

  @Test func positionalParamsAreRefusedForNamedOnlyMethods() {
    #expect(call(["a"])["error"]?["data"]?["reason"] == "named_params_only")
  }

  /// Found by the JSON-RPC fuzzer: a notification (no id) with positional
  /// params was answered with a bare `null` line.
  @Test func aNotificationWithPositionalParamsGetsNoReplyAtAll() {
    let line = Array(#"{"jsonrpc":"2.0","method":"member.add","params":["a"]}"#.utf8)
    #expect(dispatcher.handle(line: line, context: CallContext()) == nil)
    #expect(dispatcher.handle(message: ["jsonrpc": "2.0", "method": "member.add", "params": ["a"]], context: CallContext()) == nil)
  }

  @Test func unexpectedErrorsBecomeInternalErrorsWithoutDetail() {
    let e = call([:], method: "boom")["error"]
    #expect(e?["code"] == -32603)
    #expect(e?["message"]?.stringValue?.contains("TestFailure") == false)
  }

  @Test func batchOverLimitIsRefused() {
    let batch = JSONValue.array(Array(repeating: ["jsonrpc": "2.0", "id": 1, "method": "boom"], count: 101))
    let r = dispatcher.handle(message: batch, context: CallContext())
    #expect(r?["error"]?["data"]?["reason"] == "batch_too_large")
    let full = JSONValue.array(Array(repeating: ["jsonrpc": "2.0", "id": 1, "method": "boom"], count: 100))
    #expect(dispatcher.handle(message: full, context: CallContext())?.arrayValue?.count == 100)
  }

  @Test func openRPCIsGeneratedFromTheRegisteredSpecs() {
    let doc = dispatcher.handle(message: ["jsonrpc": "2.0", "id": 1, "method": "rpc.discover"], context: CallContext())!["result"]!
    #expect(doc["openrpc"]?.stringValue?.hasPrefix("1.") == true)
    let methods = doc["methods"]?.arrayValue ?? []
    let add = methods.first { $0["name"] == "member.add" }
    #expect(add != nil)
    let params = add?["params"]?.arrayValue ?? []
    #expect(params.map { $0["name"]?.stringValue ?? "" } == ["workspaceId", "email", "role", "actor"])
    #expect(params[2]["required"] == false)
    #expect(params[2]["schema"]?["enum"] == ["admin", "creator", "viewer"])
    #expect(methods.contains { $0["name"] == "boom" })
  }

  @Test func idTypesAreChecked() {
    let r = dispatcher.handle(message: ["jsonrpc": "2.0", "id": ["x": 1], "method": "boom"], context: CallContext())
    #expect(r?["error"]?["code"] == -32600)
    #expect(r?["id"] == .null)
    let wrongVersion = dispatcher.handle(message: ["jsonrpc": "1.0", "id": 7, "method": "boom"], context: CallContext())
    #expect(wrongVersion?["error"]?["code"] == -32600)
    #expect(wrongVersion?["id"] == 7)
  }
}
