import JSON

/// The discovery documents (RFC 7644 §4) and list envelopes.
public enum Discovery {
  public static let maxResults = 1000

  public static func serviceProviderConfig(location: String) -> JSONValue {
    [
      "schemas": [.string(URN.spc)],
      "documentationUri": "https://github.com/roster/roster/blob/main/docs/scim.md",
      "patch": ["supported": true],
      "bulk": ["supported": false, "maxOperations": 0, "maxPayloadSize": 0],
      "filter": ["supported": true, "maxResults": .int(maxResults)],
      "changePassword": ["supported": false],
      "sort": ["supported": false],
      "etag": ["supported": true],
      "authenticationSchemes": [
        [
          "type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true,
          "description": "A per-directory bearer token from directory.enable (Authorization: Bearer TOKEN).",
        ]
      ],
      "meta": ["resourceType": "ServiceProviderConfig", "location": .string(location + "/ServiceProviderConfig")],
    ]
  }

  public static let kinds: [ResourceKind] = [.user, .group]
  public static var schemas: [SchemaDef] { [Schemas.user, Schemas.enterprise, Schemas.group] }

  public static func listResponse(_ resources: [JSONValue], total: Int, startIndex: Int) -> JSONValue {
    [
      "schemas": [.string(URN.listResponse)], "totalResults": .int(total), "startIndex": .int(startIndex),
      "itemsPerPage": .int(resources.count), "Resources": .array(resources),
    ]
  }
}
