import DNS
import Foundation
import RosterTestSupport
import Testing

/// D3 lookups against a real DNS server (dnslib, UDP + TCP) on loopback.
@Suite(.serialized) final class DNSClientTests {
  let dns: TestDNS
  let client: DNSClient

  init() throws {
    dns = try TestDNS()
    client = DNSClient(host: "127.0.0.1", port: dns.port, timeoutSeconds: 1, attempts: 1)
  }

  deinit { dns.stop() }

  @Test func findsARecord() {
    dns.setTXT("_roster-challenge.acme.test", ["roster-domain-verification=abc", "v=spf1 -all"])
    #expect(client.lookupTXT("_roster-challenge.acme.test") == .records(["roster-domain-verification=abc", "v=spf1 -all"]))
  }

  @Test func joinsStringsSplitAt255Bytes() {
    let long = "roster-domain-verification=" + String(repeating: "x", count: 400)
    dns.setTXT("long.acme.test", [long])
    #expect(client.lookupTXT("long.acme.test") == .records([long]))
  }

  @Test func retriesOverTCPWhenTheUDPAnswerIsTruncated() {
    let many = (0..<12).map { "record-\($0)-" + String(repeating: "y", count: 80) }
    dns.setTXT("big.acme.test", many)
    #expect(client.lookupTXT("big.acme.test") == .records(many))
  }

  @Test func nxdomainMeansNotYet() {
    #expect(client.lookupTXT("nothing-here.acme.test") == TXTLookup.none)
  }

  @Test func servfailIsTemporary() {
    dns.setServfail("broken.acme.test")
    #expect(client.lookupTXT("broken.acme.test") == .temporaryFailure("SERVFAIL"))
  }

  @Test func timeoutIsTemporary() {
    dns.setTimeout("slow.acme.test")
    let started = Date()
    #expect(client.lookupTXT("slow.acme.test") == .temporaryFailure("timeout"))
    #expect(Date().timeIntervalSince(started) < 3)
  }

  @Test func noServerIsTemporary() {
    let nobody = DNSClient(host: "127.0.0.1", port: freeLoopbackPort(), timeoutSeconds: 0.5, attempts: 1)
    if case .temporaryFailure = nobody.lookupTXT("acme.test") {} else { Issue.record("expected a temporary failure") }
  }
}
