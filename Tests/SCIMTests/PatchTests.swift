import JSON
import SCIM
import Testing

/// C1/C2: PATCH semantics and the Okta/Entra shapes.
@Suite struct PatchTests {
  let users = PatchEngine(kind: .user)
  let groups = PatchEngine(kind: .group, externalMembers: true)
  let jane: [String: JSONValue] = [
    "userName": "jane@acme.test", "active": true, "name": ["givenName": "Jane", "familyName": "Doe"],
    "emails": [["value": "jane@acme.test", "type": "work", "primary": true]],
  ]

  func patch(_ ops: [JSONValue], _ r: [String: JSONValue]? = nil) throws -> [String: JSONValue] {
    try users.apply(["schemas": [.string(URN.patchOp)], "Operations": .array(ops)], to: r ?? jane, id: "u1").resource
  }

  /// RFC 7643 §2.5: a null sub-attribute is "unassigned" — Entra sends
  /// `"$ref": null` in its manager PATCH.
  @Test func nullSubAttributesAreUnassigned() throws {
    let r = try patch([
      ["op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": [["$ref": nil, "value": "00aa"]]]
    ])
    #expect(r[URN.enterprise]?["manager"] == ["value": "00aa"])
    let named = try patch([["op": "replace", "path": "name", "value": ["givenName": "Janet", "middleName": nil, "familyName": nil]]])
    #expect(named["name"] == ["givenName": "Janet"])
    let emails = try patch([["op": "add", "path": "emails", "value": [["value": "j@acme.test", "type": nil, "display": nil]]]])
    #expect(emails["emails"]?.arrayValue?.contains(["value": "j@acme.test"]) == true)
    let created = try ResourceNormalizer(kind: .user).normalize([
      "userName": "x@acme.test", "name": ["givenName": nil, "familyName": "X"], URN.enterprise: ["manager": ["$ref": nil, "value": "m"]],
    ])
    #expect(created["name"] == ["familyName": "X"])
    #expect(created[URN.enterprise]?["manager"] == ["value": "m"])
  }

  @Test func oktaDeactivateWithoutPath() throws {
    #expect(try patch([["op": "replace", "value": ["active": false]]])["active"] == false)
  }

  @Test func entraCapitalisedReplaceWithStringBoolean() throws {
    #expect(try patch([["op": "Replace", "path": "active", "value": "False"]])["active"] == false)
    #expect(try patch([["op": "Replace", "path": "active", "value": "True"]])["active"] == true)
  }

  @Test func entraFlaggedPathlessReplaceWithDottedAndURNKeys() throws {
    let r = try patch([
      [
        "op": "replace",
        "value": [
          "displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
          "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq",
        ],
      ]
    ])
    #expect(r["displayName"] == "Bjfe")
    #expect(r["name"]?["givenName"] == "Kkom")
    #expect(r["name"]?["familyName"] == "Unua")
    #expect(r[URN.enterprise]?["employeeNumber"] == "Aklq")
  }

  @Test func filteredReplaceOnAMissingEntryCreatesIt() throws {
    let noWork: [String: JSONValue] = ["userName": "a@b.test", "emails": [["value": "home@b.test", "type": "home"]]]
    let r = try patch([["op": "Replace", "path": #"emails[type eq "work"].value"#, "value": "work@b.test"]], noWork)
    let emails = r["emails"]?.arrayValue ?? []
    #expect(emails.count == 2, "the home email is kept")
    #expect(emails.contains(["type": "work", "value": "work@b.test"]))
    // An existing entry is updated in place.
    let again = try patch([["op": "replace", "path": #"emails[type eq "work"].value"#, "value": "new@b.test"]], r)
    #expect((again["emails"]?.arrayValue ?? []).filter { $0["type"] == "work" }.map { $0["value"] } == ["new@b.test"])
  }

  @Test func addOnAMissingMultiValuedEntry() throws {
    let r = try patch([["op": "Add", "path": #"phoneNumbers[type eq "mobile"].value"#, "value": "+1 555"]])
    #expect(r["phoneNumbers"] == [["type": "mobile", "value": "+1 555"]])
  }

  @Test func enterpriseManagerInBothForms() throws {
    let array = try patch([["op": "Add", "path": "manager", "value": [["$ref": "https://x/Users/m1", "value": "m1"]]]])
    #expect(array[URN.enterprise]?["manager"]?["value"] == "m1")
    let plain = try patch([["op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m2"]])
    #expect(plain[URN.enterprise]?["manager"]?["value"] == "m2")
    let department = try patch([["op": "add", "value": [URN.enterprise: ["department": "Eng"]]]])
    #expect(department[URN.enterprise]?["department"] == "Eng")
  }

  @Test func nullAndEmptyClear() throws {
    let r = try patch([["op": "replace", "path": "displayName", "value": "X"]])
    #expect(try patch([["op": "replace", "path": "displayName", "value": ""]], r)["displayName"] == nil)
    #expect(try patch([["op": "replace", "path": "displayName", "value": nil]], r)["displayName"] == nil)
  }

  @Test func removeWithAndWithoutFilter() throws {
    let two: [String: JSONValue] = ["userName": "a@b.test", "emails": [["value": "w@b.test", "type": "work"], ["value": "h@b.test", "type": "home"]]]
    #expect(try patch([["op": "remove", "path": #"emails[type eq "home"]"#]], two)["emails"] == [["value": "w@b.test", "type": "work"]])
    #expect(try patch([["op": "remove", "path": "emails"]], two)["emails"] == nil)
    #expect(try patch([["op": "remove", "path": "name.givenName"]])["name"] == ["familyName": "Doe"])
  }

  @Test func roleAttributeIsValidated() throws {
    #expect(try patch([["op": "replace", "path": "loomMemberRole", "value": "Admin"]])["loomMemberRole"] == "admin")
    #expect { try patch([["op": "replace", "path": "loomMemberRole", "value": "owner"]]) } throws: {
      ($0 as? SCIMError)?.scimType == "invalidValue"
    }
  }

  @Test func passwordIsDiscarded() throws {
    #expect(try patch([["op": "replace", "path": "password", "value": "hunter2"]])["password"] == nil)
  }

  @Test(arguments: [
    ([["op": "remove"]] as [JSONValue], "noTarget"),
    ([["op": "replace", "path": "id", "value": "other"]], "mutability"),
    ([["op": "replace", "path": "meta.created", "value": "x"]], nil),
    ([["op": "replace", "path": "nosuchattribute", "value": "x"]], "invalidPath"),
    ([["op": "replace", "path": "name.nosuch", "value": "x"]], "invalidPath"),
    ([["op": "replace", "path": #"emails[type eq]"#, "value": "x"]], "invalidFilter"),
    ([["op": "frobnicate", "path": "title", "value": "x"]], "invalidSyntax"),
    ([["op": "remove", "path": "userName"]], "mutability"),
    ([["op": "replace", "path": "active", "value": "maybe"]], "invalidValue"),
    ([["op": "add", "path": "groups", "value": [["value": "g1"]]]], "mutability"),
  ] as [([JSONValue], String?)])
  func refusals(_ ops: [JSONValue], _ scimType: String?) {
    if scimType == nil {
      // meta is read-only and ignored, not an error.
      #expect((try? patch(ops)) != nil)
      return
    }
    #expect { try patch(ops) } throws: { ($0 as? SCIMError)?.scimType == scimType }
  }

  @Test func atomic() {
    // The first operation would succeed; the second fails: nothing is returned.
    #expect(throws: SCIMError.self) {
      try patch([["op": "replace", "path": "title", "value": "CEO"], ["op": "replace", "path": "bogus", "value": 1]])
    }
  }

  @Test func groupMembershipAsSetOperations() throws {
    let body: JSONValue = [
      "schemas": [.string(URN.patchOp)],
      "Operations": [
        ["op": "remove", "path": #"members[value eq "u1"]"#],
        ["op": "add", "path": "members", "value": [["value": "u2", "display": "x"], ["value": "u3"]]],
        ["op": "Remove", "path": "members", "value": [["value": "u4"]]],
        ["op": "replace", "value": ["id": "g1", "displayName": "Renamed"]],
        ["op": "replace", "path": "members", "value": [["value": "u5"]]],
        ["op": "replace", "value": ["members": [["value": "u6"]]]],
      ],
    ]
    let r = try groups.apply(body, to: ["displayName": "Old"], id: "g1")
    #expect(r.resource["displayName"] == "Renamed")
    #expect(r.memberChanges == [.remove(["u1"]), .add(["u2", "u3"]), .remove(["u4"]), .replace(["u5"]), .replace(["u6"])])
    #expect { try groups.apply(["schemas": [.string(URN.patchOp)], "Operations": [["op": "replace", "value": ["id": "other"]]]], to: ["displayName": "x"], id: "g1") }
      throws: { ($0 as? SCIMError)?.scimType == "mutability" }
  }
}

@Suite struct NormalizerTests {
  let users = ResourceNormalizer(kind: .user)

  @Test func oktaFullObjectPut() throws {
    let r = try users.normalize([
      "schemas": [.string(URN.user)], "id": "abc", "userName": "Test.User@okta.local", "password": "secret", "groups": [],
      "meta": ["resourceType": "User"], "name": ["givenName": "Another", "middleName": "Excited", "familyName": "User"],
      "emails": [["primary": true, "value": "test.user@okta.local", "type": "work", "display": "test.user@okta.local"]], "active": true,
      "locale": "en-US", "externalId": "00u1",
    ])
    #expect(r["id"] == nil && r["password"] == nil && r["groups"] == nil && r["meta"] == nil)
    #expect(r["userName"] == "Test.User@okta.local", "kept as sent")
    #expect(r["externalId"] == "00u1")
    #expect(r["name"]?["middleName"] == "Excited")
  }

  @Test func caseInsensitiveNamesBecomeCanonical() throws {
    let r = try users.normalize(["USERNAME": "a@b.test", "Name": ["GIVENNAME": "A"], "Active": "True"])
    #expect(r["userName"] == "a@b.test")
    #expect(r["name"] == ["givenName": "A"])
    #expect(r["active"] == true)
  }

  @Test func entraExplicitNullsAndExtension() throws {
    let r = try users.normalize([
      "userName": "a@b.test", "addresses": nil, "phoneNumbers": nil, "roles": [],
      URN.enterprise: ["department": "Eng", "manager": nil, "employeeNumber": 42],
    ])
    #expect(r["addresses"] == nil)
    #expect(r["roles"] == nil)
    #expect(r[URN.enterprise] == ["department": "Eng", "employeeNumber": "42"])
  }

  @Test func unknownSchemaIsRefusedButEntrasGroupSchemaIsTolerated() throws {
    #expect(throws: SCIMError.self) { try users.normalize(["schemas": ["urn:example:bogus"], "userName": "a@b.test"]) }
    let g = try ResourceNormalizer(kind: .group).normalize([
      "schemas": [.string(URN.group), "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"], "displayName": "G",
    ])
    #expect(g["displayName"] == "G")
  }

  @Test func projection() throws {
    let r: JSONValue = ["id": "1", "schemas": [.string(URN.user)], "userName": "a", "name": ["givenName": "A", "familyName": "B"], "title": "T"]
    let only = try Projection(attributes: "userName,name.givenName", excludedAttributes: nil).apply(r, kind: .user)
    #expect(only == ["id": "1", "schemas": [.string(URN.user)], "userName": "a", "name": ["givenName": "A"]])
    let without = try Projection(attributes: nil, excludedAttributes: "title,name.familyName,id").apply(r, kind: .user)
    #expect(without == ["id": "1", "schemas": [.string(URN.user)], "userName": "a", "name": ["givenName": "A"]])
  }
}
