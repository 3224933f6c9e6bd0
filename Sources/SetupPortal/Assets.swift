import HTTP1

/// The one stylesheet and the one small script of the setup pages, served
/// by Roster itself (G3: no outside assets; the CSP allows only 'self').
enum Assets {
  static func response(_ name: String) -> HTTPResponse? {
    switch name {
    case "setup.css": return HTTPResponse(status: 200, headers: [("Content-Type", "text/css; charset=utf-8"), cache], body: Array(css.utf8))
    case "setup.js": return HTTPResponse(status: 200, headers: [("Content-Type", "text/javascript; charset=utf-8"), cache], body: Array(js.utf8))
    default: return nil
    }
  }

  /// Assets carry no secret: an hour of caching (pages themselves are no-store).
  static let cache = (name: "Cache-Control", value: "public, max-age=3600")

  static let css = """
    :root { --ink: #1b1f24; --muted: #505a66; --line: #d0d7de; --bg: #f6f8fa; --accent: #0b57d0; --accent-ink: #fff;
      --ok: #116329; --ok-bg: #e6f4ea; --warn: #7a4b00; --warn-bg: #fff4d6; --bad: #a40e26; --bad-bg: #fdecee; --focus: #ffbf47; }
    * { box-sizing: border-box; }
    html { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: var(--bg); line-height: 1.5; }
    body { margin: 0; }
    a { color: var(--accent); }
    a:focus, button:focus, input:focus, select:focus, textarea:focus, summary:focus, main:focus { outline: 3px solid var(--focus); outline-offset: 2px; }
    .skip { position: absolute; left: -9999px; top: 0; background: var(--ink); color: #fff; padding: .5rem 1rem; z-index: 10; }
    .skip:focus { left: 1rem; }
    .visually-hidden { position: absolute !important; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
    .wrap { max-width: 1080px; margin: 0 auto; padding: 0 1.25rem; }
    header.top { background: var(--ink); color: #fff; padding: .75rem 0; }
    header.top .brand { font-weight: 700; letter-spacing: .02em; margin-right: .75rem; }
    header.top .for { color: #d0d7de; }
    .layout { display: grid; grid-template-columns: 15rem 1fr; gap: 2rem; padding-top: 1.5rem; padding-bottom: 2rem; }
    .layout.single { grid-template-columns: 1fr; max-width: 760px; }
    @media (max-width: 760px) { .layout { grid-template-columns: 1fr; } }
    nav.steps ol { list-style: none; margin: 0; padding: 0; counter-reset: step; }
    nav.steps li { margin: 0 0 .25rem; }
    nav.steps a { display: flex; justify-content: space-between; gap: .5rem; padding: .5rem .75rem; border-radius: 6px; text-decoration: none; color: var(--ink); }
    nav.steps a:hover { background: #eaeef2; }
    nav.steps a[aria-current="page"] { background: #fff; border: 1px solid var(--line); font-weight: 600; }
    .badge { font-size: .8rem; padding: 0 .5rem; border-radius: 999px; white-space: nowrap; align-self: center; }
    .badge.done { background: var(--ok-bg); color: var(--ok); }
    .badge.todo { background: #eaeef2; color: var(--muted); }
    .badge.wait { background: var(--warn-bg); color: var(--warn); }
    main { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1.5rem 2rem 2rem; min-width: 0; }
    main h1 { margin-top: 0; font-size: 1.6rem; }
    main h2 { font-size: 1.2rem; margin-top: 2rem; border-top: 1px solid var(--line); padding-top: 1.25rem; }
    main h2:first-of-type { border-top: none; padding-top: 0; }
    .lead { color: var(--muted); max-width: 46rem; }
    .field { margin: 0 0 1.25rem; border: 0; padding: 0; }
    fieldset.field { margin-bottom: 1.25rem; }
    legend, label { font-weight: 600; display: block; margin-bottom: .25rem; }
    .radio label, .checkbox label { display: inline; font-weight: 400; }
    .radio { margin: .35rem 0; }
    .radio .hint { margin: 0 0 0 1.6rem; }
    input[type=text], input[type=url], input[type=email], input[type=number], input[type=password], select, textarea {
      font: inherit; width: 100%; max-width: 38rem; padding: .45rem .6rem; border: 1px solid #8c959f; border-radius: 6px; background: #fff; color: var(--ink); }
    input[type=number] { max-width: 8rem; }
    textarea { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .85rem; }
    .hint { color: var(--muted); margin: 0 0 .35rem; font-size: .92rem; }
    .has-error input, .has-error select, .has-error textarea { border: 2px solid var(--bad); }
    .has-error { border-left: 4px solid var(--bad); padding-left: .75rem; }
    .field-error { color: var(--bad); font-weight: 600; margin: 0 0 .35rem; }
    .error-summary { border: 3px solid var(--bad); border-radius: 6px; padding: .75rem 1rem; margin-bottom: 1.5rem; }
    .error-summary h2 { margin: 0 0 .5rem; font-size: 1.1rem; border: 0; padding: 0; color: var(--bad); }
    .error-summary a { color: var(--bad); font-weight: 600; }
    .notice { border-radius: 6px; padding: .75rem 1rem; margin: 0 0 1.25rem; }
    .notice.ok { background: var(--ok-bg); color: var(--ok); }
    .notice.warn { background: var(--warn-bg); color: var(--warn); }
    .notice.bad { background: var(--bad-bg); color: var(--bad); }
    .notice p { margin: .25rem 0; }
    .button { font: inherit; font-weight: 600; border-radius: 6px; padding: .5rem 1.1rem; border: 1px solid transparent; cursor: pointer; text-decoration: none; display: inline-block; }
    .button.primary { background: var(--accent); color: var(--accent-ink); }
    .button.secondary { background: #fff; color: var(--accent); border-color: var(--accent); }
    .button.danger { background: #fff; color: var(--bad); border-color: var(--bad); }
    .copy-row { margin: 0 0 1rem; }
    .copy-box { display: flex; gap: .5rem; max-width: 46rem; }
    .copy-box textarea { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .88rem; max-width: none; flex: 1; background: var(--bg);
      resize: none; word-break: break-all; overflow: hidden; padding: .45rem .6rem; border: 1px solid #8c959f; border-radius: 6px; color: var(--ink); }
    .copy-box button.copy { align-self: flex-start; min-height: 2.3rem; }
    button.copy { font: inherit; font-size: .9rem; border: 1px solid var(--line); background: #fff; border-radius: 6px; padding: 0 .8rem; cursor: pointer; }
    button.copy.copied { background: var(--ok-bg); color: var(--ok); border-color: var(--ok); }
    ol.instructions > li { margin-bottom: 1rem; }
    .tabs { list-style: none; display: flex; flex-wrap: wrap; gap: .5rem; padding: 0; margin: 0 0 1.5rem; }
    .tabs a { display: block; padding: .4rem .9rem; border: 1px solid var(--line); border-radius: 999px; text-decoration: none; color: var(--ink); }
    .tabs a[aria-current="true"] { background: var(--ink); color: #fff; border-color: var(--ink); }
    table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
    th, td { text-align: left; padding: .5rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
    thead th { font-size: .9rem; color: var(--muted); }
    tbody th { font-weight: 600; }
    td .field { margin: 0; }
    td select { width: auto; min-width: 10rem; }
    td input[type=number] { width: 8rem; }
    .card { border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.25rem; margin: 0 0 1rem; }
    .card h3 { margin: 0 0 .25rem; font-size: 1.05rem; }
    .summary-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(15rem, 1fr)); gap: 1rem; }
    .summary-grid { margin-bottom: 1.25rem; }
    .summary-grid .card { margin: 0; }
    dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: .5rem 0; }
    dl.facts dt { color: var(--muted); }
    dl.facts dd { margin: 0; overflow-wrap: anywhere; }
    code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .9em; background: var(--bg); padding: 0 .25rem; border-radius: 4px; overflow-wrap: anywhere; }
    .secret { border: 2px solid var(--warn); background: var(--warn-bg); border-radius: 8px; padding: 1rem 1.25rem; margin-bottom: 1.5rem; }
    .secret h2 { border: 0; padding: 0; margin: 0 0 .5rem; }
    details { margin: .5rem 0 1rem; }
    details.replace > summary { cursor: pointer; color: var(--accent); font-weight: 600; margin-bottom: 1rem; }
    footer { color: var(--muted); font-size: .9rem; padding-bottom: 2rem; }
    .or { color: var(--muted); font-weight: 600; margin: .25rem 0 1rem; }
    """

  /// Copy buttons, and focus on the error summary when a form came back
  /// with errors. Everything works without it, except copying with a click.
  static let js = """
    "use strict";
    (function () {
      var live = document.createElement("p");
      live.className = "visually-hidden";
      live.setAttribute("aria-live", "polite");
      document.body.appendChild(live);
      function copied(button) {
        button.classList.add("copied");
        var text = button.firstChild.nodeValue;
        button.firstChild.nodeValue = "Copied";
        live.textContent = "Copied to the clipboard";
        setTimeout(function () { button.classList.remove("copied"); button.firstChild.nodeValue = text; }, 2000);
      }
      document.querySelectorAll("button.copy").forEach(function (button) {
        button.hidden = false;
        button.addEventListener("click", function () {
          var field = document.getElementById(button.getAttribute("data-copy"));
          if (!field) { return; }
          var fallback = function () { field.focus(); field.select(); try { document.execCommand("copy"); } catch (e) {} copied(button); };
          if (navigator.clipboard && window.isSecureContext) {
            navigator.clipboard.writeText(field.value).then(function () { copied(button); }, fallback);
          } else {
            fallback();
          }
        });
      });
      var summary = document.getElementById("error-summary");
      if (summary) { summary.focus(); }
    })();
    """
}
