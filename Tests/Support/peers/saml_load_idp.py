"""A SAML IdP for the load driver: answers SP-initiated AuthnRequests (HTTP-Redirect
binding) with a fresh response whose assertion is signed by signxml, for the
user named in login_hint. Many at once, unlike the pysaml2 IdP of the flow
tests, so SAML sign-ins can run in the mixed load and the fault scenarios.

Usage: saml_load_idp.py PORT
Endpoints:
  GET /config -> {"entityId", "ssoUrl", "certificatePem"} (what sso.configure needs)
  GET /sso?SAMLRequest=…&RelayState=…&login_hint=EMAIL
      -> {"acsUrl", "SAMLResponse", "RelayState"}: the HTTP-POST binding's form
         fields (a browser would get them as an auto-posting form).
  A request that cannot be read is a 400 with {"error"}; the IdP never signs
  for a request it did not parse.
Prints "ready" once listening.
"""
import base64
import datetime
import json
import os
import sys
import time
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lxml import etree

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import saml_forge  # noqa: E402  (same directory: response building and signing)

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

PORT = int(sys.argv[1])
BASE = "http://127.0.0.1:%d" % PORT
ENTITY_ID = BASE + "/metadata"

key = rsa.generate_private_key(65537, 2048)
subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "load.idp.example.test")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
CERT_PEM = cert.public_bytes(serialization.Encoding.PEM)
KEYS = {"key": key, "cert": CERT_PEM}
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


def read_request(encoded):
    """The AuthnRequest of the HTTP-Redirect binding: base64 of raw DEFLATE."""
    xml = zlib.decompress(base64.b64decode(encoded), -15)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(xml, parser)
    if root.tag != "{%s}AuthnRequest" % SAMLP:
        raise ValueError("not an AuthnRequest: " + root.tag)
    issuer = root.find("{%s}Issuer" % SAML)
    return root.get("ID"), root.get("AssertionConsumerServiceURL"), issuer.text if issuer is not None else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/config":
            return self.send(200, {"entityId": ENTITY_ID, "ssoUrl": BASE + "/sso", "certificatePem": CERT_PEM.decode()})
        if url.path != "/sso":
            return self.send(404, {"error": "not_found"})
        try:
            request_id, acs_url, sp_entity_id = read_request(q["SAMLRequest"])
            email = q["login_hint"]
        except Exception as e:  # a request the IdP cannot read: say why, sign nothing
            return self.send(400, {"error": "%s: %s" % (type(e).__name__, e)})
        if not (request_id and acs_url and sp_entity_id):
            return self.send(400, {"error": "the AuthnRequest lacks ID, AssertionConsumerServiceURL or Issuer"})
        cfg = {"now": int(time.time()), "idpEntityId": ENTITY_ID, "spEntityId": sp_entity_id, "acsUrl": acs_url, "email": email,
               "inResponseTo": request_id}
        local = email.split("@")[0]
        response = saml_forge.signed_assertion_response(
            cfg, KEYS, attributes={"givenName": ["Load"], "surname": [local], "groups": ["Everyone"]})
        self.send(200, {"acsUrl": acs_url, "SAMLResponse": base64.b64encode(saml_forge.xml_bytes(response)).decode(),
                        "RelayState": q.get("RelayState", "")})

    def log_message(self, *args):
        pass


httpd = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
httpd.daemon_threads = True
print("ready", flush=True)
httpd.serve_forever()
