import Foundation
import JSON
import JSONRPC
import Mail
import Postgres
import RosterApp
import RosterTestSupport
import Testing

/// N1–N2 against a real SMTP server (aiosmtpd) on loopback.
@Suite(.serialized) final class NotificationTests {
  let smtp: TestSMTP
  let database: String
  let process: RunningProcess
  let rpc: TestRPC
  let pool: PGPool

  init() throws {
    smtp = try TestSMTP()
    database = try TestPostgres.shared.freshDatabase()
    var o = Services.Options()
    o.notifications.baseBackoffSeconds = 0.3
    o.notifications.maxBackoffSeconds = 1
    process = try RunningProcess("notifications", database: database, environment: ["ROSTER_SMTP_URL": smtp.url], options: o)
    rpc = try process.client()
    pool = PGPool(config: PGConfig(conninfo: database), size: 2)
  }

  deinit {
    process.stop()
    smtp.stop()
    pool.closeAll()
  }

  func enqueue(_ template: String, to: String, _ data: JSONValue) throws -> String {
    try rpc.call("notification.enqueue", ["template": .string(template), "to": .string(to), "data": data])["id"]!.stringValue!
  }

  func waitFor(_ id: String, status: String, timeout: Double = 20) -> JSONValue {
    var last: JSONValue = .null
    _ = TestProcess.waitUntil(timeout: timeout) {
      last = (try? self.rpc.call("notification.get", ["id": .string(id)])) ?? .null
      return last["status"] == .string(status)
    }
    return last
  }

  static let summary: JSONValue = ["workspaceName": "Acme", "memberEmail": "jane@acme.test", "memberName": "Jane", "mode": "deactivate", "content": "kept"]

  @Test func n2DeliveredWellFormed() throws {
    let id = try enqueue("deprovision_summary", to: "admin@acme.test", Self.summary)
    let n = waitFor(id, status: "sent")
    #expect(n["status"] == "sent")
    #expect(n["attempts"] == 1)
    let msg = try #require(smtp.messages().first)
    #expect(msg.contains("X-Envelope-To: admin@acme.test"))
    #expect(msg.contains("From: Roster <roster@app.example.test>\r\n"))
    #expect(msg.contains("To: <admin@acme.test>\r\n"))
    #expect(msg.contains("Subject: jane@acme.test was removed from Acme\r\n"))
    #expect(msg.contains("Message-ID: \(n["messageId"]!.stringValue!)\r\n"))
    #expect(msg.contains("Date: "))
    #expect(msg.contains("MIME-Version: 1.0\r\n"))
    #expect(msg.contains("Content-Type: text/plain; charset=utf-8\r\n"))
    #expect(n["messageId"]?.stringValue?.hasSuffix("@app.example.test>") == true)
    // Every line ends in CRLF and is under 998 octets.
    let lines = msg.components(separatedBy: "\r\n")
    #expect(lines.allSatisfy { $0.utf8.count < 998 && !$0.contains("\n") })
  }

  @Test func n2NonASCIISubjectLongLinesAndDots() throws {
    let long = String(repeating: "Ünïcødé ", count: 300)
    let id = try enqueue(
      "deprovision_summary", to: "admin@acme.test",
      ["workspaceName": "Açme Çörp", "memberEmail": "jane@acme.test", "memberName": .string(".Jane\n.leading dot\n" + long), "mode": "deactivate", "content": "kept"])
    #expect(waitFor(id, status: "sent")["status"] == "sent")
    let msg = try #require(smtp.messages().first)
    #expect(msg.contains("Subject: =?UTF-8?Q?"))
    #expect(msg.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 998 })
    // Decode the quoted-printable body and find the text intact.
    let body = msg.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
    let decoded = Self.decodeQP(body)
    #expect(decoded.contains(".Jane\n.leading dot\n" + long))
    #expect(decoded.contains("Açme Çörp"))
  }

  static func decodeQP(_ s: String) -> String {
    var bytes: [UInt8] = []
    let text = s.replacingOccurrences(of: "=\r\n", with: "").replacingOccurrences(of: "\r\n", with: "\n")
    var it = Array(text.utf8)[...]
    while let b = it.first {
      it = it.dropFirst()
      if b == UInt8(ascii: "="), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
        bytes.append(v)
        it = it.dropFirst(2)
      } else {
        bytes.append(b)
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  @Test func n1RelayDownThenUpDeliversOnce() throws {
    let port = freeLoopbackPort()
    let later = try TestSMTP(port: port, start: false)
    let other = try RunningProcess("notifications", database: try TestPostgres.shared.freshDatabase(), environment: ["ROSTER_SMTP_URL": later.url])
    defer { other.stop(); later.stop() }
    let c = try other.client()
    let id = try c.call("notification.enqueue", ["template": "deprovision_summary", "to": "a@acme.test", "data": Self.summary])["id"]!.stringValue!
    var n: JSONValue = .null
    #expect(TestProcess.waitUntil(timeout: 10) {
      n = (try? c.call("notification.get", ["id": .string(id)])) ?? .null
      return (n["attempts"]?.intValue ?? 0) >= 1
    })
    #expect(n["status"] == "pending", "delayed, not dropped")
    #expect(n["lastError"]?.stringValue?.contains("cannot connect") == true)
    try later.start()
    // The default back-off (5 s, then 10 s) applies here: allow for it.
    #expect(TestProcess.waitUntil(timeout: 40) { (try? c.call("notification.get", ["id": .string(id)])["status"]) == "sent" })
    #expect(later.messages().count == 1, "delivered exactly once")
  }

  @Test func n1TemporaryRefusalIsRetried() throws {
    try smtp.setRules(["later@acme.test": ["451 4.3.0 Try again later"]])
    let id = try enqueue("deprovision_summary", to: "later@acme.test", Self.summary)
    let n = waitFor(id, status: "sent")
    #expect(n["status"] == "sent")
    #expect(n["attempts"] == 2)
    #expect(smtp.messages().count == 1)
  }

  @Test func n1PermanentRefusalFailsVisiblyAndCanBeRetried() throws {
    try smtp.setRules(["fail@acme.test": "550 5.1.1 No such user here"])
    let id = try enqueue("deprovision_summary", to: "fail@acme.test", Self.summary)
    let failed = waitFor(id, status: "failed")
    #expect(failed["status"] == "failed")
    #expect(failed["attempts"] == 1, "a permanent refusal is not retried")
    #expect(failed["lastError"]?.stringValue?.contains("550 5.1.1 No such user here") == true)
    #expect(try rpc.call("notification.list", ["status": "failed"])["notifications"]?.arrayValue?.count == 1)
    // The operator fixes the mailbox, then retries: same Message-ID.
    try smtp.setRules([:])
    let retried = try rpc.call("notification.retry", ["id": .string(id), "actor": ["ops": "alice"]])
    #expect(retried["status"] == "pending")
    let sent = waitFor(id, status: "sent")
    #expect(sent["status"] == "sent")
    #expect(smtp.messages().first?.contains("Message-ID: \(failed["messageId"]!.stringValue!)") == true)
    #expect(try rpc.error("notification.retry", ["id": .string(id), "actor": ["ops": "alice"]])?.reason == "notification_not_failed")
  }

  /// An address that will never work: the operator closes the failed email
  /// so the failed-outbox alert clears. Pending or sent ones cannot be
  /// cancelled; only operators may.
  @Test func n1AFailedEmailIsCancelledByAnOperator() throws {
    try smtp.setRules(["gone@acme.test": "550 5.1.1 No such user here"])
    let id = try enqueue("deprovision_summary", to: "gone@acme.test", Self.summary)
    #expect(waitFor(id, status: "failed")["status"] == "failed")
    func failedGauge() throws -> String? {
      try rpc.call("system.metrics")["text"]?.stringValue?.split(separator: "\n").first { $0.hasPrefix("roster_outbox_failed ") }.map(String.init)
    }
    #expect(try failedGauge() == "roster_outbox_failed 1")
    #expect(try rpc.error("notification.cancel", ["id": .string(id), "actor": ["memberId": "3f2504e0-4f89-41d3-9a0c-0305e82c3301"]])?.reason == "ops_required")
    let cancelled = try rpc.call("notification.cancel", ["id": .string(id), "actor": ["ops": "alice"]])
    #expect(cancelled["status"] == "cancelled")
    #expect(try failedGauge() == "roster_outbox_failed 0")
    #expect(try rpc.error("notification.cancel", ["id": .string(id), "actor": ["ops": "alice"]])?.reason == "notification_not_failed")
    #expect(try rpc.error("notification.retry", ["id": .string(id), "actor": ["ops": "alice"]])?.reason == "notification_not_failed")
    #expect(try rpc.call("notification.list", ["status": "cancelled"])["notifications"]?.arrayValue?.count == 1)
    #expect(try pool.query("SELECT 1 FROM audit_log WHERE action = 'notification.cancel'").count == 1)
    try smtp.setRules(["slow@acme.test": ["451 4.3.0 later", "451 4.3.0 later", "451 4.3.0 later"]])
    let pending = try enqueue("deprovision_summary", to: "slow@acme.test", Self.summary)
    #expect(try rpc.error("notification.cancel", ["id": .string(pending), "actor": ["ops": "alice"]])?.message.contains("will be delivered") == true)
  }

  @Test func secretsAreNeverShownAndScrubbedAfterSending() throws {
    let id = try enqueue(
      "domain_verification", to: "it@acme.test", ["domain": "acme.test", "workspaceName": "Acme", "link": "https://app/domains/confirm?token=SECRET123"])
    #expect(try rpc.call("notification.get", ["id": .string(id)])["data"]?["link"] == "[redacted]")
    #expect(waitFor(id, status: "sent")["status"] == "sent")
    #expect(smtp.messages().first?.contains("SECRET123") == true, "the email itself carries the link")
    let stored = try pool.query("SELECT data::text AS d FROM notifications WHERE id = \(id)::uuid").first?["d"] ?? ""
    #expect(!stored.contains("SECRET123"), "not kept once sent")
  }

  @Test func n2EveryTemplatePreviewsAndBadInputIsRefused() throws {
    let samples: [String: JSONValue] = [
      "domain_verification": ["domain": "acme.test", "workspaceName": "Acme", "link": "https://x/y", "expiresAt": "2026-12-06"],
      "sso_live": ["workspaceName": "Acme", "signInUrl": "https://x/login", "name": "Jane"],
      "transfer_target_conflict": ["workspaceName": "Acme", "targetEmail": "t@acme.test", "attempt": "deactivate", "settingsUrl": "https://x/s"],
      "break_glass_sign_in": ["workspaceName": "Acme", "memberEmail": "a@acme.test", "at": "2026-11-29T00:00:00Z"],
      "deprovision_summary": Self.summary,
    ]
    for (template, data) in samples {
      let p = try rpc.call("notification.preview", ["template": .string(template), "data": data])
      #expect(p["subject"]?.stringValue?.isEmpty == false, "\(template)")
      #expect(p["text"]?.stringValue?.isEmpty == false, "\(template)")
    }
    #expect(Set(samples.keys) == Set(Templates.names), "every template has a sample")
    #expect(try rpc.error("notification.preview", ["template": "sso_live", "data": ["workspaceName": "A"]])?.reason == "missing_template_data")
    #expect(try rpc.error("notification.enqueue", ["template": "nope", "to": "a@b.test", "data": [:]])?.data?["param"] == "template")
    #expect(try rpc.error("notification.enqueue", ["template": "sso_live", "to": "not-an-address", "data": [:]])?.data?["param"] == "to")
    #expect(try pool.query("SELECT count(*) AS n FROM notifications").first?["n"] == "0", "nothing queued")
  }
}
