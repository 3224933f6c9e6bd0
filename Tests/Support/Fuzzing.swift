import Foundation
import JSON

/// A small deterministic generator, so a failure can be replayed from its seed.
public struct SplitMix: RandomNumberGenerator {
  public var state: UInt64
  public init(state: UInt64) { self.state = state }
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// Shared pieces of the fuzzers: case counts, seeds, hostile strings and a
/// byte-level mutator applied on top of grammar-made inputs.
public enum Fuzz {
  /// ROSTER_FUZZ_CASES overrides the short CI count (long runs: 100000).
  public static func cases(default d: Int) -> Int { Int(ProcessInfo.processInfo.environment["ROSTER_FUZZ_CASES"] ?? "") ?? d }

  /// ROSTER_FUZZ_SEED replays a run; otherwise a fresh seed (printed by each fuzzer).
  public static func seed() -> UInt64 { UInt64(ProcessInfo.processInfo.environment["ROSTER_FUZZ_SEED"] ?? "") ?? UInt64.random(in: 0...UInt64.max) }

  /// Strings that have broken parsers and queries elsewhere: SQL injection
  /// (including ones that would sleep if they reached SQL), quoting,
  /// Unicode oddities, NUL, huge and empty.
  public static let hostileStrings: [String] = [
    "", " ", "'", "\"", "\\", "%", "_", "*", "' OR '1'='1", "\" OR \"1\"=\"1", "'; DROP TABLE members; --", "x'); DELETE FROM workspaces; --",
    "1; SELECT pg_sleep(10)", "' || pg_sleep(10) || '", "'||(SELECT string_agg(email, ',') FROM users)||'", "$1", "$$ $$", "E'\\x00'",
    "\u{0}", "a\u{0}b", "é", "e\u{301}", "\u{202E}gnp.exe", "😀", "🏳️‍🌈", "\u{FEFF}", "\u{10FFFF}", "İ", "ß", "ﬃ", "\r\n", "\n", "\t",
    "null", "true", "0", "-1", "1e309", "NaN", "[]", "{}", "../../etc/passwd", "<script>alert(1)</script>", "${jndi:ldap://x}", "%00", "%s%n",
    String(repeating: "a", count: 201), String(repeating: "é", count: 600), String(repeating: "x", count: 70_000),
    "http://127.0.0.1:1/metadata", "https://127.0.0.1:1/", "admin", "viewer", "creator", "enterprise", "free", "dns", "email",
  ]

  public static func hostile(_ rng: inout SplitMix) -> String { hostileStrings[Int.random(in: 0..<hostileStrings.count, using: &rng)] }

  /// 0–3 small byte mutations: flip, insert a structural or invalid byte,
  /// delete or duplicate a slice, truncate.
  public static func mutate(_ input: [UInt8], _ rng: inout SplitMix, structural: [UInt8]) -> [UInt8] {
    var b = input
    for _ in 0..<Int.random(in: 0...3, using: &rng) {
      guard !b.isEmpty else {
        b = [structural[Int.random(in: 0..<structural.count, using: &rng)]]
        continue
      }
      let i = Int.random(in: 0..<b.count, using: &rng)
      switch Int.random(in: 0..<7, using: &rng) {
      case 0: b[i] ^= UInt8.random(in: 1...255, using: &rng)
      case 1: b.insert(structural[Int.random(in: 0..<structural.count, using: &rng)], at: i)
      case 2: b.insert([0x00, 0xFF, 0xC3, 0xE2, 0x80][Int.random(in: 0..<5, using: &rng)], at: i)
      case 3: b.removeSubrange(i..<min(b.count, i + Int.random(in: 1...16, using: &rng)))
      case 4: b.insert(contentsOf: b[i..<min(b.count, i + Int.random(in: 1...32, using: &rng))], at: Int.random(in: 0...b.count, using: &rng))
      case 5: b = Array(b.prefix(i))
      default: b.swapAt(i, Int.random(in: 0..<b.count, using: &rng))
      }
    }
    return b
  }
}
