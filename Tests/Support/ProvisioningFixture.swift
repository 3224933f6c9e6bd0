import Foundation
import JSON
import JSONRPC
import Postgres
import Provisioning
import RosterApp
import Testing

/// A provisioning process on a fresh database with a real DNS server, and
/// helpers that walk the admin flows over the socket.
public final class ProvisioningFixture: @unchecked Sendable {
  public let dns: TestDNS
  public let database: String
  public let process: RunningProcess
  public let rpc: TestRPC
  public let pool: PGPool

  public init(environment: [String: String] = [:]) throws {
    dns = try TestDNS()
    database = try TestPostgres.shared.freshDatabase()
    var env = ["ROSTER_DNS_SERVER": "127.0.0.1:\(dns.port)"]
    for (k, v) in environment { env[k] = v }
    process = try RunningProcess("provisioning", database: database, environment: env)
    rpc = try process.client()
    pool = PGPool(config: PGConfig(conninfo: database), size: 2)
  }

  deinit {
    process.stop()
    dns.stop()
    pool.closeAll()
  }

  public var service: ProvisioningService { (process.service as! ProvisioningParts).provisioning }

  public struct Workspace: Sendable {
    public let id: String
    public let owner: String
    public init(id: String, owner: String) {
      self.id = id
      self.owner = owner
    }
  }

  public func workspace(_ name: String = "Acme", plan: String = "enterprise", owner: String = "owner@acme.test") throws -> Workspace {
    let w = try rpc.call("workspace.create", ["name": .string(name), "plan": .string(plan), "owner": ["email": .string(owner), "name": "Owner"]])
    return Workspace(id: w["workspaceId"]!.stringValue!, owner: w["ownerMemberId"]!.stringValue!)
  }

  public func admin(_ w: Workspace) -> JSONValue { ["memberId": .string(w.owner)] }
  public let ops: JSONValue = ["ops": "alice"]

  @discardableResult
  public func addMember(_ w: Workspace, _ email: String, role: String? = nil) throws -> JSONValue {
    var p: [String: JSONValue] = ["workspaceId": .string(w.id), "email": .string(email), "actor": admin(w)]
    if let role { p["role"] = .string(role) }
    return try rpc.call("member.add", .object(p))
  }

  /// Adds a domain by DNS, publishes the record and checks it: verified.
  @discardableResult
  public func verifyDomain(_ w: Workspace, _ domain: String) throws -> JSONValue {
    let d = try rpc.call("domain.add", ["workspaceId": .string(w.id), "domain": .string(domain), "method": "dns", "actor": admin(w)])
    let record = d["dnsRecord"]!
    dns.setTXT(record["name"]!.stringValue!, [record["value"]!.stringValue!])
    let checked = try rpc.call("domain.check", ["workspaceId": .string(w.id), "domainId": d["domainId"]!])
    #expect(checked["status"] == "verified")
    return checked
  }

  public static let samlConnection: JSONValue = [
    "protocol": "saml", "idpEntityId": "http://www.okta.com/exk1", "ssoUrl": "https://acme.okta.com/app/acme/sso/saml",
    "certificatePem": .string(testIdPCertificatePEM),
  ]

  /// The same IdP as SAML metadata (what Okta's "Metadata URL" serves).
  public static var samlMetadata: String {
    let base64 = testIdPCertificatePEM.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
    return """
      <?xml version="1.0" encoding="UTF-8"?>
      <md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="http://www.okta.com/exk1">
      <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
      <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>\(base64)</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
      <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://acme.okta.com/app/acme/sso/saml"/>
      </md:IDPSSODescriptor></md:EntityDescriptor>
      """
  }

  @discardableResult
  public func configureSSO(_ w: Workspace, defaultRole: String? = nil) throws -> JSONValue {
    var p: [String: JSONValue] = ["workspaceId": .string(w.id), "connection": Self.samlConnection, "actor": admin(w)]
    if let defaultRole { p["defaultRole"] = .string(defaultRole) }
    return try rpc.call("sso.configure", .object(p))
  }

  @discardableResult
  public func signIn(_ email: String, _ method: String = "password", workspace: Workspace? = nil) throws -> JSONValue {
    var p: [String: JSONValue] = ["email": .string(email), "method": .string(method)]
    if let workspace { p["workspaceId"] = .string(workspace.id) }
    return try rpc.call("auth.signIn", .object(p))
  }

  /// Rows of the outbox (what the notifications process will send).
  public func outbox(_ template: String) throws -> [PGRow] {
    try pool.query("SELECT to_address, data FROM notifications WHERE template = \(template) ORDER BY created_at, id").rows
  }

  /// Waits until every event written so far is visible in the feed (events
  /// show once all older transactions in the cluster have ended).
  public func waitForFeed() {
    _ = TestProcess.waitUntil(timeout: 20) {
      (try? self.pool.query("SELECT coalesce(max(feed_key) < pg_snapshot_xmin(pg_current_snapshot()), true) AS ok FROM events").first?["ok"]) == "t"
    }
  }

  public func events(_ type: String, workspace: Workspace) throws -> [JSONValue] {
    waitForFeed()
    let page = try rpc.call("events.list", ["workspaceId": .string(workspace.id), "limit": 1000])
    return (page["events"]?.arrayValue ?? []).filter { $0["type"]?.stringValue == type }
  }
}

extension JSONValue {
  public func workspace(_ id: String) -> JSONValue? {
    self["workspaces"]?.arrayValue?.first { $0["workspaceId"]?.stringValue == id }
  }
  public func blockedReason(_ id: String) -> String? {
    self["blocked"]?.arrayValue?.first { $0["workspaceId"]?.stringValue == id }?["reason"]?.stringValue
  }
}
