import Addresses
import Foundation

/// The shipped lists behind rule D2: public and disposable mail domains, and
/// the public suffix list (a domain that *is* a public suffix — `co.uk`,
/// `github.io` — cannot be claimed by one company).
public struct DomainLists: Sendable {
  let publicMail: Set<String>
  let suffixRules: Set<String>
  let wildcardRules: Set<String>
  let exceptionRules: Set<String>

  public init(publicMail: Set<String>, suffixRules: Set<String>, wildcardRules: Set<String>, exceptionRules: Set<String>) {
    self.publicMail = publicMail
    self.suffixRules = suffixRules
    self.wildcardRules = wildcardRules
    self.exceptionRules = exceptionRules
  }

  public static let fileNames = ["free-email-domains.txt", "disposable-email-domains.txt", "extra-blocked-domains.txt"]

  public static func load(from directory: String) throws -> DomainLists {
    var mail = Set<String>()
    for name in fileNames {
      let text = try String(contentsOfFile: directory + "/" + name, encoding: .utf8)
      for line in text.split(separator: "\n") {
        let d = line.trimmingCharacters(in: .whitespaces).lowercased()
        if !d.isEmpty && !d.hasPrefix("#") { mail.insert(d) }
      }
    }
    var rules = Set<String>(), wild = Set<String>(), except = Set<String>()
    let psl = try String(contentsOfFile: directory + "/public_suffix_list.dat", encoding: .utf8)
    for line in psl.split(separator: "\n") {
      guard let first = line.split(separator: " ").first else { continue }
      var rule = String(first).trimmingCharacters(in: .whitespaces)
      if rule.isEmpty || rule.hasPrefix("//") { continue }
      rule = (try? DomainName.normalizeSuffix(rule)) ?? rule.lowercased()
      if rule.hasPrefix("!") {
        except.insert(String(rule.dropFirst()))
      } else if rule.hasPrefix("*.") {
        wild.insert(String(rule.dropFirst(2)))
      } else {
        rules.insert(rule)
      }
    }
    guard mail.count > 10_000, rules.count > 5_000 else {
      throw DomainListError("the domain lists in \(directory) look incomplete")
    }
    return DomainLists(publicMail: mail, suffixRules: rules, wildcardRules: wild, exceptionRules: except)
  }

  /// Finds the lists: $ROSTER_DATA_DIR, next to the executable
  /// (`Roster_Policy.resources`, `../share/roster/data`), or the source tree.
  public static func locate(env: [String: String] = ProcessInfo.processInfo.environment) -> String? {
    if let d = env["ROSTER_DATA_DIR"], !d.isEmpty { return d }
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    var candidates = [
      exe.appendingPathComponent("Roster_Policy.resources").path,
      exe.appendingPathComponent("Roster_Policy.resources/Resources").path,
      exe.appendingPathComponent("../share/roster/data").path, "/usr/local/share/roster/data",
    ]
    candidates.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources").path)
    for c in candidates where FileManager.default.fileExists(atPath: c + "/public_suffix_list.dat") { return c }
    return nil
  }

  /// Whether a normalised domain (or a parent of it) is a public or disposable mail domain.
  public func isPublicMailDomain(_ domain: String) -> Bool {
    var d = Substring(domain)
    while true {
      if publicMail.contains(String(d)) { return true }
      guard let dot = d.firstIndex(of: ".") else { return false }
      d = d[d.index(after: dot)...]
    }
  }

  /// Whether the domain is itself a public suffix (PSL algorithm: rules,
  /// wildcards and exceptions).
  public func isPublicSuffix(_ domain: String) -> Bool {
    if exceptionRules.contains(domain) { return false }
    if suffixRules.contains(domain) { return true }
    if let dot = domain.firstIndex(of: ".") {
      let parent = String(domain[domain.index(after: dot)...])
      if wildcardRules.contains(parent) { return true }
    }
    return false
  }

  /// D2: normalise, then refuse public suffixes and public/disposable mail domains.
  public func validateClaimable(_ input: String) throws(DomainError) -> String {
    let domain = try DomainName.normalize(input)
    if isPublicSuffix(domain) {
      throw DomainError("public_domain", "'\(domain)' is a public suffix (like co.uk or github.io) and cannot belong to one organisation.")
    }
    if isPublicMailDomain(domain) {
      throw DomainError("public_domain", "'\(domain)' is a public or disposable email domain and cannot be claimed by a workspace.")
    }
    return domain
  }
}

public struct DomainListError: Error, CustomStringConvertible {
  public let description: String
  init(_ d: String) { description = d }
}

extension DomainName {
  /// Normalises a public-suffix rule, keeping its `*.` or `!` prefix.
  static func normalizeSuffix(_ rule: String) throws(DomainError) -> String {
    if rule.hasPrefix("!") { return "!" + (try normalizeLoose(String(rule.dropFirst()))) }
    if rule.hasPrefix("*.") { return "*." + (try normalizeLoose(String(rule.dropFirst(2)))) }
    return try normalizeLoose(rule)
  }

  /// Like `normalize` but allows single labels (TLD rules).
  static func normalizeLoose(_ s: String) throws(DomainError) -> String {
    if !s.contains(".") { return String(try normalize(s + ".invalid").dropLast(".invalid".count)) }
    return try normalize(s)
  }
}
