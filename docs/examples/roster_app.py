#!/usr/bin/env python3
"""A complete (small) app that uses Roster — Python standard library only.

It shows what an app does and when (docs/integration.md):
  * sign-up creates a workspace; admins invite and remove members;
  * every sign-in asks Roster what it means (auth.signIn), and an SSO
    sign-in goes through sso.authorize / sso.token with PKCE;
  * a subscriber to the event feed (events.subscribe) revokes the sessions
    of members who were deactivated, deleted or told to sign in again, the
    moment Roster commits it, and resumes from its stored cursor;
  * /scim/v2/ is proxied to Roster's SCIM listener, so the IdP talks to the
    app's own URL.

Run (with Roster's sockets in ROSTER_RUN_DIR):
  python3 roster_app.py --listen 127.0.0.1:3000 --public-url http://127.0.0.1:3000

The app's API (JSON in, JSON out; a session is the `session` cookie):
  POST /signup        {"name", "email", "ownerName"?}       -> the workspace
  POST /invite        {"workspaceId", "email", "role"?}     -> the member   (session of an admin)
  POST /remove        {"workspaceId", "memberId"}           -> the job      (session of an admin)
  POST /login         {"email"}  (the password check is the app's own)
                      -> a session, or {"sso": URL} when the workspace requires SSO
  GET  /login/sso?email=…                                   -> 303 to the IdP
  GET  /sso/callback?code=…&state=…                         -> a session (the IdP's way back)
  GET  /me                                                  -> the session, or 401
  ANY  /scim/v2/…                                           -> Roster's SCIM, as it answers
"""
import argparse
import base64
import hashlib
import http.client
import http.server
import json
import os
import secrets
import socket
import sys
import threading
import time
import urllib.parse


class RosterError(Exception):
    """A JSON-RPC error from Roster: `reason` is stable, `message` is for people."""

    def __init__(self, error):
        super().__init__(error.get("message", "Roster error"))
        self.code = error.get("code")
        self.reason = (error.get("data") or {}).get("reason")
        self.message = error.get("message", "")


class Roster:
    """JSON-RPC 2.0 over Roster's Unix sockets: one request per line."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.ids = 0
        self.lock = threading.Lock()

    def call(self, process, method, params=None, timeout=30):
        with self.lock:
            self.ids += 1
            request = {"jsonrpc": "2.0", "id": self.ids, "method": method, "params": params or {}}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(os.path.join(self.run_dir, process + ".sock"))
            s.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        reply = json.loads(data)
        if "error" in reply:
            raise RosterError(reply["error"])
        return reply["result"]


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket (Roster's scim.sock)."""

    def __init__(self, path):
        super().__init__("roster")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


class App:
    def __init__(self, roster, public_url, state_dir):
        self.roster = roster
        self.public_url = public_url.rstrip("/")
        self.redirect_uri = self.public_url + "/sso/callback"
        self.state_dir = state_dir
        self.lock = threading.Lock()
        self.sessions = {}  # token -> {"user": {...}, "workspaces": {workspaceId: {"memberId", "role"}}}
        self.pending_sso = {}  # state -> code verifier (a real app keeps this in the user's session)

    # -- sessions -----------------------------------------------------------
    def open_session(self, decision):
        token = secrets.token_urlsafe(32)
        workspaces = {w["workspaceId"]: {"memberId": w["memberId"], "role": w["role"], "name": w["workspaceName"]}
                      for w in decision["workspaces"]}
        with self.lock:
            self.sessions[token] = {"user": decision["user"], "workspaces": workspaces}
        return token

    def session(self, token):
        with self.lock:
            s = self.sessions.get(token)
            return json.loads(json.dumps(s)) if s else None

    def revoke_member(self, member_id):
        """Drops a membership from every session; a session with none left ends."""
        with self.lock:
            for token in list(self.sessions):
                ws = self.sessions[token]["workspaces"]
                for wid in [w for w, m in ws.items() if m["memberId"] == member_id]:
                    del ws[wid]
                if not ws:
                    del self.sessions[token]

    def set_role(self, member_id, role):
        with self.lock:
            for s in self.sessions.values():
                for m in s["workspaces"].values():
                    if m["memberId"] == member_id:
                        m["role"] = role

    def admin_of(self, token, workspace_id):
        s = self.session(token)
        m = s and s["workspaces"].get(workspace_id)
        return m["memberId"] if m and m["role"] == "admin" else None

    # -- sign-in ------------------------------------------------------------
    def password_login(self, email):
        """After the app checked the password itself: what the sign-in means."""
        decision = self.roster.call("provisioning", "auth.signIn", {"email": email, "method": "password"})
        if decision["allowed"]:
            return {"session": self.open_session(decision), "decision": decision}
        if decision.get("reason") == "sso_required":
            return {"sso": self.public_url + "/login/sso?" + urllib.parse.urlencode({"email": email}), "decision": decision}
        return {"refused": decision.get("message"), "decision": decision}

    def sso_start(self, email):
        verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = secrets.token_urlsafe(24)
        with self.lock:
            self.pending_sso[state] = verifier
        started = self.roster.call("provisioning", "sso.authorize", {
            "email": email, "redirectUri": self.redirect_uri, "state": state,
            "codeChallenge": challenge, "codeChallengeMethod": "S256"})
        return started["url"]

    def sso_finish(self, code, state):
        with self.lock:
            verifier = self.pending_sso.pop(state, None)
        if verifier is None:
            return None, "unknown or used state"
        answer = self.roster.call("provisioning", "sso.token", {"code": code, "codeVerifier": verifier, "redirectUri": self.redirect_uri})
        decision = answer["decision"]
        if not decision["allowed"]:
            return None, decision.get("message", "refused")
        return self.open_session(decision), None

    # -- the event feed -----------------------------------------------------
    def follow_events(self, stop):
        """Subscribes to the feed (events.subscribe keeps the connection open
        and pushes each event as it commits) from where it stopped last time,
        or from now on a first start, and acts on what concerns sessions.
        After a disconnect it subscribes again from the last cursor handled:
        nothing is missed, nothing is seen twice."""
        cursor_file = os.path.join(self.state_dir, "event-cursor")
        try:
            with open(cursor_file) as f:
                cursor = f.read().strip() or None
        except FileNotFoundError:
            cursor = None

        def remember(c):
            with open(cursor_file + ".tmp", "w") as f:
                f.write(c)
            os.replace(cursor_file + ".tmp", cursor_file)

        while not stop.is_set():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(os.path.join(self.roster.run_dir, "provisioning.sock"))
                    params = {"after": cursor} if cursor else {}
                    s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "events.subscribe", "params": params}).encode() + b"\n")
                    lines = s.makefile("rb")
                    reply = json.loads(lines.readline())
                    if "error" in reply:
                        raise RosterError(reply["error"])
                    if cursor is None:
                        cursor = reply["result"]["cursor"]
                        remember(cursor)
                    for line in lines:
                        message = json.loads(line)
                        if message.get("method") == "events.closed":  # too far behind: resume from its cursor
                            break
                        event = message["params"]
                        with open(os.path.join(self.state_dir, "events.log"), "a") as log:  # what the app handled, in order
                            log.write("%s %s %s\n" % (event["cursor"], event["type"], event.get("memberId") or "-"))
                        if event["type"] in ("member.deactivated", "member.deleted", "member.sessions_revoked"):
                            self.revoke_member(event["memberId"])
                        elif event["type"] == "member.role_changed":
                            self.set_role(event["memberId"], event["data"].get("to"))
                        cursor = event["cursor"]
                        remember(cursor)
            except (OSError, ValueError, RosterError) as e:
                print("event feed: %s; subscribing again" % e, file=sys.stderr, flush=True)
            stop.wait(1)


def handler(app):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send_json(self, status, body, headers=()):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def token(self):
            for part in (self.headers.get("Cookie") or "").split(";"):
                k, _, v = part.strip().partition("=")
                if k == "session":
                    return v
            return None

        def with_session(self, token, extra):
            cookie = "session=%s; Path=/; HttpOnly; SameSite=Lax" % token
            self.send_json(200, dict(extra, session=token), [("Set-Cookie", cookie)])

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            q = dict(urllib.parse.parse_qsl(url.query))
            if url.path.startswith("/scim/v2"):
                return self.proxy_scim()
            try:
                if url.path == "/me":
                    s = app.session(self.token())
                    return self.send_json(200, s) if s else self.send_json(401, {"error": "signed out"})
                if url.path == "/login/sso":
                    self.send_response(303)
                    self.send_header("Location", app.sso_start(q["email"]))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if url.path == "/sso/callback":
                    if "error" in q:
                        return self.send_json(403, {"error": q.get("error_description", q["error"])})
                    token, why = app.sso_finish(q.get("code", ""), q.get("state", ""))
                    return self.with_session(token, {"via": "sso"}) if token else self.send_json(403, {"error": why})
                self.send_json(404, {"error": "not found"})
            except RosterError as e:
                self.send_json(409, {"error": e.message, "reason": e.reason})

        def do_POST(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path.startswith("/scim/v2"):
                return self.proxy_scim()
            try:
                p = json.loads(self.body() or b"{}")
                if url.path == "/signup":
                    w = app.roster.call("provisioning", "workspace.create", {
                        "name": p["name"], "plan": p.get("plan", "enterprise"),
                        "owner": {"email": p["email"], "name": p.get("ownerName", "")}})
                    return self.send_json(201, w)
                if url.path == "/login":
                    out = app.password_login(p["email"])
                    if "session" in out:
                        return self.with_session(out["session"], {"via": "password", "decision": out["decision"]})
                    return self.send_json(200 if "sso" in out else 403, out)
                if url.path in ("/invite", "/remove"):
                    admin = app.admin_of(self.token(), p.get("workspaceId"))
                    if not admin:
                        return self.send_json(403, {"error": "only an admin of the workspace may do this"})
                    actor = {"memberId": admin}
                    if url.path == "/invite":
                        params = {"workspaceId": p["workspaceId"], "email": p["email"], "actor": actor}
                        if p.get("role"):
                            params["role"] = p["role"]
                        return self.send_json(201, app.roster.call("provisioning", "member.add", params))
                    job = app.roster.call("deprovisioning", "deprovision.member",
                                          {"workspaceId": p["workspaceId"], "memberId": p["memberId"], "actor": actor})
                    return self.send_json(202, job)
                self.send_json(404, {"error": "not found"})
            except RosterError as e:
                self.send_json(409, {"error": e.message, "reason": e.reason})
            except (KeyError, ValueError) as e:
                self.send_json(400, {"error": "bad request: %s" % e})

        do_PUT = do_PATCH = do_DELETE = lambda self: self.proxy_scim()

        def proxy_scim(self):
            """The IdP's SCIM requests, passed to Roster as they are."""
            if not self.path.startswith("/scim/v2"):
                return self.send_json(404, {"error": "not found"})
            conn = UnixHTTPConnection(os.path.join(app.roster.run_dir, "scim.sock"))
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() in ("authorization", "content-type", "if-match", "if-none-match", "x-request-id", "accept")}
            body = self.body()
            if body:
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body or None, headers=headers)
            r = conn.getresponse()
            data = r.read()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() in ("content-type", "etag", "location", "x-request-id", "www-authenticate", "allow"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", default=os.environ.get("ROSTER_RUN_DIR", "/run/roster"))
    ap.add_argument("--listen", default="127.0.0.1:3000")
    ap.add_argument("--public-url", default=None, help="the app's own base URL (its SSO callback is PUBLIC_URL/sso/callback)")
    ap.add_argument("--state-dir", default=".", help="where the event cursor is kept between restarts")
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    app = App(Roster(args.run_dir), args.public_url or "http://%s" % args.listen, args.state_dir)
    stop = threading.Event()
    threading.Thread(target=app.follow_events, args=(stop,), daemon=True).start()
    server = http.server.ThreadingHTTPServer((host, int(port)), handler(app))
    print("ready on http://%s" % args.listen, flush=True)
    try:
        server.serve_forever()
    finally:
        stop.set()


if __name__ == "__main__":
    main()
