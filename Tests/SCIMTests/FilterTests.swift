import JSON
import SCIM
import Testing

/// C1/C2: the RFC 7644 filter grammar and what IdPs send.
@Suite struct FilterParserTests {
  @Test func parsesComparisonsCaseInsensitively() throws {
    #expect(try FilterParser.parse(#"userName eq "a@b.test""#) == .compare(AttrPath(name: "userName"), .eq, "a@b.test"))
    #expect(try FilterParser.parse(#"USERNAME EQ "a@b.test""#) == .compare(AttrPath(name: "USERNAME"), .eq, "a@b.test"))
    #expect(try FilterParser.parse("active eq false") == .compare(AttrPath(name: "active"), .eq, false))
    #expect(try FilterParser.parse("title pr") == .present(AttrPath(name: "title")))
    #expect(try FilterParser.parse(#"meta.lastModified gt "2026-01-01T00:00:00Z""#)
      == .compare(AttrPath(name: "meta", sub: "lastModified"), .gt, "2026-01-01T00:00:00Z"))
  }

  @Test func precedenceIsNotThenAndThenOr() throws {
    let f = try FilterParser.parse(#"a eq "1" or b eq "2" and not (c eq "3")"#)
    #expect(
      f == .or(
        .compare(AttrPath(name: "a"), .eq, "1"),
        .and(.compare(AttrPath(name: "b"), .eq, "2"), .not(.compare(AttrPath(name: "c"), .eq, "3")))))
    let g = try FilterParser.parse(#"(a eq "1" or b eq "2") and c pr"#)
    #expect(g == .and(.or(.compare(AttrPath(name: "a"), .eq, "1"), .compare(AttrPath(name: "b"), .eq, "2")), .present(AttrPath(name: "c"))))
  }

  @Test func valuePathsAndEntrasTrailingSubAttribute() throws {
    let f = try FilterParser.parse(#"emails[type eq "work" and value co "@x"]"#)
    #expect(f == .valuePath(AttrPath(name: "emails"), .and(.compare(AttrPath(name: "type"), .eq, "work"), .compare(AttrPath(name: "value"), .co, "@x"))))
    let entra = try FilterParser.parse(#"emails[type eq "work"].value eq "jane@acme.test""#)
    #expect(entra == .valuePath(AttrPath(name: "emails"), .and(.compare(AttrPath(name: "type"), .eq, "work"), .compare(AttrPath(name: "value"), .eq, "jane@acme.test"))))
  }

  @Test func urnPathsWithDotsInTheURN() throws {
    let f = try FilterParser.parse(#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "42""#)
    #expect(f == .compare(AttrPath(urn: URN.enterprise, name: "employeeNumber"), .eq, "42"))
  }

  @Test func escapedStrings() throws {
    #expect(try FilterParser.parse(#"displayName eq "a \"b\" \\ c""#) == .compare(AttrPath(name: "displayName"), .eq, #"a "b" \ c"#))
  }

  @Test(arguments: [
    "", "userName", #"userName eq"#, #"userName xx "a""#, #"userName eq "a"#, #"(userName eq "a""#, #"userName eq "a")"#,
    #"emails[type eq "work""#, "a eq 1.2.3", #"not userName eq "a""#, #"a eq "1" and"#, "urn:x:y:z eq 1",
    String(repeating: "(", count: 40) + #"a eq "1""# + String(repeating: ")", count: 40),
    "userName eq \"" + String(repeating: "x", count: 10_240) + "\"",
  ])
  func invalidFiltersAreInvalidFilter(_ text: String) {
    #expect { try FilterParser.parse(text) } throws: { ($0 as? SCIMError)?.scimType == "invalidFilter" }
  }

  @Test func evaluatorMatchesElements() throws {
    let work: JSONValue = ["type": "work", "value": "Jane@Acme.test", "primary": true]
    #expect(FilterEvaluator.matches(try FilterParser.parse(#"type eq "WORK""#), work))
    #expect(FilterEvaluator.matches(try FilterParser.parse(#"value ew "acme.test""#), work))
    #expect(!FilterEvaluator.matches(try FilterParser.parse(#"type eq "home""#), work))
    #expect(FilterEvaluator.matches(try FilterParser.parse("primary eq true"), work))
    #expect(FilterEvaluator.matches(try FilterParser.parse(#"not (type eq "home")"#), work))
  }
}
