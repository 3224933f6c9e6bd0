import Foundation
import HTTP1
import WebPages

/// The pieces every setup page is made of: labelled fields with their error
/// next to them (G3), values with a copy button, notices, the layout.
enum PageKit {
  /// What a form sent back, and what was wrong with it, field by field.
  struct FormState {
    var values: [String: String] = [:]
    var errors: [(field: String?, message: String)] = []

    subscript(_ name: String) -> String { values[name] ?? "" }
    func error(_ field: String) -> String? { errors.first { $0.field == field }?.message }
    var isEmpty: Bool { errors.isEmpty }
    mutating func fail(_ field: String?, _ message: String) { errors.append((field, message)) }
  }

  /// A summary of the errors at the top of the form, each a link to its field.
  static func errorSummary(_ s: FormState) -> HTML {
    guard !s.errors.isEmpty else { return .empty }
    let items: [HTML] = s.errors.map { e in
      if let f = e.field { return "<li><a href=\"#\(f)\">\(e.message)</a></li>" }
      return "<li>\(e.message)</li>"
    }
    return """
      <div class="error-summary" role="alert" tabindex="-1" id="error-summary">
      <h2>\(s.errors.count == 1 ? "There is a problem" : "There are \(s.errors.count) problems")</h2><ul>\(items)</ul></div>
      """
  }

  static func notice(_ text: HTML, kind: String = "ok") -> HTML {
    "<div class=\"notice \(kind)\" role=\"status\">\(text)</div>"
  }

  static func hint(_ id: String, _ text: HTML?) -> HTML {
    guard let text else { return .empty }
    return "<p class=\"hint\" id=\"\(id)-hint\">\(text)</p>"
  }

  static func errorText(_ id: String, _ message: String?) -> HTML {
    guard let message else { return .empty }
    return "<p class=\"field-error\" id=\"\(id)-error\"><span class=\"visually-hidden\">Error: </span>\(message)</p>"
  }

  /// `aria-describedby` and `aria-invalid` for a field with a hint and/or an error.
  static func described(_ id: String, hint: Bool, error: Bool) -> HTML {
    let ids = (hint ? [id + "-hint"] : []) + (error ? [id + "-error"] : [])
    var out: HTML = ids.isEmpty ? .empty : " aria-describedby=\"\(ids.joined(separator: " "))\""
    if error { out += " aria-invalid=\"true\"" }
    return out
  }

  /// A labelled input (text, url, email, number, password).
  static func input(
    _ name: String, label: String, type: String = "text", value: String = "", error: String? = nil, hint: HTML? = nil, required: Bool = false,
    extra: HTML = .empty, hideLabel: Bool = false
  ) -> HTML {
    """
    <div class="field\(error != nil ? " has-error" : "")">
    <label for="\(name)"\(HTML.when(hideLabel, " class=\"visually-hidden\""))>\(label)</label>\(Self.hint(name, hint))\(errorText(name, error))
    <input id="\(name)" name="\(name)" type="\(type)" value="\(value)"\(required ? " required" : "")\(described(name, hint: hint != nil, error: error != nil))\(extra)>
    </div>
    """
  }

  static func textarea(_ name: String, label: String, value: String = "", error: String? = nil, hint: HTML? = nil, rows: Int = 6) -> HTML {
    """
    <div class="field\(error != nil ? " has-error" : "")">
    <label for="\(name)">\(label)</label>\(Self.hint(name, hint))\(errorText(name, error))
    <textarea id="\(name)" name="\(name)" rows="\(rows)" spellcheck="false"\(described(name, hint: hint != nil, error: error != nil))>\(value)</textarea>
    </div>
    """
  }

  static func file(_ name: String, label: String, accept: String, error: String? = nil, hint: HTML? = nil) -> HTML {
    """
    <div class="field\(error != nil ? " has-error" : "")">
    <label for="\(name)">\(label)</label>\(Self.hint(name, hint))\(errorText(name, error))
    <input id="\(name)" name="\(name)" type="file" accept="\(accept)"\(described(name, hint: hint != nil, error: error != nil))>
    </div>
    """
  }

  static func select(
    _ name: String, label: String, options: [(value: String, label: String)], selected: String, error: String? = nil, hint: HTML? = nil,
    hideLabel: Bool = false
  ) -> HTML {
    let opts: [HTML] = options.map { "<option value=\"\($0.value)\"\($0.value == selected ? " selected" : "")>\($0.label)</option>" }
    return """
      <div class="field\(error != nil ? " has-error" : "")">
      <label for="\(name)"\(HTML.when(hideLabel, " class=\"visually-hidden\""))>\(label)</label>\(Self.hint(name, hint))\(errorText(name, error))
      <select id="\(name)" name="\(name)"\(described(name, hint: hint != nil, error: error != nil))>\(opts)</select>
      </div>
      """
  }

  /// Radio buttons in a fieldset whose legend is the question.
  static func radios(_ name: String, legend: String, options: [(value: String, label: String, hint: String?)], selected: String, error: String? = nil)
    -> HTML
  {
    let items: [HTML] = options.enumerated().map { i, o in
      let id = i == 0 ? name : "\(name)-\(o.value)"
      return """
        <div class="radio"><input type="radio" id="\(id)" name="\(name)" value="\(o.value)"\(o.value == selected ? " checked" : "")\(o.hint != nil ? (" aria-describedby=\"\(id)-hint\"" as HTML) : .empty)>
        <label for="\(id)">\(o.label)</label>\(o.hint.map { "<p class=\"hint\" id=\"\(id)-hint\">\($0)</p>" as HTML })</div>
        """
    }
    return """
      <fieldset class="field\(error != nil ? " has-error" : "")"><legend>\(legend)</legend>\(errorText(name, error))\(items)</fieldset>
      """
  }

  static func checkbox(_ name: String, label: String, checked: Bool = false, error: String? = nil) -> HTML {
    """
    <div class="field checkbox\(error != nil ? " has-error" : "")">\(errorText(name, error))
    <input type="checkbox" id="\(name)" name="\(name)" value="yes"\(checked ? " checked" : "")\(described(name, hint: false, error: error != nil))>
    <label for="\(name)">\(label)</label></div>
    """
  }

  /// A value to paste elsewhere: read-only, selectable, with a copy button
  /// (shown by the script; without it the value is still selectable).
  /// A read-only text area rather than an input: long URLs and tokens wrap
  /// instead of hiding their end.
  static func copyValue(_ id: String, label: String, value: String, hint: HTML? = nil) -> HTML {
    """
    <div class="copy-row">
    <label for="\(id)">\(label)</label>\(Self.hint(id, hint))
    <div class="copy-box"><textarea id="\(id)" readonly rows="\(max(1, (value.count + 59) / 60))" spellcheck="false"\(hint != nil ? (" aria-describedby=\"\(id)-hint\"" as HTML) : .empty)>\(value)</textarea>\
    <button type="button" class="copy" data-copy="\(id)" hidden>Copy<span class="visually-hidden"> \(label)</span></button></div>
    </div>
    """
  }

  static func button(_ text: String, name: String? = nil, value: String? = nil, kind: String = "primary") -> HTML {
    let nv: HTML = name.map { n in " name=\"\(n)\" value=\"\(value ?? "")\"" } ?? .empty
    return "<button type=\"submit\" class=\"button \(kind)\"\(nv)>\(text)</button>"
  }

  static func date(_ rfc3339: String?) -> String {
    let fractional = ISO8601DateFormatter()
    fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    guard let rfc3339, let d = ISO8601DateFormatter().date(from: rfc3339) ?? fractional.date(from: rfc3339) else { return rfc3339 ?? "" }
    let f = DateFormatter()
    f.locale = Locale(identifier: "en_US_POSIX")
    f.timeZone = TimeZone(identifier: "UTC")
    f.dateFormat = "d MMM yyyy, HH:mm 'UTC'"
    return f.string(from: d)
  }
}
