import Foundation
import JSON
import JSONRPC
import Postgres
import SCIM

/// An Enterprise workspace with Directory Sync on, and an HTTP client on scim.sock.
public final class SCIMFixture: @unchecked Sendable {
  public let f: ProvisioningFixture
  public let w: ProvisioningFixture.Workspace
  public let token: String
  public let http: TestHTTP

  public init(_ f: ProvisioningFixture, name: String = "Acme", owner: String = "owner@acme.test") throws {
    self.f = f
    w = try f.workspace(name, owner: owner)
    let d = try f.rpc.call("directory.enable", ["workspaceId": .string(w.id), "actor": f.admin(w)])
    token = d["bearerToken"]!.stringValue!
    http = try TestHTTP(socket: f.process.runDir + "/scim.sock", token: token)
  }

  public static func user(_ email: String, given: String = "Test", family: String = "User", extra: [String: JSONValue] = [:]) -> JSONValue {
    var o: [String: JSONValue] = [
      "schemas": [.string(URN.user)], "userName": .string(email), "name": ["givenName": .string(given), "familyName": .string(family)],
      "emails": [["primary": true, "value": .string(email), "type": "work"]], "displayName": .string("\(given) \(family)"), "active": true,
    ]
    for (k, v) in extra { o[k] = v }
    return .object(o)
  }

  @discardableResult
  public func createUser(_ email: String, extra: [String: JSONValue] = [:]) throws -> JSONValue {
    let r = try http.request("POST", "/scim/v2/Users", json: Self.user(email, extra: extra))
    guard r.status == 201, let json = r.json else { throw TestError("create \(email): \(r.status) \(String(decoding: r.body, as: UTF8.self))") }
    return json
  }

  @discardableResult
  public func createGroup(_ name: String, members: [String] = []) throws -> JSONValue {
    let r = try http.request(
      "POST", "/scim/v2/Groups",
      json: ["schemas": [.string(URN.group)], "displayName": .string(name), "members": .array(members.map { ["value": .string($0)] })])
    guard r.status == 201, let json = r.json else { throw TestError("create group \(name): \(r.status) \(String(decoding: r.body, as: UTF8.self))") }
    return json
  }

  public func patch(_ path: String, _ ops: [JSONValue]) throws -> TestHTTP.Response {
    try http.request("PATCH", path, json: ["schemas": [.string(URN.patchOp)], "Operations": .array(ops)])
  }

  public func member(_ id: String) throws -> JSONValue {
    try f.rpc.call("member.get", ["workspaceId": .string(w.id), "memberId": .string(id)])
  }

  public static func q(_ filter: String) -> String {
    filter.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
  }
}
