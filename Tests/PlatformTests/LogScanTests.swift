import Foundation
import RosterTestSupport
import Testing

/// deploy/scan-logs.sh, which CI runs over the logs of the whole test run,
/// must find a secret when there is one (and pass clean logs).
@Suite struct LogScanTests {
  func scan(_ extra: String?) throws -> (status: Int32, output: String) {
    let dir = try TestFiles.makeTempDirectory(prefix: "roster-scan")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let line = "2026-12-03T07:00:00.000Z INFO [provisioning] scim method=GET path=/scim/v2/Users status=200 ms=0.3\n"
    for i in 0..<20 { try String(repeating: line, count: 600).write(toFile: "\(dir)/p\(i).log", atomically: true, encoding: .utf8) }
    if let extra { try (line + extra + "\n").write(toFile: "\(dir)/leak.log", atomically: true, encoding: .utf8) }
    let out = "\(dir).out"
    defer { try? FileManager.default.removeItem(atPath: out) }
    let p = try TestProcess.start([TestFiles.repositoryRoot + "/deploy/scan-logs.sh", dir], output: out)
    let status = p.wait()
    return (status, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
  }

  @Test func cleanLogsPass() throws {
    let r = try scan(nil)
    #expect(r.status == 0, "\(r.output)")
  }

  @Test(arguments: [
    "debug authorization=\"Bearer roster_scim_2kbgihflyell6d4iuvdqkszabukwmfqxmwqex57soinkv6mllsca\"",
    "GET /setup/Qm9ndXNUb2tlbkZvclRoZVNjYW5UZXN0MTIzNDU2Nzg5MA status=200",
    "body={\"password\":\"Passw0rd!\",\"userName\":\"a@b.test\"}",
    "header Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.payload",
    // P9: SSO material.
    "debug form SAMLResponse=PHNhbWxwOlJlc3BvbnNlIHhtbG5zOnNhbWxwPSJ1cm46",
    "debug id_token=eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIn0.eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xIn0.c2ln",
    "redirect location=https://app.example.test/sso/callback?code=Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0&state=x",
    "rpc params={\"connection\":{\"clientSecret\":\"s3cr3t-value\"}}",
  ])
  func aPlantedSecretFailsTheScan(_ leak: String) throws {
    let r = try scan(leak)
    #expect(r.status == 1, "\(r.output)")
    #expect(r.output.contains("secret"))
  }

  @Test func removedPasswordsPass() throws {
    #expect(try scan("body={\"password\":\"(removed)\"}").status == 0)
  }
}
