import Foundation
import JSON
@testable import Mail
import RosterTestSupport
import Sockets
import Testing

/// N2: message format, encodings, dot-stuffing; the SMTP client against a real server.
@Suite struct MIMETests {
  @Test func dotStuffingDoublesLeadingDotsAndEndsWithADot() {
    let raw = Array("line\r\n.hidden\r\n..two\r\n.\r\nend".utf8)
    let out = String(decoding: SMTPClient.dotStuffed(raw), as: UTF8.self)
    #expect(out == "line\r\n..hidden\r\n...two\r\n..\r\nend\r\n.\r\n")
  }

  @Test func bareLineFeedsBecomeCRLF() {
    #expect(String(decoding: SMTPClient.dotStuffed(Array("a\nb\n".utf8)), as: UTF8.self) == "a\r\nb\r\n.\r\n")
  }

  @Test func quotedPrintableKeepsLinesShortAndEncodesWhatItMust() {
    let text = String(repeating: "é", count: 200) + "\n.dot\ntrailing space \nequals=sign"
    let qp = MIME.quotedPrintable(text)
    let lines = qp.components(separatedBy: "\r\n")
    #expect(lines.allSatisfy { $0.utf8.count <= 76 })
    #expect(qp.contains("=C3=A9"))
    #expect(qp.contains("\r\n=2Edot\r\n"))
    #expect(qp.contains("trailing space=20\r\n"))
    #expect(qp.contains("equals=3Dsign"))
  }

  @Test func subjectsAreEncodedOnlyWhenNeeded() {
    #expect(MIME.header("Subject", "Plain ASCII") == "Subject: Plain ASCII\r\n")
    let h = MIME.header("Subject", "Vérifiez " + String(repeating: "ü", count: 60))
    #expect(h.hasPrefix("Subject: =?UTF-8?Q?V=C3=A9rifiez_"))
    #expect(h.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 78 })
    #expect(MIME.header("Subject", "Evil\r\nBcc: x@y") == "Subject: Evil  Bcc: x@y\r\n", "no header injection")
  }

  @Test func messageHasTheRequiredHeaders() {
    let m = MailMessage(
      from: "roster@app.test", to: "jane@acme.test", subject: "Hi", text: "Body", messageId: "<1@app.test>",
      date: Date(timeIntervalSince1970: 1_800_000_000))
    let s = String(decoding: m.render(), as: UTF8.self)
    for h in ["Date: Fri, 15 Jan 2027 08:00:00 +0000", "From: Roster <roster@app.test>", "To: <jane@acme.test>", "Subject: Hi", "Message-ID: <1@app.test>"] {
      #expect(s.contains(h + "\r\n"), "\(h)")
    }
  }
}

@Suite struct SMTPClientTests {
  @Test func sendsToARealServerAndHandlesRefusals() throws {
    let smtp = try TestSMTP()
    defer { smtp.stop() }
    try smtp.setRules(["no@x.test": "550 5.1.1 Unknown user", "later@x.test": ["421 4.3.2 Busy"]])
    let client = SMTPClient(host: "127.0.0.1", port: smtp.port, heloName: "app.test", timeoutSeconds: 5)
    let body = Array("Subject: t\r\n\r\nfirst\r\n.\r\n.second\r\nlast\r\n".utf8)
    #expect(client.send(from: "a@app.test", to: ["ok@x.test"], message: body) == .accepted)
    // The same connection carries the next message.
    #expect(client.send(from: "a@app.test", to: ["ok2@x.test"], message: body) == .accepted)
    if case .permanent(let why) = client.send(from: "a@app.test", to: ["no@x.test"], message: body) {
      #expect(why.contains("550 5.1.1 Unknown user"))
    } else {
      Issue.record("expected a permanent failure")
    }
    if case .temporary = client.send(from: "a@app.test", to: ["later@x.test"], message: body) {} else { Issue.record("expected a temporary failure") }
    #expect(client.send(from: "a@app.test", to: ["later@x.test"], message: body) == .accepted)
    let stored = smtp.messages()
    #expect(stored.count == 3)
    // The lone "." and the leading dot arrived as sent (dot-stuffing on the wire, undone by the server).
    #expect(stored[0].contains("first\r\n.\r\n.second\r\nlast"))
  }

  /// A relay that never ends its multi-line greeting cannot hold a sender
  /// forever or grow its memory: after 100 lines the attempt is temporary.
  @Test func anEndlessReplyIsCutOff() throws {
    let port = freeLoopbackPort()
    let line = Array("220-still greeting\r\n".utf8)
    let relay = StreamServer(listener: try Listener.bind(.tcp(host: "127.0.0.1", port: port))) { conn in
      for _ in 0..<100_000 where conn.write(line) {}
    }
    relay.start()
    defer { relay.stop(grace: .seconds(1)) }
    let client = SMTPClient(host: "127.0.0.1", port: port, heloName: "app.test", timeoutSeconds: 5)
    if case .temporary(let why) = client.send(from: "a@app.test", to: ["b@x.test"], message: Array("x".utf8)) {
      #expect(why.contains("more than 100 lines"))
    } else {
      Issue.record("expected a temporary failure")
    }
  }

  @Test func noRelayIsTemporary() {
    let client = SMTPClient(host: "127.0.0.1", port: freeLoopbackPort(), heloName: "app.test", timeoutSeconds: 2)
    if case .temporary(let why) = client.send(from: "a@app.test", to: ["b@x.test"], message: Array("x".utf8)) {
      #expect(why.contains("cannot connect"))
    } else {
      Issue.record("expected a temporary failure")
    }
  }
}
