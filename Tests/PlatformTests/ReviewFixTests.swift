import Foundation
import JSON
import JSONRPC
import Postgres
import RosterRuntime
import RosterTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Fixes from the identity-isolation review: the run directory, database
/// errors in logs, and force-unwrapped query results.
@Suite struct ReviewFixTests {
  /// Any process creates ROSTER_RUN_DIR (0750) before binding anything in it
  /// — provisioning binds scim.sock there before its RPC socket.
  @Test func provisioningStartsWhenTheRunDirectoryDoesNotExistYet() throws {
    let db = try TestPostgres.shared.freshDatabase()
    let parent = try TestFiles.makeTempDirectory(prefix: "roster-rd")
    let run = parent + "/not/yet"
    var env = ProcessInfo.processInfo.environment
    env["ROSTER_DATABASE_URL"] = db
    env["ROSTER_RUN_DIR"] = run
    env.removeValue(forKey: "ROSTER_SCIM_LISTEN")
    let p = try TestProcess.start([TestFiles.rosterBinary, "provisioning"], environment: env, output: parent + "/out")
    defer { p.stop() }
    let up = TestProcess.waitUntil(timeout: 20) { FileManager.default.fileExists(atPath: run + "/provisioning.sock") }
    let log = (try? String(contentsOfFile: parent + "/out", encoding: .utf8)) ?? ""
    #expect(up, "provisioning did not start: \(log)")
    #expect(FileManager.default.fileExists(atPath: run + "/scim.sock"))
    var st = stat()
    #expect(stat(run, &st) == 0 && st.st_mode & 0o777 == 0o750)
  }

  /// A unique violation reaches the log as kind, SQLSTATE, constraint and
  /// table — never with the DETAIL line that quotes the row's values.
  @Test func databaseErrorsInLogsCarryNoRowValues() throws {
    let db = try TestPostgres.shared.freshDatabase()
    let dir = try TestFiles.makeTempDirectory(prefix: "roster-log")
    let logFile = dir + "/provisioning.log"
    let p = try RunningProcess("provisioning", database: db, environment: ["ROSTER_LOG_LEVEL": "info"], logFile: logFile)
    defer { p.stop() }
    let secret = "private.person@example.test"
    p.host.dispatcher.register(
      MethodSpec("test.duplicateUser", summary: "inserts one user twice") { _, _ in
        try p.host.pool.transaction { tx in
          try tx.query("INSERT INTO users (email, name) VALUES (\(secret), 'Private Person')")
          try tx.query("INSERT INTO users (email, name) VALUES (\(secret.uppercased()), 'Private Person')")
        }
        return .null
      })
    let error = try p.client().error("test.duplicateUser")
    #expect(error?.code == -32603)
    #expect(error?.message.contains(secret) == false)
    let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
    let line = log.split(separator: "\n").first { $0.contains("test.duplicateUser") } ?? ""
    #expect(line.contains("SQLSTATE 23505"), "\(line)")
    #expect(line.contains("users_email_key"), "the constraint is named: \(line)")
    #expect(line.contains("table users"), "\(line)")
    #expect(!log.lowercased().contains(secret), "no row values in the log: \(log)")
    #expect(!log.contains("Private Person"))
    #expect(!log.contains("DETAIL"))
  }

  /// A row that disappears between two statements is a clear error, never a
  /// crash: `single` and `required` throw a missing-row error that the
  /// dispatcher answers as a conflict, and the process keeps serving.
  @Test func aMissingRowIsAClearErrorNotACrash() throws {
    let db = try TestPostgres.shared.freshDatabase()
    let p = try RunningProcess("provisioning", database: db)
    defer { p.stop() }
    p.host.dispatcher.register(
      MethodSpec("test.vanished", summary: "reads a row that is not there") { _, _ in
        try p.host.pool.transaction { tx in
          _ = try tx.single("SELECT id FROM workspaces WHERE false", "the workspace")
        }
        return .null
      })
    let rpc = try p.client()
    let e = try rpc.error("test.vanished")
    #expect(e?.code == RPCError.Code.conflict)
    #expect(e?.reason == "concurrent_change")
    #expect(try rpc.call("system.health")["status"] == "ok")
    #expect(throws: PGError.self) { try required(Optional<Int>.none, "the member") }
  }

  /// No force-unwrap of a query result anywhere in Sources/: a row can
  /// vanish between statements, and `!` would take the whole process down.
  @Test func noForceUnwrappedQueryResultsInSources() throws {
    let root = TestFiles.repositoryRoot + "/Sources"
    let files = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
    #expect(files.count > 20)
    var offenders: [String] = []
    for f in files {
      let text = try String(contentsOfFile: root + "/" + f, encoding: .utf8)
      let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
      for (i, line) in lines.enumerated() {
        let code = line.split(separator: "//", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        // A statement's closing `""")!`, `.one(…)!`, `.load(…)!`, `.first!` or `.query(…)!`.
        let patterns = ["\"\"\")!", ".first!", "rows[0]"]
        let suspicious =
          patterns.contains { code.contains($0) }
          || (code.contains(")!") && (code.contains(".one(") || code.contains(".load(") || code.contains(".query(") || code.contains(".single(")))
        if suspicious { offenders.append("\(f):\(i + 1): \(line.trimmingCharacters(in: .whitespaces))") }
      }
    }
    #expect(offenders.isEmpty, "\(offenders.joined(separator: "\n"))")
  }

  /// Messages speak to people: no rule id of ours (D5, S10, …) in any string
  /// literal in Sources/ — errors, method summaries, pages, logs. The ids
  /// stay in comments and test names.
  @Test func noRuleIdsInMessages() throws {
    let root = TestFiles.repositoryRoot + "/Sources"
    let files = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
    var offenders: [String] = []
    for f in files {
      for literal in Self.stringLiterals(try String(contentsOfFile: root + "/" + f, encoding: .utf8)) where Self.containsRuleId(literal.text) {
        offenders.append("\(f):\(literal.line): \(literal.text.prefix(120))")
      }
    }
    #expect(files.count > 20)
    #expect(offenders.isEmpty, "\(offenders.joined(separator: "\n"))")
    #expect(Self.containsRuleId("ask an operator (D5)."), "the check can fail")
    #expect(!Self.containsRuleId("SHA256 and UTF8 and D12345"))
    #expect(Self.stringLiterals("let a = \"x (D5)\" // (S1)\n/* \"P2\" */ let b = \"\"\"\n  y \\(z) G3\n  \"\"\"").map(\.text) == ["x (D5)", "\n  y \\(z) G3\n  "])
  }

  /// A letter of a rule family and one or two digits, as a word of its own.
  static func containsRuleId(_ s: String) -> Bool {
    let chars = Array(s.unicodeScalars)
    for i in chars.indices where "DSCRNPGE".unicodeScalars.contains(chars[i]) {
      if i > 0, CharacterSet.alphanumerics.contains(chars[i - 1]) { continue }
      var j = i + 1
      while j < chars.count, CharacterSet.decimalDigits.contains(chars[j]), j - i <= 3 { j += 1 }
      let digits = j - i - 1
      if (1...2).contains(digits), j == chars.count || !CharacterSet.alphanumerics.contains(chars[j]) { return true }
    }
    return false
  }

  /// The string literals of a Swift file (comments skipped), with their line.
  static func stringLiterals(_ src: String) -> [(line: Int, text: String)] {
    let c = Array(src.unicodeScalars)
    var out: [(Int, String)] = []
    var i = 0
    var line = 1
    func starts(_ s: String, _ at: Int) -> Bool {
      let t = Array(s.unicodeScalars)
      return at + t.count <= c.count && Array(c[at..<(at + t.count)]) == t
    }
    while i < c.count {
      if c[i] == "\n" { line += 1; i += 1; continue }
      if starts("//", i) { while i < c.count && c[i] != "\n" { i += 1 }; continue }
      if starts("/*", i) {
        while i < c.count && !starts("*/", i) { if c[i] == "\n" { line += 1 }; i += 1 }
        i += 2
        continue
      }
      if c[i] == "\"" {
        let multi = starts("\"\"\"", i)
        let start = line
        i += multi ? 3 : 1
        var text = String.UnicodeScalarView()
        while i < c.count {
          if c[i] == "\\" { if i + 1 < c.count { text.append(c[i]); text.append(c[i + 1]) }; i += 2; continue }
          if multi ? starts("\"\"\"", i) : c[i] == "\"" { i += multi ? 3 : 1; break }
          if c[i] == "\n" { line += 1 }
          text.append(c[i])
          i += 1
        }
        out.append((start, String(text)))
        continue
      }
      i += 1
    }
    return out
  }
}

