"""An OpenID Connect provider for the SSO tests, on loopback (plain HTTP:
Roster runs them with ROSTER_IDP_ALLOW_HTTP_LOOPBACK=true). It can also
misbehave, to check that Roster refuses what it must.

Usage: oidc_provider.py PORT
Endpoints: /.well-known/openid-configuration, /authorize, /token, /jwks, and
  POST /control {"user": {...}, "client": {"id", "secret"}, "mode": MODE, "signing": "RS256"|"PS256"|"ES256"}
  /authorize with login_hint=EMAIL signs that person in instead of the configured user
  (the load driver's many users at once).
MODE (what the next ID token does wrong): ok, alg_none, hs256_public_key, unknown_kid, wrong_iss, wrong_aud,
  wrong_azp, wrong_nonce, expired, future_iat, no_email, email_unverified, bad_signature
Prints "ready" once listening.
"""
import base64
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

PORT = int(sys.argv[1])
ISSUER = "http://127.0.0.1:%d" % PORT
lock = threading.Lock()
rsa_key = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"})
ec_key = ECKey.generate_key("P-256", parameters={"kid": "ec-1", "use": "sig"})
rogue_key = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "use": "sig"})  # same kid, other key
state = {
    "user": {"sub": "00u1", "email": "alice@acme.test", "email_verified": True, "given_name": "Alice", "family_name": "Admin",
             "name": "Alice Admin", "groups": ["Engineering"]},
    "client": {"id": "roster-client", "secret": None},
    "mode": "ok",
    "signing": "RS256",
    "codes": {},
    # Entra's multi-tenant shape: discovery at /common/v2.0 names the issuer
    # "…/{tenantid}/v2.0"; tokens carry the tenant's own issuer and tid.
    "tenant": None,
    "token_calls": 0,
}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def id_token(code_info):
    mode = state["mode"]
    now = int(time.time())
    claims = dict(state["user"])
    if code_info.get("email"):
        email = code_info["email"]
        local = email.split("@")[0]
        claims.update({"sub": "sub-" + hashlib.sha256(email.lower().encode()).hexdigest()[:20], "email": email, "email_verified": True,
                       "given_name": "Load", "family_name": local, "name": "Load " + local, "groups": ["Everyone"]})
    claims.update({"iss": ISSUER, "aud": state["client"]["id"], "iat": now, "exp": now + 300, "nonce": code_info["nonce"]})
    if state["tenant"]:
        claims["iss"] = ISSUER + "/" + state["tenant"] + "/v2.0"
        claims["tid"] = state["tenant"]
    if mode == "wrong_iss":
        claims["iss"] = ISSUER + "/evil"
    elif mode == "wrong_aud":
        claims["aud"] = "someone-else"
    elif mode == "wrong_azp":
        claims["aud"] = [state["client"]["id"], "other"]
        claims["azp"] = "other"
    elif mode == "wrong_nonce":
        claims["nonce"] = "not-the-nonce"
    elif mode == "expired":
        claims["iat"], claims["exp"] = now - 7200, now - 3600
    elif mode == "future_iat":
        claims["iat"] = now + 3600
    elif mode == "no_email":
        claims.pop("email", None)
    elif mode == "email_unverified":
        claims["email_verified"] = False
    payload = b64(json.dumps(claims).encode())
    if mode == "alg_none":
        return b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()) + "." + payload + "."
    if mode == "hs256_public_key":
        # The classic key confusion: HMAC keyed with the RSA public key's PEM.
        secret = rsa_key.as_pem(private=False)
        header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
        sig = hmac.new(secret, (header + "." + payload).encode(), hashlib.sha256).digest()
        return header + "." + payload + "." + b64(sig)
    alg = state["signing"]
    key = ec_key if alg == "ES256" else rsa_key
    header = {"alg": alg, "kid": key.kid}
    if mode == "unknown_kid":
        header["kid"] = "rotated-away"
    if mode == "bad_signature":
        key = rogue_key
    return jwt.encode(header, claims, key, algorithms=[alg])


class Handler(BaseHTTPRequestHandler):
    def send(self, status, body, headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path in ("/.well-known/openid-configuration", "/common/v2.0/.well-known/openid-configuration"):
            entra = url.path.startswith("/common")
            return self.send(200, {
                "issuer": ISSUER + "/{tenantid}/v2.0" if entra else ISSUER, "authorization_endpoint": ISSUER + "/authorize", "token_endpoint": ISSUER + "/token",
                "jwks_uri": ISSUER + "/jwks", "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "PS256", "ES256"], "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
                "authorization_response_iss_parameter_supported": True})
        if url.path == "/jwks":
            keys = KeySet([rsa_key, ec_key]).as_dict(private=False)
            return self.send(200, keys)
        if url.path == "/authorize":
            if q.get("client_id") != state["client"]["id"] or q.get("response_type") != "code":
                return self.send(400, {"error": "invalid_request"})
            code = secrets.token_urlsafe(24)
            with lock:
                state["codes"][code] = {"redirect_uri": q["redirect_uri"], "nonce": q.get("nonce"), "challenge": q.get("code_challenge"),
                                        "used": False, "email": q.get("login_hint")}
            iss = ISSUER + "/" + state["tenant"] + "/v2.0" if state["tenant"] else ISSUER
            target = q["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": q.get("state", ""), "iss": iss})
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send(404, {"error": "not_found"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/control":
            change = json.loads(body)
            with lock:
                for k in ("user", "client", "mode", "signing", "tenant"):
                    if k in change:
                        state[k] = change[k]
            return self.send(200, {"ok": True})
        if self.path == "/token":
            form = dict(urllib.parse.parse_qsl(body.decode()))
            client_id, secret = form.get("client_id"), form.get("client_secret")
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                client_id, secret = urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(pw)
            if client_id != state["client"]["id"] or (state["client"]["secret"] and secret != state["client"]["secret"]):
                return self.send(401, {"error": "invalid_client"})
            with lock:
                state["token_calls"] += 1
                info = state["codes"].get(form.get("code"))
                if not info or info["used"]:
                    return self.send(400, {"error": "invalid_grant", "error_description": "unknown or used code"})
                info["used"] = True
            if form.get("redirect_uri") != info["redirect_uri"]:
                return self.send(400, {"error": "invalid_grant", "error_description": "redirect_uri"})
            verifier = form.get("code_verifier")
            if not verifier or b64(hashlib.sha256(verifier.encode()).digest()) != info["challenge"]:
                return self.send(400, {"error": "invalid_grant", "error_description": "PKCE"})
            return self.send(200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                                   "id_token": id_token(info)})
        self.send(404, {"error": "not_found"})

    def log_message(self, *args):
        pass


httpd = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print("ready", flush=True)
httpd.serve_forever()
