/// What a refused test sign-in means and what to change in the IdP, by the
/// trace reason (P9), in the IT admin's words. docs/sso.md's table of
/// reasons is checked against this one by a test.
enum TraceAdvice {
  static func advice(_ reason: String) -> (meaning: String, change: String) {
    for (reasons, meaning, change) in table where reasons.contains(reason) { return (meaning, change) }
    return (
      "The sign-in was refused (\(reason)).",
      "Give the trace id below to whoever runs Roster for your app: it shows the details of this attempt."
    )
  }

  static let table: [(reasons: [String], meaning: String, change: String)] = [
    (
      ["signature_missing"], "Neither the SAML response nor the assertion was signed.",
      "Turn on assertion signing in the IdP (Okta and Entra sign it by default)."
    ),
    (
      ["signature_invalid"], "The signature does not match the certificate Roster has for your IdP.",
      "Give Roster the IdP's current metadata again (step 2 above): the signing certificate may have changed."
    ),
    (
      ["certificate_unknown"], "The response was signed with a certificate Roster does not know.",
      "The IdP is using a new signing certificate: give Roster the current metadata again (step 2 above)."
    ),
    (["digest_mismatch"], "The signed content was changed after it was signed.", "Check for a proxy that rewrites the response; if there is none, contact your Roster operator."),
    (
      ["algorithm_refused"], "The IdP signed with SHA-1 or another algorithm Roster refuses.",
      "Set the signature and digest algorithms to SHA-256 in the IdP."
    ),
    (
      ["signature_malformed", "reference_invalid", "signature_misplaced", "assertion_count", "assertion_misplaced", "canonicalization_failed"],
      "The response is not the single signed assertion Roster accepts.", "Check the IdP's SAML signing settings (sign the assertion, SHA-256)."
    ),
    (
      ["doctype_refused", "malformed_xml", "malformed_request", "too_large", "not_a_response", "malformed_assertion"],
      "The response could not be read as a SAML response.", "Check that the ACS URL in the IdP is exactly the one shown above."
    ),
    (["encrypted_assertion_unsupported"], "The assertion is encrypted.", "Turn assertion encryption off in the IdP; the connection is protected by HTTPS."),
    (["idp_status"], "The IdP answered with an error instead of a sign-in.", "Look at the IdP's sign-in logs for this attempt; often the user is not assigned to the app."),
    (
      ["issuer_mismatch"], "The response came from a different IdP (or app) than the one configured.",
      "Give Roster the metadata (or issuer URL) of the app you signed in through."
    ),
    (
      ["audience_mismatch"], "The assertion was made for another application.",
      "Set the audience / entity ID in the IdP to exactly the value shown above."
    ),
    (
      ["recipient_mismatch", "destination_mismatch"], "The response was addressed to another ACS URL.",
      "Set the single sign-on / ACS / reply URL in the IdP to exactly the value shown above."
    ),
    (["expired", "not_yet_valid"], "The assertion was outside its validity time.", "Check the clock of the IdP server (a few minutes of difference are allowed)."),
    (
      ["unknown_request", "request_expired", "replayed", "in_response_to_mismatch"],
      "The response did not answer a sign-in that was waiting (too old, or already used).", "Run the test sign-in again."
    ),
    (
      ["idp_initiated_not_allowed", "assertion_too_old"], "The sign-in was started from the IdP's dashboard, which is off for this workspace.",
      "Use the test sign-in button on this page."
    ),
    (
      ["no_email", "email_unverified"], "The IdP sent no (verified) email address.",
      "Send the email address: with SAML as the NameID (format emailAddress) or an email attribute; with OpenID Connect as the email claim (scope email)."
    ),
    (
      ["kid_unknown", "jwks_invalid", "token_malformed", "azp_mismatch", "nonce_mismatch", "token_exchange_failed", "idp_error", "idp_unreachable"],
      "The OpenID Connect exchange with the IdP failed.", "Check the client ID and secret and the issuer URL, then save them again."
    ),
    (
      ["outside_domain"], "The email address is not in one of the workspace's verified domains.",
      "Sign in with an address at a verified domain, or verify this domain in the Domains step."
    ),
    (["deactivated"], "This person's membership is deactivated.", "Reactivate them in the app (or in the IdP's provisioning) and try again."),
    (["not_a_member", "sso_link_required", "sso_required"], "The sign-in policy refused this person.", "Ask the workspace's admin to check the person's membership."),
    (["sso_not_configured", "unknown_connection", "connection_changed"], "The connection changed while the sign-in ran.", "Save the IdP details again, then rerun the test."),
  ]
}
