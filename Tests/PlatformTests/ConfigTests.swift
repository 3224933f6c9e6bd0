import RosterRuntime
import Testing

/// Configuration from the environment: sensible defaults, and every bad
/// value refused at start-up with the variable named (never a crash).
@Suite struct ConfigTests {
  @Test func defaultsApplyWhenNothingIsSet() throws {
    let c = try Config.fromEnvironment([:])
    #expect(c.runDir == "/run/roster")
    #expect(c.smtpHost == "127.0.0.1" && c.smtpPort == 25)
    #expect(c.dbPoolSize == 8 && c.maxConnections == 256)
    #expect(c.publicURL == "http://localhost:3000")
    #expect(!c.scimMetrics)
  }

  @Test func valuesAreParsed() throws {
    let c = try Config.fromEnvironment([
      "ROSTER_SMTP_URL": "smtp://10.0.0.5:2525", "ROSTER_PUBLIC_URL": "https://app.example.com/", "ROSTER_OPS_UIDS": "0, 1000",
      "ROSTER_DB_POOL_SIZE": "4", "ROSTER_SCIM_METRICS": "yes", "ROSTER_DNS_SERVER": "127.0.0.1:5353",
    ])
    #expect(c.smtpHost == "10.0.0.5" && c.smtpPort == 2525)
    #expect(c.publicURL == "https://app.example.com")
    #expect(c.opsUIDs == [0, 1000])
    #expect(c.dbPoolSize == 4 && c.scimMetrics)
    #expect(c.dnsServer.host == "127.0.0.1" && c.dnsServer.port == 5353)
  }

  @Test(arguments: [
    ("ROSTER_SMTP_URL", "smtp://relay:99999"), ("ROSTER_SMTP_URL", "smtp://relay:0"), ("ROSTER_SMTP_URL", "http://relay:25"),
    ("ROSTER_SMTP_URL", "smtp://:25"), ("ROSTER_RUN_DIR", "run"), ("ROSTER_SCIM_LISTEN", "tcp:localhost"),
    ("ROSTER_PUBLIC_URL", "ftp://x"), ("ROSTER_MAIL_FROM", "no-at-sign"), ("ROSTER_DNS_SERVER", "1.2.3.4:70000"),
    ("ROSTER_OPS_UIDS", "root"), ("ROSTER_LOG_LEVEL", "loud"), ("ROSTER_LOG_FORMAT", "xml"), ("ROSTER_DB_POOL_SIZE", "0"),
    ("ROSTER_MAX_CONNECTIONS", "99999999999999999999"), ("ROSTER_SCIM_METRICS", "maybe"),
  ])
  func badValuesAreRefusedByName(variable: String, value: String) {
    do {
      _ = try Config.fromEnvironment([variable: value])
      Issue.record("\(variable)=\(value) was accepted")
    } catch {
      #expect(error.variable == variable)
      #expect(error.description.contains(value))
    }
  }
}
