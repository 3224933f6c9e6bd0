import JSON

/// RFC 7643 attribute definitions. They drive `/Schemas`, input
/// normalisation, PATCH paths, filters and `attributes=` projection, so the
/// three can never disagree.
public struct AttributeDef: Sendable {
  public enum Kind: String, Sendable { case string, boolean, decimal, integer, dateTime, reference, complex, binary }
  public enum Mutability: String, Sendable { case readOnly, readWrite, immutable, writeOnly }
  public enum Returned: String, Sendable { case always, never, `default`, request }

  public var name: String
  public var kind: Kind
  public var multiValued = false
  public var required = false
  public var caseExact = false
  public var mutability: Mutability = .readWrite
  public var returned: Returned = .default
  public var uniqueness = "none"
  public var subAttributes: [AttributeDef] = []
  public var canonicalValues: [String] = []
  public var referenceTypes: [String] = []
  public var description = ""

  public init(
    _ name: String, _ kind: Kind, multiValued: Bool = false, required: Bool = false, caseExact: Bool = false,
    mutability: Mutability = .readWrite, returned: Returned = .default, uniqueness: String = "none", sub: [AttributeDef] = [],
    canonical: [String] = [], referenceTypes: [String] = [], description: String = ""
  ) {
    self.name = name
    self.kind = kind
    self.multiValued = multiValued
    self.required = required
    self.caseExact = caseExact
    self.mutability = mutability
    self.returned = returned
    self.uniqueness = uniqueness
    self.subAttributes = sub
    self.canonicalValues = canonical
    self.referenceTypes = referenceTypes
    self.description = description
  }

  public func sub(_ n: String) -> AttributeDef? { subAttributes.first { $0.name.lowercased() == n.lowercased() } }

  public var json: JSONValue {
    var o: [String: JSONValue] = [
      "name": .string(name), "type": .string(kind.rawValue), "multiValued": .bool(multiValued), "required": .bool(required),
      "caseExact": .bool(caseExact), "mutability": .string(mutability.rawValue), "returned": .string(returned.rawValue),
      "uniqueness": .string(uniqueness), "description": .string(description.isEmpty ? name : description),
    ]
    if !subAttributes.isEmpty { o["subAttributes"] = .array(subAttributes.map(\.json)) }
    if !canonicalValues.isEmpty { o["canonicalValues"] = .array(canonicalValues.map { .string($0) }) }
    if !referenceTypes.isEmpty { o["referenceTypes"] = .array(referenceTypes.map { .string($0) }) }
    return .object(o)
  }
}

public struct SchemaDef: Sendable {
  public var id: String
  public var name: String
  public var description: String
  public var attributes: [AttributeDef]

  public func attribute(_ n: String) -> AttributeDef? { attributes.first { $0.name.lowercased() == n.lowercased() } }

  public func json(location: String) -> JSONValue {
    [
      "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": .string(id), "name": .string(name),
      "description": .string(description), "attributes": .array(attributes.map(\.json)),
      "meta": ["resourceType": "Schema", "location": .string(location + "/Schemas/" + id)],
    ]
  }
}

/// The URNs this service speaks.
public enum URN {
  public static let user = "urn:ietf:params:scim:schemas:core:2.0:User"
  public static let group = "urn:ietf:params:scim:schemas:core:2.0:Group"
  public static let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
  public static let listResponse = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
  public static let error = "urn:ietf:params:scim:api:messages:2.0:Error"
  public static let patchOp = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
  public static let searchRequest = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
  public static let spc = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
  public static let resourceType = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
  public static let schema = "urn:ietf:params:scim:schemas:core:2.0:Schema"
  /// Schema URNs IdPs add that we accept and ignore (Entra's group schema).
  public static let tolerated = ["http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"]
}

/// The role attribute of rule C4 (top-level in the core User schema).
public let roleAttributeName = "loomMemberRole"
public let roleAttributeValues = ["default", "creator", "viewer", "admin"]

public enum Schemas {
  static func multi(
    _ name: String, _ extra: [AttributeDef] = [], typeValues: [String] = [], valueKind: AttributeDef.Kind = .string, required: Bool = false
  ) -> AttributeDef {
    AttributeDef(
      name, .complex, multiValued: true, required: required,
      sub: [AttributeDef("value", valueKind), AttributeDef("display", .string), AttributeDef("type", .string, canonical: typeValues),
            AttributeDef("primary", .boolean)] + extra)
  }

  public static let user = SchemaDef(
    id: URN.user, name: "User", description: "User Account",
    attributes: [
      AttributeDef("userName", .string, required: true, uniqueness: "server", description: "The email address; unique per workspace, case-insensitive."),
      AttributeDef(
        "name", .complex,
        sub: ["formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix"].map { AttributeDef($0, .string) }),
      AttributeDef("displayName", .string), AttributeDef("nickName", .string), AttributeDef("profileUrl", .reference, referenceTypes: ["external"]),
      AttributeDef("title", .string), AttributeDef("userType", .string), AttributeDef("preferredLanguage", .string),
      AttributeDef("locale", .string), AttributeDef("timezone", .string), AttributeDef("active", .boolean),
      AttributeDef("password", .string, mutability: .writeOnly, returned: .never, description: "Accepted and discarded; never stored or returned."),
      multi("emails", typeValues: ["work", "home", "other"]), multi("phoneNumbers", typeValues: ["work", "home", "mobile", "fax", "pager", "other"]),
      multi("ims"), multi("photos", valueKind: .reference),
      AttributeDef(
        "addresses", .complex, multiValued: true,
        sub: ["formatted", "streetAddress", "locality", "region", "postalCode", "country", "type"].map { AttributeDef($0, .string) }
          + [AttributeDef("primary", .boolean)]),
      AttributeDef(
        "groups", .complex, multiValued: true, mutability: .readOnly,
        sub: [AttributeDef("value", .string, mutability: .readOnly), AttributeDef("$ref", .reference, mutability: .readOnly, referenceTypes: ["Group"]),
              AttributeDef("display", .string, mutability: .readOnly), AttributeDef("type", .string, mutability: .readOnly)]),
      multi("entitlements"), multi("roles"), multi("x509Certificates", valueKind: .binary),
      AttributeDef(
        roleAttributeName, .string, canonical: roleAttributeValues,
        description: "Workspace role: default (keep / workspace default), creator, viewer or admin."),
    ])

  public static let enterprise = SchemaDef(
    id: URN.enterprise, name: "EnterpriseUser", description: "Enterprise User",
    attributes: [
      AttributeDef("employeeNumber", .string), AttributeDef("costCenter", .string), AttributeDef("organization", .string),
      AttributeDef("division", .string), AttributeDef("department", .string),
      AttributeDef(
        "manager", .complex,
        sub: [AttributeDef("value", .string), AttributeDef("$ref", .reference, referenceTypes: ["User"]),
              AttributeDef("displayName", .string, mutability: .readOnly)]),
    ])

  public static let group = SchemaDef(
    id: URN.group, name: "Group", description: "Group",
    attributes: [
      AttributeDef("displayName", .string, required: true, uniqueness: "server"),
      AttributeDef(
        "members", .complex, multiValued: true,
        sub: [AttributeDef("value", .string, mutability: .immutable), AttributeDef("$ref", .reference, mutability: .immutable, referenceTypes: ["User", "Group"]),
              AttributeDef("display", .string, mutability: .readOnly), AttributeDef("type", .string, mutability: .immutable, canonical: ["User"])]),
    ])

  /// Attributes every resource has (RFC 7643 §3.1).
  public static let common: [AttributeDef] = [
    AttributeDef("id", .string, caseExact: true, mutability: .readOnly, returned: .always, uniqueness: "server"),
    AttributeDef("externalId", .string, caseExact: true),
    AttributeDef(
      "meta", .complex, mutability: .readOnly,
      sub: ["resourceType", "location", "version"].map { AttributeDef($0, .string, mutability: .readOnly) }
        + ["created", "lastModified"].map { AttributeDef($0, .dateTime, mutability: .readOnly) }),
  ]
}

/// What a resource type is made of.
public struct ResourceKind: Sendable {
  public var name: String
  public var endpoint: String
  public var core: SchemaDef
  public var extensions: [SchemaDef]

  public static let user = ResourceKind(name: "User", endpoint: "/Users", core: Schemas.user, extensions: [Schemas.enterprise])
  public static let group = ResourceKind(name: "Group", endpoint: "/Groups", core: Schemas.group, extensions: [])

  public func json(location: String) -> JSONValue {
    [
      "schemas": [.string(URN.resourceType)], "id": .string(name), "name": .string(name), "endpoint": .string(endpoint),
      "description": .string(name), "schema": .string(core.id),
      "schemaExtensions": .array(extensions.map { ["schema": .string($0.id), "required": false] }),
      "meta": ["resourceType": "ResourceType", "location": .string(location + "/ResourceTypes/" + name)],
    ]
  }

  /// A top-level attribute by name (core, common), case-insensitive.
  public func attribute(_ name: String) -> AttributeDef? {
    core.attribute(name) ?? Schemas.common.first { $0.name.lowercased() == name.lowercased() }
  }

  public func extensionSchema(_ urn: String) -> SchemaDef? { extensions.first { $0.id.lowercased() == urn.lowercased() } }
}
