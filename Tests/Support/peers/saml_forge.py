"""SAML responses for the SSO tests, signed by an independent signer (signxml):
valid ones, and a corpus of the attacks SAML libraries have fallen to.

Usage: saml_forge.py CONFIG_JSON OUTDIR
       saml_forge.py keys OUTDIR   (writes idp, ec and attacker keys and self-signed certificates)
       saml_forge.py bench CONFIG_JSON OUTFILE N   (N valid IdP-initiated responses, base64, one per line)
CONFIG_JSON: {"idpEntityId", "spEntityId", "acsUrl", "email", "inResponseTo" (or null),
              "now" (epoch seconds), "idpKey", "idpCert", "ecKey", "ecCert",
              "attackerKey", "attackerCert"}  (paths to PEM files)
Writes OUTDIR/<case>.xml and OUTDIR/manifest.json: a list of
{"name", "file", "reason"} where reason is the trace reason Roster must give
("ok" for a response it must accept). Cases are built from scratch each run,
so they carry fresh IDs and times around `now`.
"""
import copy
import datetime
import json
import os
import secrets
import sys

from lxml import etree
from signxml import XMLSigner, methods

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"samlp": SAMLP, "saml": SAML, "ds": DS}
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"


class LenientSigner(XMLSigner):
    """signxml refuses SHA-1 and HMAC by default; the corpus needs them."""

    def check_deprecated_methods(self):
        pass


def ts(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id():
    return "_" + secrets.token_hex(20)


def q(tag):
    prefix, local = tag.split(":")
    return "{%s}%s" % (NS[prefix], local)


def build(cfg, **o):
    now = cfg["now"]
    email = o.get("email", cfg["email"])
    rid, aid = new_id(), o.get("assertion_id") or new_id()
    irt = o.get("in_response_to", cfg.get("inResponseTo"))
    resp = etree.Element(q("samlp:Response"), nsmap={"samlp": SAMLP, "saml": SAML})
    resp.set("ID", rid)
    resp.set("Version", "2.0")
    resp.set("IssueInstant", ts(now))
    if o.get("destination", cfg["acsUrl"]) is not None:
        resp.set("Destination", o.get("destination", cfg["acsUrl"]))
    if irt:
        resp.set("InResponseTo", irt)
    etree.SubElement(resp, q("saml:Issuer")).text = o.get("issuer", cfg["idpEntityId"])
    status = etree.SubElement(resp, q("samlp:Status"))
    etree.SubElement(status, q("samlp:StatusCode")).set("Value", o.get("status", "urn:oasis:names:tc:SAML:2.0:status:Success"))
    a = etree.SubElement(resp, q("saml:Assertion"))
    a.set("ID", aid)
    a.set("Version", "2.0")
    a.set("IssueInstant", ts(o.get("issued", now)))
    etree.SubElement(a, q("saml:Issuer")).text = o.get("issuer", cfg["idpEntityId"])
    etree.SubElement(a, q("ds:Signature"), nsmap={"ds": DS}).set("Id", "placeholder")
    subj = etree.SubElement(a, q("saml:Subject"))
    nid = etree.SubElement(subj, q("saml:NameID"))
    nid.set("Format", "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress")
    nid.text = email
    sc = etree.SubElement(subj, q("saml:SubjectConfirmation"))
    sc.set("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
    scd = etree.SubElement(sc, q("saml:SubjectConfirmationData"))
    scd.set("NotOnOrAfter", ts(o.get("scd_not_on_or_after", now + 300)))
    scd.set("Recipient", o.get("recipient", cfg["acsUrl"]))
    if irt:
        scd.set("InResponseTo", irt)
    cond = etree.SubElement(a, q("saml:Conditions"))
    cond.set("NotBefore", ts(o.get("not_before", now - 60)))
    cond.set("NotOnOrAfter", ts(o.get("not_on_or_after", now + 300)))
    ar = etree.SubElement(cond, q("saml:AudienceRestriction"))
    for aud in o.get("audiences", [cfg["spEntityId"]]):
        etree.SubElement(ar, q("saml:Audience")).text = aud
    st = etree.SubElement(a, q("saml:AuthnStatement"))
    st.set("AuthnInstant", ts(now))
    st.set("SessionIndex", new_id())
    ctx = etree.SubElement(st, q("saml:AuthnContext"))
    etree.SubElement(ctx, q("saml:AuthnContextClassRef")).text = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
    attrs = etree.SubElement(a, q("saml:AttributeStatement"))
    for name, values in o.get("attributes", {"givenName": ["Alice"], "surname": ["Admin"], "groups": ["Engineering"]}).items():
        at = etree.SubElement(attrs, q("saml:Attribute"))
        at.set("Name", name)
        for v in values:
            etree.SubElement(at, q("saml:AttributeValue")).text = v
    return resp


def read(path):
    with open(path, "rb") as f:
        return f.read()


def load_key(path):
    """A private key object, parsed once (parsing a PEM RSA key costs ~40 ms)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    return load_pem_private_key(read(path), password=None, unsafe_skip_rsa_key_validation=True)


def sign(element, key, cert=None, alg="rsa-sha256", digest="sha256", signer_cls=XMLSigner):
    """Signs `element` (enveloped, exclusive C14N) in place of its placeholder, or appended."""
    if element.find(q("ds:Signature")) is None:
        issuer = element.find(q("saml:Issuer"))
        ph = etree.Element(q("ds:Signature"), nsmap={"ds": DS})
        ph.set("Id", "placeholder")
        if issuer is not None:
            issuer.addnext(ph)
        else:
            element.insert(0, ph)
    signer = signer_cls(method=methods.enveloped, signature_algorithm=alg, digest_algorithm=digest, c14n_algorithm=EXC_C14N)
    return signer.sign(element, key=key, cert=cert, reference_uri=element.get("ID"))


def drop_placeholder(el):
    for ph in el.findall(".//" + q("ds:Signature")):
        if ph.get("Id") == "placeholder" and len(ph) == 0:
            ph.getparent().remove(ph)


def signed_assertion_response(cfg, keys, **o):
    resp = build(cfg, **o)
    a = resp.find(q("saml:Assertion"))
    signed = sign(a, keys["key"], keys["cert"], **o.get("sig", {}))
    resp.replace(a, signed)
    return resp


def signed_response(cfg, keys, assertion_signed=False, **o):
    resp = build(cfg, **o)
    if assertion_signed:
        a = resp.find(q("saml:Assertion"))
        resp.replace(a, sign(a, keys["key"], keys["cert"]))
    else:
        drop_placeholder(resp)
    return sign(resp, keys["key"], keys["cert"])


def xml_bytes(el):
    return etree.tostring(el, xml_declaration=False, encoding="utf-8")


def make_keys(out):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    os.makedirs(out, exist_ok=True)
    for name, key in [("idp", rsa.generate_private_key(65537, 2048)), ("ec", ec.generate_private_key(ec.SECP256R1())),
                      ("attacker", rsa.generate_private_key(65537, 2048)), ("other", rsa.generate_private_key(65537, 2048))]:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name + ".idp.example.test")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=3650)).sign(key, hashes.SHA256()))
        with open(os.path.join(out, name + ".key"), "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        with open(os.path.join(out, name + ".crt"), "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
    print("ready")


def main():
    if sys.argv[1] == "keys":
        make_keys(sys.argv[2])
        return
    if sys.argv[1] == "bench":
        cfg = json.load(open(sys.argv[2]))
        keys = {"key": load_key(cfg["idpKey"]), "cert": read(cfg["idpCert"])}
        with open(sys.argv[3], "w") as f:
            for _ in range(int(sys.argv[4])):
                f.write(__import__("base64").b64encode(xml_bytes(signed_assertion_response(cfg, keys, in_response_to=None))).decode() + "\n")
        print("ready")
        return
    cfg = json.load(open(sys.argv[1]))
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    keys = {"key": load_key(cfg["idpKey"]), "cert": read(cfg["idpCert"])}
    ec = {"key": load_key(cfg["ecKey"]), "cert": read(cfg["ecCert"])}
    attacker = {"key": load_key(cfg["attackerKey"]), "cert": read(cfg["attackerCert"])}
    now = cfg["now"]
    cases = []

    def add(name, reason, el_or_bytes):
        data = el_or_bytes if isinstance(el_or_bytes, bytes) else xml_bytes(el_or_bytes)
        path = os.path.join(out, name + ".xml")
        with open(path, "wb") as f:
            f.write(data)
        cases.append({"name": name, "file": path, "reason": reason})

    # Accepted shapes.
    add("ok_assertion_signed", "ok", signed_assertion_response(cfg, keys))
    add("ok_response_signed", "ok", signed_response(cfg, keys))
    add("ok_both_signed", "ok", signed_response(cfg, keys, assertion_signed=True))
    add("ok_ecdsa_p256", "ok", signed_assertion_response(cfg, ec, sig={"alg": "ecdsa-sha256"}))
    add("ok_rsa_sha512", "ok", signed_assertion_response(cfg, keys, sig={"alg": "rsa-sha512", "digest": "sha512"}))
    # Comment injection: the signature is valid; the canonical NameID reads
    # "alice@…<!---->.evil.test" as one address, never the shorter one.
    inj = build(cfg, email="COMMENT")
    a = inj.find(q("saml:Assertion"))
    nid = a.find(".//" + q("saml:NameID"))
    local, domain = cfg["email"].split("@")
    nid.text = local + "@" + domain
    nid.append(etree.Comment(""))
    nid[-1].tail = ".evil.test"
    inj.replace(a, sign(a, keys["key"], keys["cert"]))
    add("comment_injection_in_nameid", "ok:" + local + "@" + domain + ".evil.test", inj)

    # Unsigned, wrongly signed.
    unsigned = build(cfg)
    drop_placeholder(unsigned)
    add("unsigned", "signature_missing", unsigned)
    add("attacker_cert_in_keyinfo", "certificate_unknown", signed_assertion_response(cfg, attacker))
    r = signed_assertion_response(cfg, attacker)
    for ki in r.findall(".//" + q("ds:KeyInfo")):
        ki.getparent().remove(ki)
    add("attacker_key_no_keyinfo", "signature_invalid", r)
    # The assertion changed after signing.
    r = signed_assertion_response(cfg, keys)
    r.find(".//" + q("saml:NameID")).text = "mallory@" + cfg["email"].split("@")[1]
    add("tampered_after_signing", "digest_mismatch", r)

    # Algorithms.
    add("sha1_signature", "algorithm_refused", signed_assertion_response(cfg, keys, sig={"alg": "rsa-sha1", "digest": "sha1", "signer_cls": LenientSigner}))
    add("sha1_digest", "algorithm_refused", signed_assertion_response(cfg, keys, sig={"alg": "rsa-sha256", "digest": "sha1", "signer_cls": LenientSigner}))
    hm = build(cfg)
    a = hm.find(q("saml:Assertion"))
    hm.replace(a, sign(a, b"secret-hmac-key-known-to-attacker", None, alg="hmac-sha256", signer_cls=LenientSigner))
    add("hmac_signature", "algorithm_refused", hm)

    # Signature structure.
    r = signed_assertion_response(cfg, keys)
    si = r.find(".//" + q("ds:SignedInfo"))
    si.addnext(copy.deepcopy(si))
    add("two_signedinfo", "signature_malformed", r)
    r = signed_assertion_response(cfg, keys)
    ref = r.find(".//" + q("ds:Reference"))
    ref.addnext(copy.deepcopy(ref))
    add("two_references", "signature_malformed", r)
    # A signature over some other element: an Extensions element is signed,
    # the assertion is not.
    other = build(cfg)
    drop_placeholder(other)
    ext = etree.Element(q("samlp:Extensions"))
    ext.set("ID", new_id())
    etree.SubElement(ext, q("saml:Issuer")).text = cfg["idpEntityId"]
    other.insert(1, ext)
    signed_ext = sign(ext, keys["key"], keys["cert"])
    other.replace(ext, signed_ext)
    sig = signed_ext.find(q("ds:Signature"))
    signed_ext.remove(sig)
    other.find(q("saml:Assertion")).insert(1, sig)
    add("signature_over_another_element", "reference_invalid", other)
    # Duplicate IDs: another element carries the assertion's ID.
    r = signed_assertion_response(cfg, keys)
    aid = r.find(q("saml:Assertion")).get("ID")
    dup = etree.Element(q("samlp:Extensions"))
    dup.set("ID", aid)
    r.insert(1, dup)
    add("duplicate_ids", "reference_invalid", r)

    # Signature wrapping (the eight XSW shapes of "On Breaking SAML" / SAML Raider).
    evil_email = "mallory@" + cfg["email"].split("@")[1]

    def evil_assertion():
        e = build(cfg, email=evil_email).find(q("saml:Assertion"))
        drop_placeholder(e)
        return e

    # XSW1: a new Response (evil assertion), the signed Response inside its Signature.
    orig = signed_response(cfg, keys)
    evil = build(cfg, email=evil_email)
    drop_placeholder(evil)
    sig = copy.deepcopy(orig.find(q("ds:Signature")))
    osig = orig.find(q("ds:Signature"))
    orig.remove(osig)
    sig.append(orig)
    evil.insert(1, sig)
    add("xsw1", "assertion_count", evil)
    # XSW2: as XSW1 with the signed Response as a sibling before the Signature.
    orig = signed_response(cfg, keys)
    evil = build(cfg, email=evil_email)
    drop_placeholder(evil)
    sig = copy.deepcopy(orig.find(q("ds:Signature")))
    orig.remove(orig.find(q("ds:Signature")))
    evil.insert(1, sig)
    evil.insert(1, orig)
    add("xsw2", "assertion_count", evil)
    # XSW3: an evil assertion before the signed one.
    r = signed_assertion_response(cfg, keys)
    r.insert(2, evil_assertion())
    add("xsw3", "assertion_count", r)
    # XSW4: the signed assertion inside the evil one.
    r = signed_assertion_response(cfg, keys)
    signed_a = r.find(q("saml:Assertion"))
    e = evil_assertion()
    r.replace(signed_a, e)
    e.append(signed_a)
    add("xsw4", "assertion_count", r)
    # XSW5: the evil assertion keeps the signature; the original is appended.
    r = signed_assertion_response(cfg, keys)
    signed_a = r.find(q("saml:Assertion"))
    e = copy.deepcopy(signed_a)
    e.find(".//" + q("saml:NameID")).text = evil_email
    r.replace(signed_a, e)
    clean = copy.deepcopy(signed_a)
    clean.remove(clean.find(q("ds:Signature")))
    r.append(clean)
    add("xsw5", "assertion_count", r)
    # XSW6: the evil assertion keeps the signature; the original sits inside that Signature.
    r = signed_assertion_response(cfg, keys)
    signed_a = r.find(q("saml:Assertion"))
    e = copy.deepcopy(signed_a)
    e.find(".//" + q("saml:NameID")).text = evil_email
    r.replace(signed_a, e)
    inner = copy.deepcopy(signed_a)
    inner.remove(inner.find(q("ds:Signature")))
    e.find(q("ds:Signature")).append(inner)
    add("xsw6", "assertion_count", r)
    # XSW7: the signed assertion hidden in Extensions; the evil one in its place.
    r = signed_assertion_response(cfg, keys)
    signed_a = r.find(q("saml:Assertion"))
    ext = etree.Element(q("samlp:Extensions"))
    r.replace(signed_a, evil_assertion())
    ext.append(signed_a)
    r.insert(1, ext)
    add("xsw7", "assertion_count", r)
    # XSW8: the evil assertion carries the signature, with the original (unsigned) in a ds:Object.
    r = signed_assertion_response(cfg, keys)
    signed_a = r.find(q("saml:Assertion"))
    e = copy.deepcopy(signed_a)
    e.find(".//" + q("saml:NameID")).text = evil_email
    r.replace(signed_a, e)
    obj = etree.SubElement(e.find(q("ds:Signature")), q("ds:Object"))
    inner = copy.deepcopy(signed_a)
    inner.remove(inner.find(q("ds:Signature")))
    obj.append(inner)
    add("xsw8", "assertion_count", r)
    # A second, unsigned assertion beside a signed one.
    r = signed_assertion_response(cfg, keys)
    r.append(evil_assertion())
    add("second_unsigned_assertion", "assertion_count", r)

    # Entities and DOCTYPEs.
    ok = xml_bytes(signed_assertion_response(cfg, keys))
    add("doctype_entity", "doctype_refused", b'<!DOCTYPE r [<!ENTITY e "x">]>' + ok)
    lol = b'<!DOCTYPE lolz [<!ENTITY lol "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10 if i > 1 else b"&lol;" * 10) for i in range(1, 10)) + b"]>"
    add("billion_laughs", "doctype_refused", lol + ok.replace(b"Alice", b"&lol9;", 1))
    add("external_entity", "doctype_refused", b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + ok.replace(b"Alice", b"&x;", 1))

    # Conditions.
    add("audience_prefix_longer", "audience_mismatch", signed_assertion_response(cfg, keys, audiences=[cfg["spEntityId"] + "-evil"]))
    add("audience_prefix_shorter", "audience_mismatch", signed_assertion_response(cfg, keys, audiences=[cfg["spEntityId"][:-4]]))
    add("audience_other_sp", "audience_mismatch", signed_assertion_response(cfg, keys, audiences=["https://other.example.test/sp"]))
    add("wrong_recipient", "recipient_mismatch", signed_assertion_response(cfg, keys, recipient=cfg["acsUrl"] + "x"))
    add("wrong_destination", "destination_mismatch", signed_assertion_response(cfg, keys, destination="https://evil.example.test/acs"))
    add("expired", "expired", signed_assertion_response(cfg, keys, not_before=now - 4000, not_on_or_after=now - 3600, scd_not_on_or_after=now - 3600))
    add("not_yet_valid", "not_yet_valid", signed_assertion_response(cfg, keys, not_before=now + 3600, not_on_or_after=now + 7200, scd_not_on_or_after=now + 7200))
    add("wrong_issuer", "issuer_mismatch", signed_assertion_response(cfg, keys, issuer="https://evil-idp.example.test"))
    add("idp_failure_status", "idp_status", signed_assertion_response(cfg, keys, status="urn:oasis:names:tc:SAML:2.0:status:Requester"))
    enc = build(cfg)
    a = enc.find(q("saml:Assertion"))
    ea = etree.Element(q("saml:EncryptedAssertion"))
    etree.SubElement(ea, "{http://www.w3.org/2001/04/xmlenc#}EncryptedData").text = "AAAA"
    enc.replace(a, ea)
    add("encrypted_assertion", "encrypted_assertion_unsupported", enc)
    # The unsigned Response claims another request than the signed assertion.
    r = signed_assertion_response(cfg, keys, in_response_to="_signedrequest")
    r.set("InResponseTo", "_otherrequest")
    add("in_response_to_swapped", "in_response_to_mismatch", r)

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(cases, f, indent=1)
    print("ready", len(cases))


if __name__ == "__main__":
    main()
