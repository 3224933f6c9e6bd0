import SSO
import WebPages

/// The identity providers the setup pages give instructions for (G2). The
/// values in the instructions come from the live configuration.
enum IdP: String, CaseIterable, Sendable {
  case okta, entra, google, saml, oidc

  var name: String {
    switch self {
    case .okta: return "Okta"
    case .entra: return "Microsoft Entra ID"
    case .google: return "Google Workspace"
    case .saml: return "Other SAML 2.0"
    case .oidc: return "Other OpenID Connect"
    }
  }

  var isSAML: Bool { self != .oidc }

  /// The IdP as a sentence names it ("Create the app in …").
  var inSentence: String {
    switch self {
    case .saml, .oidc: return "your identity provider"
    default: return name
    }
  }

  /// A best guess from a saved connection, so a returning admin sees their IdP.
  static func guess(protocolName: String?, url: String?) -> IdP {
    let u = (url ?? "").lowercased()
    if protocolName == "oidc" { return .oidc }
    if u.contains("okta.com") || u.contains("oktapreview.com") { return .okta }
    if u.contains("microsoftonline.com") || u.contains("windows.net") { return .entra }
    if u.contains("google.com") { return .google }
    return protocolName == "saml" ? .saml : .okta
  }

  /// Step-by-step: creating the app in the IdP, with Roster's values to paste.
  func ssoInstructions(_ sp: SSOService.SPValues) -> HTML {
    let acs = PageKit.copyValue("sp-acs", label: acsLabel, value: sp.acsURL)
    let entity = PageKit.copyValue("sp-entity", label: entityLabel, value: sp.entityId)
    switch self {
    case .okta:
      return """
        <ol class="instructions">
        <li>In the Okta Admin Console, open <strong>Applications → Applications → Create App Integration</strong>, choose <strong>SAML 2.0</strong> and give the app a name.</li>
        <li>Under <strong>Configure SAML</strong>, paste these values:\(acs)\(entity)
        Keep <strong>Use this for Recipient URL and Destination URL</strong> checked. Set <strong>Name ID format</strong> to <code>EmailAddress</code> and <strong>Application username</strong> to <code>Email</code>.</li>
        <li>Add attribute statements <code>givenName</code> = <code>user.firstName</code> and <code>surname</code> = <code>user.lastName</code>. To give roles from groups, add a group attribute statement named <code>groups</code> (filter: <em>Matches regex</em> <code>.*</code>, or only the groups you map to roles).</li>
        <li>Finish, then assign the app to the people (or groups) who should sign in.</li>
        <li>On the app's <strong>Sign On</strong> tab, copy the <strong>Metadata URL</strong> and paste it below.</li>
        </ol>
        """
    case .entra:
      return """
        <ol class="instructions">
        <li>In the Microsoft Entra admin center, open <strong>Enterprise applications → New application → Create your own application</strong>, choose <em>Integrate any other application you don't find in the gallery (Non-gallery)</em>.</li>
        <li>Open <strong>Single sign-on → SAML</strong>. In <strong>Basic SAML Configuration</strong>, paste:\(entity)\(acs)</li>
        <li>In <strong>Attributes &amp; Claims</strong>, keep the email address, given name and surname claims; set the <strong>Unique User Identifier</strong> to <code>user.mail</code> (format: Email address). To give roles from groups, choose <strong>Add a group claim</strong>.</li>
        <li>In <strong>SAML Certificates</strong>, keep the signing option <em>Sign SAML assertion</em> with SHA-256, and copy the <strong>App Federation Metadata Url</strong>. Paste it below.</li>
        <li>Under <strong>Users and groups</strong>, assign the people who should sign in.</li>
        </ol>
        """
    case .google:
      return """
        <ol class="instructions">
        <li>In the Google Admin console, open <strong>Apps → Web and mobile apps → Add app → Add custom SAML app</strong> and name it.</li>
        <li>On <strong>Google Identity Provider details</strong>, choose <strong>Download metadata</strong>. You will upload that file below.</li>
        <li>On <strong>Service provider details</strong>, paste:\(acs)\(entity)
        Leave <em>Signed response</em> off (Google signs the assertion). Set <strong>Name ID format</strong> to <code>EMAIL</code> and <strong>Name ID</strong> to <em>Basic Information › Primary email</em>.</li>
        <li>On <strong>Attribute mapping</strong>, map <em>First name</em> → <code>givenName</code> and <em>Last name</em> → <code>surname</code>. To give roles from groups, add <em>Group membership</em> → <code>groups</code>.</li>
        <li>Finish, then set <strong>User access</strong> to <em>ON for everyone</em> (or the organisational units who should sign in). It can take a few minutes to apply.</li>
        </ol>
        """
    case .saml:
      return """
        <ol class="instructions">
        <li>In your identity provider, create a SAML 2.0 application (a "service provider" or "relying party") with these values:\(acs)\(entity)
        \(PageKit.copyValue("sp-metadata", label: "Service provider metadata URL (if your IdP can read it)", value: sp.metadataURL))</li>
        <li>Send the person's email address as the NameID (format <code>emailAddress</code>) or as an <code>email</code> attribute; optionally <code>givenName</code>, <code>surname</code> and <code>groups</code>.</li>
        <li>Sign the assertion (or the whole response) with RSA-SHA256 or ECDSA-SHA256. Do not encrypt the assertion.</li>
        <li>Copy the IdP's metadata (a URL, or the XML file) and give it below.</li>
        </ol>
        """
    case .oidc:
      return """
        <ol class="instructions">
        <li>In your identity provider, register a <strong>web application</strong> (confidential client) using the authorization code flow.</li>
        <li>Set its redirect (callback) URI to:\(PageKit.copyValue("sp-redirect", label: "Redirect URI", value: sp.oidcRedirectURI))</li>
        <li>Allow the scopes <code>openid</code>, <code>email</code> and <code>profile</code>. To give roles from groups, add a <code>groups</code> claim to the ID token.</li>
        <li>Copy the <strong>issuer URL</strong> (the address before <code>/.well-known/openid-configuration</code>), the <strong>client ID</strong> and the <strong>client secret</strong>, and give them below. Okta (<code>https://YOUR-ORG.okta.com</code>) and Entra (<code>https://login.microsoftonline.com/TENANT-ID/v2.0</code>) work here too.</li>
        </ol>
        """
    }
  }

  var acsLabel: String {
    switch self {
    case .okta: return "Single sign-on URL"
    case .entra: return "Reply URL (Assertion Consumer Service URL)"
    case .google: return "ACS URL"
    default: return "Assertion Consumer Service (ACS) URL"
    }
  }

  var entityLabel: String {
    switch self {
    case .okta: return "Audience URI (SP Entity ID)"
    case .entra: return "Identifier (Entity ID)"
    case .google: return "Entity ID"
    default: return "Service provider entity ID (audience)"
    }
  }

  /// Where the metadata comes from, in the IdP's words.
  var metadataHint: String {
    switch self {
    case .okta: return "Okta: the app's Sign On tab → Metadata URL."
    case .entra: return "Entra: Single sign-on → SAML Certificates → App Federation Metadata Url."
    case .google: return "Google: the file from Download metadata (upload it below)."
    default: return "The IdP's SAML metadata: a URL Roster can fetch, the XML itself, or a file."
    }
  }

  /// Provisioning (SCIM) in the IdP, with Roster's SCIM URL.
  func directoryInstructions(scimURL: String) -> HTML {
    switch self {
    case .okta:
      return """
        <ol class="instructions">
        <li>In the Okta app you created for sign-in, open <strong>General → App Settings → Edit</strong> and set <strong>Provisioning</strong> to <em>SCIM</em>.</li>
        <li>On the new <strong>Provisioning → Integration</strong> tab, paste:\(PageKit.copyValue("scim-url", label: "SCIM connector base URL", value: scimURL))
        Unique identifier field for users: <code>email</code>. Supported provisioning actions: <em>Push New Users</em>, <em>Push Profile Updates</em>, <em>Push Groups</em>. Authentication Mode: <em>HTTP Header</em>, with the bearer token (shown when you turn directory sync on or rotate the token).</li>
        <li>Choose <strong>Test Connector Configuration</strong>, then save. Under <strong>To App</strong>, enable <em>Create Users</em>, <em>Update User Attributes</em> and <em>Deactivate Users</em>.</li>
        <li>Push the groups that should give roles (<strong>Push Groups</strong> tab); they then appear in the Roles step.</li>
        </ol>
        """
    case .entra:
      return """
        <ol class="instructions">
        <li>In the enterprise application you created for sign-in, open <strong>Provisioning → Get started</strong> and set <strong>Provisioning Mode</strong> to <em>Automatic</em>.</li>
        <li>Under <strong>Admin Credentials</strong>, paste:\(PageKit.copyValue("scim-url", label: "Tenant URL", value: scimURL + "?aadOptscim062020"))
        and the bearer token as the <strong>Secret Token</strong>. Choose <strong>Test Connection</strong>, then save.</li>
        <li>In <strong>Mappings</strong>, keep <em>Provision Microsoft Entra ID Users</em> and <em>Groups</em> on; <code>userName</code> must be the email (<code>userPrincipalName</code> or <code>mail</code>).</li>
        <li>Assign the users and groups to the application, then <strong>Start provisioning</strong>. Entra syncs about every 40 minutes; <em>Provision on demand</em> sends one person at once.</li>
        </ol>
        """
    case .google:
      return """
        <p>Google Workspace does not send users to custom SAML apps over SCIM: people are added when they first sign in through Google, with the default role. You can still turn on Directory Sync for another tool that speaks SCIM 2.0 with the values below.</p>
        \(PageKit.copyValue("scim-url", label: "SCIM base URL", value: scimURL))
        """
    case .saml, .oidc:
      return """
        <ol class="instructions">
        <li>In your identity provider (or provisioning tool), add a SCIM 2.0 connection with:\(PageKit.copyValue("scim-url", label: "SCIM base URL", value: scimURL))
        and authentication by HTTP header <code>Authorization: Bearer</code> with the bearer token (shown when you turn directory sync on or rotate the token).</li>
        <li>Send users with <code>userName</code> set to their email address, and <code>active: false</code> (or DELETE) when someone leaves. Groups pushed over SCIM can give roles in the Roles step.</li>
        </ol>
        """
    }
  }
}
