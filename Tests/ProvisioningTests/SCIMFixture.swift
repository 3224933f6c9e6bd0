import Foundation
import JSON
import JSONRPC
import Postgres
import RosterTestSupport
import SCIM
import Testing

/// An Enterprise workspace with Directory Sync on, and an HTTP client on scim.sock.
final class SCIMFixture: @unchecked Sendable {
  let f: ProvisioningFixture
  let w: ProvisioningFixture.Workspace
  let token: String
  let http: TestHTTP

  init(_ f: ProvisioningFixture, name: String = "Acme", owner: String = "owner@acme.test") throws {
    self.f = f
    w = try f.workspace(name, owner: owner)
    let d = try f.rpc.call("directory.enable", ["workspaceId": .string(w.id), "actor": f.admin(w)])
    token = d["bearerToken"]!.stringValue!
    http = try TestHTTP(socket: f.process.runDir + "/scim.sock", token: token)
  }

  static func user(_ email: String, given: String = "Test", family: String = "User", extra: [String: JSONValue] = [:]) -> JSONValue {
    var o: [String: JSONValue] = [
      "schemas": [.string(URN.user)], "userName": .string(email), "name": ["givenName": .string(given), "familyName": .string(family)],
      "emails": [["primary": true, "value": .string(email), "type": "work"]], "displayName": .string("\(given) \(family)"), "active": true,
    ]
    for (k, v) in extra { o[k] = v }
    return .object(o)
  }

  @discardableResult
  func createUser(_ email: String, extra: [String: JSONValue] = [:]) throws -> JSONValue {
    let r = try http.request("POST", "/scim/v2/Users", json: Self.user(email, extra: extra))
    #expect(r.status == 201, "create \(email): \(String(decoding: r.body, as: UTF8.self))")
    return r.json!
  }

  @discardableResult
  func createGroup(_ name: String, members: [String] = []) throws -> JSONValue {
    let r = try http.request(
      "POST", "/scim/v2/Groups",
      json: ["schemas": [.string(URN.group)], "displayName": .string(name), "members": .array(members.map { ["value": .string($0)] })])
    #expect(r.status == 201, "create group \(name): \(String(decoding: r.body, as: UTF8.self))")
    return r.json!
  }

  func patch(_ path: String, _ ops: [JSONValue]) throws -> TestHTTP.Response {
    try http.request("PATCH", path, json: ["schemas": [.string(URN.patchOp)], "Operations": .array(ops)])
  }

  func member(_ id: String) throws -> JSONValue {
    try f.rpc.call("member.get", ["workspaceId": .string(w.id), "memberId": .string(id)])
  }

  static func q(_ filter: String) -> String {
    filter.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
  }
}
