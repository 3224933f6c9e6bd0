import JSON
import JSONRPC

/// docs/api.md, generated from the three processes' rpc.discover documents
/// (`deploy/api-doc.sh` writes it; a test fails when it is stale).
public enum APIReference {
  public static func markdown(_ documents: [(process: String, document: JSONValue)]) -> String {
    var out = """
      # Roster JSON-RPC reference

      <!-- Generated from the rpc.discover documents of the three processes by
           deploy/api-doc.sh. Do not edit: a test fails when this file is stale. -->

      Each process serves JSON-RPC 2.0 on its own Unix socket in `ROSTER_RUN_DIR`
      (default `/run/roster`): one request (or batch) per line, one answer per
      line. Params are named (a JSON object). Every process also answers
      `rpc.discover` (this reference as OpenRPC), `system.health` and
      `system.metrics`.

          roster call provisioning workspace.get '{"workspaceId":"…"}'
          echo '{"jsonrpc":"2.0","id":1,"method":"workspace.get","params":{"workspaceId":"…"}}' | socat -t 30 - UNIX-CONNECT:$ROSTER_RUN_DIR/provisioning.sock

      ## Errors

      An error has a `code`, a `message` for people, and `data.reason`, a
      stable snake_case word to branch on; a parameter error also names the
      parameter in `data.param`.

      | code | meaning | reasons every method may give |
      |---|---|---|
      | -32700 | the line is not JSON | `parse_error` |
      | -32600 | not a JSON-RPC 2.0 request | `invalid_request`, `batch_too_large`, `line_too_long`, `request_timeout` (the line did not finish within `ROSTER_REQUEST_TIMEOUT` of its first byte; the connection is then closed) |
      | -32601 | no such method on this socket (the message names the socket that has it) | `method_not_found` |
      | -32602 | a parameter is missing or wrong | `missing_param` (all missing ones in `data.params`), `unknown_param`, `invalid_param`, `too_long`, `nul_character`, `named_params_only` |
      | -32603 | a bug on our side (the log has the details) | `internal_error` |
      | -32001 | the thing named does not exist | `…_not_found` |
      | -32002 | the request conflicts with the current state | per method |
      | -32003 | the actor may not do this | `not_admin`, `ops_required`, `ops_not_permitted`, `not_permitted` |
      | -32004 | the database is unreachable for now; try again | `database_unavailable`, `too_many_connections` (every connection is working on a request; reconnect shortly) |

      Methods that change something take `actor`: `{"memberId": ID}` (an admin
      of the workspace the app vouches for) or `{"ops": NAME}` (only from a uid
      in `ROSTER_OPS_UIDS`). Changes are in `audit.list` with their actor.

      """
    for (process, document) in documents {
      let methods = (document["methods"]?.arrayValue ?? []).filter {
        guard let name = $0["name"]?.stringValue else { return false }
        return !name.hasPrefix("rpc.")
      }
      out += "\n## \(process).sock\n\n"
      out += methods.compactMap { m in m["name"]?.stringValue.map { "[`\($0)`](#\(anchor($0)))" } }.joined(separator: " · ") + "\n"
      for m in methods {
        let name = m["name"]?.stringValue ?? ""
        out += "\n### `\(name)`\n\n\(m["summary"]?.stringValue ?? "")\n\n"
        let params = m["params"]?.arrayValue ?? []
        if params.isEmpty {
          out += "No params.\n\n"
        } else {
          out += "| param | type | required | notes |\n|---|---|---|---|\n"
          for p in params {
            out += "| `\(p["name"]?.stringValue ?? "")` | \(cell(type(p["schema"] ?? .null))) | \(p["required"] == true ? "yes" : "no") | \(cell(p["description"]?.stringValue ?? "")) |\n"
          }
          out += "\n"
        }
        out += "**Result:** \(m["result"]?["summary"]?.stringValue ?? "")\n\n"
        let errors = (m["errors"]?.arrayValue ?? []).compactMap { e -> String? in
          guard let code = e["code"]?.intValue, let reason = e["data"]?["reason"]?.stringValue else { return nil }
          return "`\(code)` `\(reason)`"
        }
        out += "**Errors:** " + (errors.isEmpty ? "only the ones every method may give." : errors.joined(separator: ", ") + ".") + "\n"
      }
    }
    return out
  }

  static func anchor(_ name: String) -> String { name.lowercased().filter { $0.isLetter || $0.isNumber } }

  static func cell(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ") }

  /// A short type for a param's JSON Schema.
  static func type(_ schema: JSONValue) -> String {
    if let options = schema["oneOf"]?.arrayValue {
      return options.map { type($0) }.joined(separator: " or ")
    }
    switch schema["type"]?.stringValue {
    case "string"?:
      if let values = schema["enum"]?.arrayValue { return values.compactMap(\.stringValue).map { "`\"\($0)\"`" }.joined(separator: " | ") }
      if let format = schema["format"]?.stringValue { return format == "uuid" ? "UUID" : format }
      if let max = schema["maxLength"]?.intValue { return "string (≤ \(max) bytes)" }
      return "string"
    case "integer"?:
      switch (schema["minimum"]?.intValue, schema["maximum"]?.intValue) {
      case (let lo?, let hi?): return "integer \(lo)–\(hi)"
      case (let lo?, nil): return "integer ≥ \(lo)"
      default: return "integer"
      }
    case "boolean"?: return "boolean"
    case "null"?: return "null"
    case "array"?: return "array of " + type(schema["items"] ?? .null) + (schema["maxItems"]?.intValue.map { " (≤ \($0))" } ?? "")
    case "object"?:
      guard let props = schema["properties"]?.objectValue else { return "object" }
      let required = Set((schema["required"]?.arrayValue ?? []).compactMap(\.stringValue))
      return "{" + props.keys.sorted().map { "\($0)\(required.contains($0) ? "" : "?"): \(type(props[$0]!))" }.joined(separator: ", ") + "}"
    default: return "any JSON"
    }
  }
}
