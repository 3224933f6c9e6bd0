import Foundation
import JSON
import JSONRPC
import Postgres
import RosterApp
import RosterTestSupport
import Testing

/// What integrators and operators meet first: logs that explain a SCIM
/// request, finding workspaces, messages for people.
@Suite(.serialized) final class IntegratorTests {
  /// An admin fixing an Okta setup reads one line per SCIM request: path,
  /// the filter without its values, directory and workspace, status,
  /// scimType, the IdP's request id and the duration; at debug the body,
  /// with secrets removed.
  @Test func scimRequestsAreExplainedInTheLog() throws {
    let db = try TestPostgres.shared.freshDatabase()
    let dir = try TestFiles.makeTempDirectory(prefix: "roster-log")
    let logFile = dir + "/provisioning.log"
    let p = try RunningProcess("provisioning", database: db, environment: ["ROSTER_LOG_LEVEL": "debug", "ROSTER_LOG_FORMAT": "json"], logFile: logFile)
    defer { p.stop() }
    let rpc = try p.client()
    let w = try rpc.call("workspace.create", ["name": "Acme", "plan": "enterprise", "owner": ["email": "owner@acme.test"]])
    let wid = w["workspaceId"]!.stringValue!
    let d = try rpc.call("directory.enable", ["workspaceId": .string(wid), "actor": ["memberId": w["ownerMemberId"]!]])
    let http = try TestHTTP(socket: p.runDir + "/scim.sock", token: d["bearerToken"]!.stringValue!)
    let lookup = try http.request("GET", "/scim/v2/Users?filter=" + TestBrowser.enc("userName eq \"jane.private@acme.test\"") + "&startIndex=1&count=10",
      headers: [("X-Request-Id", "okta-req-42")])
    #expect(lookup.status == 200)
    #expect(lookup.header("X-Request-Id") == "okta-req-42", "the IdP's request id is echoed")
    let bad = try http.request("POST", "/scim/v2/Users", json: ["schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "password": "hunter2-secret", "active": true])
    #expect(bad.status == 400)
    let ours = try #require(bad.header("X-Request-Id"))
    #expect(ours.hasPrefix("scim-"), "one is made when the IdP sends none")
    let lines = ((try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { try? JSONParser.parse(Array($0.utf8)) }
    let first = try #require(lines.first { $0["request"] == "okta-req-42" }, "\(lines)")
    #expect(first["path"] == "/scim/v2/Users")
    #expect(first["filter"] == "userName eq \"…\"", "no value from the filter")
    #expect(first["status"] == 200)
    #expect(first["workspace"] == .string(wid))
    #expect(first["directory"] == d["directoryId"])
    #expect(first["ms"]?.doubleValue != nil || first["ms"]?.intValue != nil)
    let second = try #require(lines.first { $0["request"] == .string(ours) })
    #expect(second["status"] == 400)
    #expect(second["scimType"] == "invalidValue" || second["scimType"] == "invalidSyntax", "\(second)")
    #expect(second["detail"]?.stringValue?.contains("userName") == true)
    #expect(second["body"]?["password"] == "(removed)", "debug: the body, without secrets")
    let text = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
    #expect(!text.contains("jane.private"))
    #expect(!text.contains("hunter2"))
    #expect(!text.contains(d["bearerToken"]!.stringValue!))
  }

  /// An operator goes from what they were told to the ids every method takes.
  @Test func workspaceFindByNameDomainOrMemberEmail() throws {
    let f = try ProvisioningFixture()
    let acme = try f.workspace("Acme Corp", owner: "owner@acme.test")
    let other = try f.workspace("Acme_Labs 100%", owner: "boss@labs.test")
    _ = try f.workspace("Globex", owner: "g@globex.test")
    try f.verifyDomain(acme, "acme.test")
    try f.addMember(other, "owner@acme.test")
    func find(_ p: [String: JSONValue]) throws -> [String] {
      (try f.rpc.call("workspace.find", .object(p))["workspaces"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
    }
    #expect(try find(["name": "acme"]) == ["Acme Corp", "Acme_Labs 100%"])
    #expect(try find(["name": "ACME_"]) == ["Acme_Labs 100%"], "wildcards in the input are literal")
    #expect(try find(["name": "100%"]) == ["Acme_Labs 100%"])
    #expect(try find(["domain": "ACME.test."]) == ["Acme Corp"])
    #expect(try find(["memberEmail": "Owner@ACME.test"]) == ["Acme Corp", "Acme_Labs 100%"])
    let byEmail = try f.rpc.call("workspace.find", ["memberEmail": "owner@acme.test"])["workspaces"]?.arrayValue?.first
    #expect(byEmail?["workspaceId"] == .string(acme.id))
    #expect(byEmail?["member"]?["role"] == "admin")
    #expect(try f.rpc.error("workspace.find", [:])?.reason == "one_criterion")
    #expect(try f.rpc.error("workspace.find", ["name": "a", "domain": "acme.test"])?.reason == "one_criterion")
    #expect(try f.rpc.error("workspace.find", ["domain": "not a domain"])?.data?["param"] == "domain")
    // Only from an operator's uid.
    let app = try ProvisioningFixture(environment: ["ROSTER_OPS_UIDS": "54321"])
    #expect(try app.rpc.error("workspace.find", ["name": "acme"])?.reason == "ops_not_permitted")
  }

  /// A method called on the wrong socket says which socket has it; the map
  /// behind that is exactly what each process registers.
  /// The three processes on one database and run dir, with their discovery documents.
  struct AllProcesses {
    let dir: String
    let processes: [RunningProcess]
    let clients: [String: TestRPC]
    let documents: [(process: String, document: JSONValue)]

    init() throws {
      let db = try TestPostgres.shared.freshDatabase()
      dir = try TestFiles.makeTempDirectory(prefix: "roster-run")
      var processes: [RunningProcess] = []
      var clients: [String: TestRPC] = [:]
      var documents: [(String, JSONValue)] = []
      for name in Services.processes {
        let p = try RunningProcess(name, database: db, runDir: dir)
        processes.append(p)
        clients[name] = try p.client()
        documents.append((name, try clients[name]!.call("rpc.discover")))
      }
      self.processes = processes
      self.clients = clients
      self.documents = documents
    }

    func stop() { for p in processes { p.stop() } }
  }

  @Test func methodNotFoundNamesTheSocketThatServesIt() throws {
    let all = try AllProcesses()
    defer { all.stop() }
    let dir = all.dir
    let clients = all.clients
    var served: [String: Set<String>] = [:]
    for (name, doc) in all.documents {
      served[name] = Set((doc["methods"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }.filter { !$0.hasPrefix("rpc.") && !$0.hasPrefix("system.") })
    }
    #expect(served == Services.methodsByProcess)
    let wrong = try #require(try clients["provisioning"]!.error("job.list"))
    #expect(wrong.code == -32601)
    #expect(wrong.message.contains("deprovisioning.sock") && wrong.message.contains(dir + "/deprovisioning.sock"), "\(wrong.message)")
    #expect(wrong.data?["servedBy"] != nil)
    let typo = try #require(try clients["provisioning"]!.error("job.lst"))
    #expect(typo.message.contains("rpc.discover") && !typo.message.contains(".sock"))
    #expect(try clients["notifications"]!.error("member.add")?.message.contains("provisioning.sock") == true)
  }

  /// Every missing parameter in one answer.
  @Test func allMissingParamsAreReportedAtOnce() throws {
    let f = try ProvisioningFixture()
    let e = try #require(try f.rpc.error("member.add", [:]))
    #expect(e.reason == "missing_param")
    #expect(e.message == "Missing required parameters: 'workspaceId', 'email', 'actor'.")
    #expect(e.data?["params"] == ["workspaceId", "email", "actor"])
    #expect(e.data?["param"] == "workspaceId")
    #expect(try f.rpc.error("workspace.get", [:])?.message == "Missing required parameter 'workspaceId'.")
  }

  /// docs/api.md is what the processes say about themselves now
  /// (ROSTER_WRITE_API_DOC=1, as deploy/api-doc.sh sets, rewrites it), and
  /// every method documents its errors.
  @Test func apiReferenceIsCurrent() throws {
    let all = try AllProcesses()
    defer { all.stop() }
    for p in all.processes { #expect(p.host.dispatcher.methodsWithoutErrorDocs == [], "\(p.host.name): errors not documented") }
    let generated = APIReference.markdown(all.documents)
    let path = TestFiles.repositoryRoot + "/docs/api.md"
    if ProcessInfo.processInfo.environment["ROSTER_WRITE_API_DOC"] == "1" {
      try generated.write(toFile: path, atomically: true, encoding: .utf8)
    }
    let current = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    #expect(current == generated, "docs/api.md is stale: run deploy/api-doc.sh")
    #expect(generated.contains("### `sso.authorize`") && generated.contains("`-32002` `sso_untested`"))
  }
}

