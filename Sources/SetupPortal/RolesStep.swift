import Foundation
import HTTP1
import JSON
import JSONRPC
import WebPages

/// Roles from groups (G2): the groups the IdP pushed, each mapped to a role
/// with a priority. The whole form is saved in one transaction or not at
/// all (G3).
extension SetupPortal {
  func rolesPage(_ link: SetupLink, form: PageKit.FormState, query: [String: String]) throws -> Content {
    let groups = try call(link, "group.list").get()["groups"]?.arrayValue ?? []
    var notice: HTML = .empty
    switch query["done"] {
    case "saved"?: notice = PageKit.notice("Saved. Members' roles were updated at once.")
    case "unchanged"?: notice = PageKit.notice("Nothing changed.")
    default: break
    }
    let table: HTML
    if groups.isEmpty {
      table = """
        <p>No groups yet. Groups appear here once your identity provider pushes them over SCIM (Okta: the app's Push Groups tab; Entra: provisioning with groups assigned). See <a href="\(link.steps.contains(.directory) ? link.path(.directory) : link.base)">Directory sync</a>.</p>
        """
    } else {
      let rows: [HTML] = groups.map { g in
        let id = g["groupId"]?.stringValue ?? ""
        let name = g["displayName"]?.stringValue ?? ""
        let sent = !form.values.isEmpty
        let role = sent ? form["role-\(id)"] : (g["role"]?.stringValue ?? "")
        let priority = sent ? form["priority-\(id)"] : (g["priority"]?.intValue.map(String.init) ?? "")
        let roleOptions: [(value: String, label: String)] = [("", "No role")] + Self.roleOptions
        return """
          <tr><th scope="row">\(name)<input type="hidden" name="group" value="\(id)"></th><td>\(g["memberCount"]?.intValue ?? 0)</td>
          <td>\(PageKit.select("role-\(id)", label: "Role for \(name)", options: roleOptions, selected: role, error: form.error("role-\(id)"), hideLabel: true))</td>
          <td>\(PageKit.input("priority-\(id)", label: "Priority for \(name)", type: "number", value: priority, error: form.error("priority-\(id)"), extra: " min=\"1\" max=\"1000000\" inputmode=\"numeric\"", hideLabel: true))</td></tr>
          """
      }
      table = """
        <form method="post" action="\(link.path(.roles))" novalidate aria-labelledby="groups-heading">\(formKey(link))
        <table><caption class="visually-hidden">Groups and the roles they give</caption>
        <thead><tr><th scope="col">Group</th><th scope="col">Members</th><th scope="col">Role</th><th scope="col">Priority (1 is highest)</th></tr></thead>
        <tbody>\(rows)</tbody></table>
        \(PageKit.button("Save roles"))
        </form>
        """
    }
    return Content(
      title: "Roles from groups",
      body: """
        <p class="lead">Groups your identity provider pushes can give people a role in \(link.workspaceName). Someone in several mapped groups gets the role of the group with the highest priority (1 is the highest). People in no mapped group keep the default role. A role set on the person themselves in the IdP (the <code>loomMemberRole</code> attribute) wins over groups.</p>
        \(notice)\(PageKit.errorSummary(form))
        <h2 id="groups-heading">Groups</h2>
        \(table)
        """)
  }

  func postRoles(_ link: SetupLink, _ form: FormData) throws -> HTTPResponse {
    let groups = try call(link, "group.list").get()["groups"]?.arrayValue ?? []
    let byId = Dictionary(groups.compactMap { g in g["groupId"]?.stringValue.map { ($0, g) } }, uniquingKeysWith: { a, _ in a })
    var s = PageKit.FormState()
    for (k, v) in form.fields where k != "form_key" { s.values[k] = v }
    var mappings: [JSONValue] = []
    let sent = form.all("group").map { $0.lowercased() }
    if sent.isEmpty { s.fail(nil, "The form named no groups. Reload the page and try again.") }
    // Ids from another workspace (or made up) refuse the whole form.
    if let stranger = sent.first(where: { byId[$0] == nil }) {
      ctx.logger.warning("setup roles form names a group outside the workspace", ["link": .string(link.id), "group": .string(String(stranger.prefix(64)))])
      s.fail(nil, "The form names a group that is not in this workspace. Reload the page; nothing was saved.")
    } else {
      for id in Set(sent).sorted() {
        let g = byId[id]!
        let name = g["displayName"]?.stringValue ?? id
        let role = form["role-\(id)"] ?? ""
        let priorityText = (form["priority-\(id)"] ?? "").trimmingCharacters(in: .whitespaces)
        guard role.isEmpty || Self.roleOptions.contains(where: { $0.value == role }) else {
          s.fail("role-\(id)", "Choose a role for \(name).")
          continue
        }
        var priority: Int?
        if !role.isEmpty {
          guard let p = Int(priorityText), (1...1_000_000).contains(p) else {
            s.fail("priority-\(id)", "Give \(name) a priority from 1 (highest) to 1000000.")
            continue
          }
          priority = p
        }
        let oldRole = g["role"]?.stringValue ?? ""
        let oldPriority = g["priority"]?.intValue.map(Int.init)
        if role != oldRole || (!role.isEmpty && priority != oldPriority) {
          var m: [String: JSONValue] = ["groupId": .string(id), "role": role.isEmpty ? .null : .string(role)]
          if let priority { m["priority"] = .int(Int64(priority)) }
          mappings.append(.object(m))
        }
      }
    }
    if s.isEmpty {
      if mappings.isEmpty { return redirect(link.path(.roles) + "?done=unchanged") }
      switch call(link, "group.mapRoles", ["mappings": .array(mappings)], acting: true) {
      case .success: return redirect(link.path(.roles) + "?done=saved")
      case .failure(let e): s.fail(nil, e.message)
      }
    }
    var c = try rolesPage(link, form: s, query: [:])
    c.status = 422
    return render(link, .roles, c)
  }
}
