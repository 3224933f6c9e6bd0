import JSON
import Vocabulary

/// The emails the product sends (N1), rendered from their data. Each
/// template declares the data it needs, so a missing field is refused when
/// the email is queued or previewed, not when it is sent.
public enum Templates {
  public struct Template: Sendable {
    public let name: MailTemplate
    public let required: [String]
    let render: @Sendable (Data) -> (subject: String, text: String)
  }

  /// Template data with string access (missing optional fields read as "").
  public struct Data: Sendable {
    let values: [String: JSONValue]
    public subscript(_ key: String) -> String {
      switch values[key] {
      case .string(let s)?: return s
      case .int(let i)?: return String(i)
      case .bool(let b)?: return b ? "yes" : "no"
      case .double(let d)?: return String(d)
      default: return ""
      }
    }
  }

  public struct MissingData: Error, Equatable {
    public let template: String
    public let fields: [String]
  }

  public struct UnknownTemplate: Error, Equatable {
    public let name: String
  }

  static let footer = "\n\n--\nSent by Roster on behalf of your workspace. You receive this because of your role in it."

  public static let all: [Template] = [
    Template(name: .domainVerification, required: ["domain", "workspaceName", "link"]) { d in
      (
        "Verify \(d["domain"]) for \(d["workspaceName"])",
        """
        Hello,

        Someone at \(d["workspaceName"]) asked to verify that \(d["domain"]) belongs to them.
        If that was you or your team, open this link to confirm:

        \(d["link"])

        The link works once\(d["expiresAt"].isEmpty ? "" : " and expires on \(d["expiresAt"])"). If you did not expect this email, ignore it: nothing changes until the link is opened.
        """ + footer
      )
    },
    Template(name: .ssoLive, required: ["workspaceName", "signInUrl"]) { d in
      (
        "\(d["workspaceName"]) now signs in with SSO",
        """
        Hello\(d["name"].isEmpty ? "" : " \(d["name"])"),

        \(d["workspaceName"]) now uses single sign-on. You have been signed out; sign in again through your company's identity provider:

        \(d["signInUrl"])

        Your videos and folders are unchanged.
        """ + footer
      )
    },
    Template(name: .transferTargetConflict, required: ["workspaceName", "targetEmail", "attempt"]) { d in
      (
        "Action needed: choose a new content transfer target for \(d["workspaceName"])",
        """
        Hello\(d["adminName"].isEmpty ? "" : " \(d["adminName"])"),

        Someone tried to \(d["attempt"]) \(d["targetName"].isEmpty ? d["targetEmail"] : "\(d["targetName"]) (\(d["targetEmail"]))"), but this person receives the content of removed members in \(d["workspaceName"]). The change was refused.

        Choose a new transfer target in the deprovisioning settings, then try again:
        \(d["settingsUrl"])
        """ + footer
      )
    },
    Template(name: .breakGlassSignIn, required: ["workspaceName", "memberEmail"]) { d in
      (
        "Break-glass sign-in to \(d["workspaceName"])",
        """
        Hello\(d["adminName"].isEmpty ? "" : " \(d["adminName"])"),

        \(d["memberEmail"]) signed in to \(d["workspaceName"]) with a password\(d["at"].isEmpty ? "" : " at \(d["at"])"), bypassing the enforced single sign-on. This is allowed for break-glass admins and is recorded in the audit log.

        If you did not expect this, review the SSO settings and the audit log now.
        """ + footer
      )
    },
    Template(name: .deprovisionSummary, required: ["workspaceName", "memberEmail", "mode", "content"]) { d in
      let what: String
      switch d["content"] {
      case "transferred" where d["count"] == "0": what = "They owned no content, so nothing was moved."
      case "transferred": what = "\(d["count"]) item(s) of content moved to \(d["targetEmail"]), in the folder \"\(d["folderName"])\"."
      case "deleted": what = "\(d["count"]) item(s) of content were deleted."
      default: what = "Their content stays theirs: posted videos stay visible, the rest stays reachable by link."
      }
      return (
        "\(d["memberEmail"]) was removed from \(d["workspaceName"])",
        """
        Hello\(d["adminName"].isEmpty ? "" : " \(d["adminName"])"),

        \(d["memberName"].isEmpty ? d["memberEmail"] : "\(d["memberName"]) (\(d["memberEmail"]))") was \(d["mode"] == "delete" ? "removed" : "deactivated") in \(d["workspaceName"]).
        \(what)
        """ + footer
      )
    },
  ]

  public static var names: [String] { all.map(\.name.rawValue) }

  public static func render(_ template: MailTemplate, data: [String: JSONValue]) throws -> (subject: String, text: String) {
    guard let t = all.first(where: { $0.name == template }) else { throw UnknownTemplate(name: template.rawValue) }
    let missing = t.required.filter { data[$0]?.isNull ?? true }
    guard missing.isEmpty else { throw MissingData(template: template.rawValue, fields: missing) }
    return t.render(Data(values: data))
  }

  /// A stored template name (a row written by another version, say).
  public static func render(_ name: String, data: [String: JSONValue]) throws -> (subject: String, text: String) {
    guard let template = MailTemplate(rawValue: name) else { throw UnknownTemplate(name: name) }
    return try render(template, data: data)
  }

  /// Data fields that hold secrets (a single-use link): never shown over RPC,
  /// and scrubbed from the outbox once the email is sent.
  public static let secretFields = ["link"]
}
