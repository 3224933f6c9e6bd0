import WebPages

/// The summary (G2): what is done and what is not, step by step.
extension SetupPortal {
  func overview(_ link: SetupLink) throws -> Content {
    let p = try Progress.load(ctx.pool, workspaceId: link.workspaceId)
    var cards: [HTML] = []
    var left: [HTML] = []
    for s in link.steps {
      let (label, kind) = p.badge(s)
      let state: HTML
      switch s {
      case .domains:
        state =
          p.verifiedDomains > 0
          ? "\(p.verifiedDomains) verified domain\(p.verifiedDomains == 1 ? "" : "s")\(p.pendingDomains > 0 ? ", \(p.pendingDomains) waiting" : "")."
          : p.pendingDomains > 0 ? "Waiting for the DNS record or the email link." : "No domain yet."
        if p.verifiedDomains == 0 { left.append("<li>Verify your company's email domain (<a href=\"\(link.path(.domains))\">Domains</a>).</li>") }
      case .sso:
        state =
          p.ssoTested
          ? "Connected and tested\(p.enforceSso ? "; required for everyone" : "")."
          : p.ssoConfigured ? "Connected, not tested yet." : "Not connected."
        if !p.ssoConfigured {
          left.append("<li>Connect your identity provider (<a href=\"\(link.path(.sso))\">Single sign-on</a>).</li>")
        } else if !p.ssoTested {
          left.append("<li>Run a test sign-in (<a href=\"\(link.path(.sso))#test-result\">Single sign-on</a>).</li>")
        }
      case .directory:
        state = p.directoryOn ? "On; \(p.scimUsers) user\(p.scimUsers == 1 ? "" : "s") provisioned." : "Off."
        if !p.directoryOn {
          left.append("<li>Turn on directory sync, if your IdP should add and remove people (<a href=\"\(link.path(.directory))\">Directory sync</a>).</li>")
        } else if p.scimUsers == 0 {
          left.append("<li>Assign people to the app in your IdP and start provisioning (<a href=\"\(link.path(.directory))\">Directory sync</a>).</li>")
        }
      case .roles:
        state = p.groups == 0 ? "No groups pushed yet." : "\(p.mappedGroups) of \(p.groups) groups give a role."
        if p.groups > 0 && p.mappedGroups == 0 {
          left.append("<li>Choose which groups give which role (<a href=\"\(link.path(.roles))\">Roles from groups</a>).</li>")
        }
      }
      cards.append(
        """
        <section class="card" aria-labelledby="card-\(s.rawValue)"><h3 id="card-\(s.rawValue)"><a href="\(link.path(s))">\(s.title)</a></h3>
        <p><span class="badge \(kind)">\(label)</span> \(state)</p></section>
        """)
    }
    let remaining: HTML =
      left.isEmpty
      ? PageKit.notice("Everything in this link is done. An admin of the workspace can now require single sign-on for everyone in the app.")
      : "<h2>What is left</h2><ul>\(left)</ul>"
    return Content(
      title: "Set up sign-in for \(link.workspaceName)",
      body: """
        <p class="lead">These steps connect \(link.workspaceName) to your company's identity provider, so people sign in with their company account and join or leave the workspace as your directory says. Each step works on its own, and you can come back to this link until it expires.</p>
        <div class="summary-grid">\(cards)</div>
        \(remaining)
        """)
  }
}
