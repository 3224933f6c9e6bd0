"""The SAML libraries a team would otherwise use, validating the same
responses Roster's ACS gets (for deploy/bench.sh sso):
python3-saml (OneLogin; libxmlsec1 in-process) and pysaml2 (the xmlsec1 tool
per response). Prints one Markdown table row per library.

Usage: saml_bench_python.py RESPONSES_FILE IDP_CERT IDP_ENTITY SP_ENTITY ACS_URL SECONDS
"""
import base64
import os
import sys
import tempfile
import time
import warnings

warnings.simplefilter("ignore")
responses = [l.strip() for l in open(sys.argv[1]) if l.strip()]
cert_pem = open(sys.argv[2]).read()
idp, sp, acs, seconds = sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6])
cert_b64 = "".join(l for l in cert_pem.splitlines() if "CERTIFICATE" not in l)


def run(name, validate):
    lat, i, start, ok = [], 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds and i < len(responses):
        t0 = time.perf_counter()
        ok += 1 if validate(responses[i]) else 0
        lat.append((time.perf_counter() - t0) * 1000)
        i += 1
    elapsed = time.perf_counter() - start
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
    print("| %s | %d | %d | %.0f | %.2f | %.2f |" % (name, i, ok, i / elapsed, p(0.5), p(0.99)))


try:
    from onelogin.saml2.response import OneLogin_Saml2_Response
    from onelogin.saml2.settings import OneLogin_Saml2_Settings

    settings = OneLogin_Saml2_Settings({
        "strict": True, "sp": {"entityId": sp, "assertionConsumerService": {"url": acs}},
        "idp": {"entityId": idp, "singleSignOnService": {"url": "https://idp.example.test/sso"}, "x509cert": cert_b64},
        "security": {"wantAssertionsSigned": True}}, sp_validation_only=True)
    u = __import__("urllib.parse").parse.urlparse(acs)
    request = {"https": "on" if u.scheme == "https" else "off", "http_host": u.netloc, "script_name": u.path}

    def onelogin(b64):
        r = OneLogin_Saml2_Response(settings, b64)
        return r.is_valid(request)

    run("python3-saml 1.16 (OneLogin, libxmlsec1 in-process)", onelogin)
except ImportError as e:
    print("| python3-saml | not installed (%s) | | | | |" % e)

from saml2 import BINDING_HTTP_POST
from saml2.client import Saml2Client
from saml2.config import SPConfig

md = tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False)
md.write('<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="%s">'
         '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo>'
         '<ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>'
         '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/sso"/>'
         '</md:IDPSSODescriptor></md:EntityDescriptor>' % (idp, cert_b64))
md.close()
conf = SPConfig()
conf.load({"entityid": sp, "service": {"sp": {"endpoints": {"assertion_consumer_service": [(acs, BINDING_HTTP_POST)]},
           "allow_unsolicited": True, "want_assertions_signed": True, "want_response_signed": False}},
           "xmlsec_binary": "/usr/bin/xmlsec1", "metadata": {"local": [md.name]}, "accepted_time_diff": 60})
client = Saml2Client(config=conf)


def pysaml2(b64):
    try:
        return client.parse_authn_request_response(b64, BINDING_HTTP_POST) is not None
    except Exception:
        return False


run("pysaml2 7.5 (xmlsec1 tool per response)", pysaml2)
os.unlink(md.name)
