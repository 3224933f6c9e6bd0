"""A real SAML 2.0 identity provider for the SSO tests: pysaml2, signing
with the xmlsec1 tool, on loopback.

Usage: saml_idp.py PORT STATE_DIR KEY CERT
Endpoints:
  GET  /metadata                  the IdP's metadata
  GET  /sso/redirect              HTTP-Redirect AuthnRequest -> an auto-posting form to the SP's ACS
  GET  /idp-initiated?sp=ENTITY   an unsolicited response for that SP (IdP-initiated sign-in)
  POST /control/sp                body: an SP's metadata XML (Roster's /sso/saml/{id}/metadata)
  POST /control/user              body: {"email", "givenName", "familyName", "groups"} - who signs in next
Prints "ready" once listening.
"""
import html
import warnings

warnings.simplefilter("ignore")  # pysaml2 imports deprecated cipher modes; not ours to fix
import json
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

PORT = int(sys.argv[1])
STATE = sys.argv[2]
KEY, CERT = sys.argv[3], sys.argv[4]
BASE = "http://127.0.0.1:%d" % PORT
os.makedirs(os.path.join(STATE, "sp"), exist_ok=True)
user = {"email": "alice@acme.test", "givenName": "Alice", "familyName": "Admin", "groups": ["Engineering"]}


def config():
    sps = [os.path.join(STATE, "sp", f) for f in sorted(os.listdir(os.path.join(STATE, "sp")))]
    c = {
        "entityid": BASE + "/metadata",
        "service": {
            "idp": {
                "endpoints": {"single_sign_on_service": [(BASE + "/sso/redirect", BINDING_HTTP_REDIRECT)]},
                "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_BASIC, "attribute_restrictions": None}},
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                "sign_response": False,
                "sign_assertion": True,
                "want_authn_requests_signed": False,
            }
        },
        "key_file": KEY,
        "cert_file": CERT,
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "metadata": {"local": sps} if sps else {},
        "accepted_time_diff": 60,
    }
    conf = IdPConfig()
    conf.load(c)
    return conf


def server():
    return Server(config=config())


def respond(idp, sp_entity, acs, in_response_to, relay_state):
    identity = {"mail": [user["email"]], "givenName": [user["givenName"]], "sn": [user["familyName"]], "groups": user["groups"]}
    name_id = NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=user["email"])
    response = idp.create_authn_response(
        identity, in_response_to=in_response_to, destination=acs, sp_entity_id=sp_entity, name_id=name_id,
        authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
        sign_assertion=True, sign_response=False, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256)
    # The HTTP-POST binding: a form the browser posts to the ACS.
    encoded = __import__("base64").b64encode(str(response).encode()).decode()
    fields = '<input type="hidden" name="SAMLResponse" value="%s"/>' % html.escape(encoded)
    if relay_state is not None:
        fields += '<input type="hidden" name="RelayState" value="%s"/>' % html.escape(relay_state)
    return ('<!doctype html><html><body onload="document.forms[0].submit()"><form method="post" action="%s">%s'
            '<input type="submit" value="Continue"/></form></body></html>' % (html.escape(acs), fields))


class Handler(BaseHTTPRequestHandler):
    def send(self, status, body, ctype="text/html; charset=utf-8"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        try:
            if url.path == "/metadata":
                return self.send(200, create_metadata_string(None, config=config(), sign=False), "application/samlmetadata+xml")
            idp = server()
            if url.path == "/sso/redirect":
                req = idp.parse_authn_request(q["SAMLRequest"], BINDING_HTTP_REDIRECT).message
                acs = req.assertion_consumer_service_url
                return self.send(200, respond(idp, req.issuer.text, acs, req.id, q.get("RelayState")))
            if url.path == "/idp-initiated":
                sp = q["sp"]
                acs = idp.metadata.assertion_consumer_service(sp, binding=BINDING_HTTP_POST)[0]["location"]
                return self.send(200, respond(idp, sp, acs, None, q.get("RelayState")))
        except Exception as e:  # a test peer: report, do not hide
            return self.send(500, "idp error: %r" % e, "text/plain")
        self.send(404, "not found", "text/plain")

    def do_POST(self):
        global user
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/control/sp":
            name = "sp-%d.xml" % len(os.listdir(os.path.join(STATE, "sp")))
            with open(os.path.join(STATE, "sp", name), "wb") as f:
                f.write(body)
            return self.send(200, "ok", "text/plain")
        if self.path == "/control/user":
            user = json.loads(body)
            return self.send(200, "ok", "text/plain")
        self.send(404, "not found", "text/plain")

    def log_message(self, *args):
        pass


httpd = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
httpd.serve_forever()
