import JSON
import Testing

@Suite struct JSONParserTests {
  @Test func parsesAllValueKinds() throws {
    let v = try JSONParser.parse(#"{"a":[1,-2,3.5,1e3,true,false,null,"x\n\u00e9\ud83d\ude00"],"b":{}}"#)
    #expect(v["a"] == [1, -2, 3.5, 1000.0, true, false, nil, "x\né😀"])
    #expect(v["b"] == [:])
  }

  @Test func integersStayIntegersAndBigOnesBecomeDoubles() throws {
    #expect(try JSONParser.parse("9223372036854775807") == .int(Int64.max))
    #expect(try JSONParser.parse("9223372036854775808") == .double(9223372036854775808))
    #expect(try JSONParser.parse("1.0").intValue == 1)
  }

  @Test(arguments: ["", "{", "[1,]", "{\"a\"}", "01", "1.", "-", "tru", "\"abc", "[1 2]", "{\"a\":1,}", "\"\\x\"", "\"\u{01}\"", "1 2", "\"\\ud800\""])
  func rejectsInvalidJSON(_ text: String) {
    #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
  }

  @Test func rejectsInvalidUTF8InStrings() {
    let bytes: [UInt8] = [0x22, 0xFF, 0xFE, 0x22]
    #expect { try JSONParser.parse(bytes) } throws: { ($0 as? JSONParseError)?.kind == .invalidUTF8 }
  }

  @Test func enforcesTheDepthLimit() throws {
    let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
    _ = try JSONParser.parse(ok)
    let deep = String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)
    #expect { try JSONParser.parse(deep) } throws: { ($0 as? JSONParseError)?.kind == .tooDeep }
    let deepObjects = String(repeating: "{\"a\":", count: 65) + "1" + String(repeating: "}", count: 65)
    #expect { try JSONParser.parse(deepObjects) } throws: { ($0 as? JSONParseError)?.kind == .tooDeep }
  }
}

@Suite struct JSONWriterTests {
  @Test func writesCompactSortedAndEscaped() {
    let v: JSONValue = ["b": 1, "a": ["x\"y\\z\n\t\u{01}/é", 2.5, nil, true]]
    #expect(JSONWriter.string(v) == #"{"a":["x\"y\\z\n\t\u0001/é",2.5,null,true],"b":1}"#)
  }

  @Test func roundTrips() throws {
    let text = #"{"a":[1,2,{"c":"d"}],"e":-0.125,"f":"😀"}"#
    #expect(JSONWriter.string(try JSONParser.parse(text)) == text)
  }

  @Test func neverEmitsARawNewline() {
    let s = JSONWriter.string(["k": "line1\nline2\r\n"])
    #expect(!s.contains("\n"))
  }
}
