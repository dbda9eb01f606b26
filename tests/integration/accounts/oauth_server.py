"""A local stand-in for Google's and X's OAuth 2.0 servers (authorization code + PKCE).

It speaks their documented protocol: /authorize redirects back with a code and the state;
/token (form POST) checks the client (client_secret in the body for Google, HTTP Basic for
X), the redirect_uri, and that SHA-256(code_verifier) equals the code_challenge; the
userinfo endpoints answer in each provider's format for a Bearer access token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "datafast-test-client"
CLIENT_SECRET = "datafast-test-secret"


@dataclass
class Grant:
    challenge: str
    redirect_uri: str
    account: dict[str, Any]


@dataclass
class StandInOAuth:
    style: str  # "google" or "x"
    account: dict[str, Any] = field(default_factory=dict)
    """Who signs in at /authorize next: {"sub"/"id", "email", "email_verified", "name"}."""
    grants: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self) -> dict[str, str]:
        prefix = self.style.upper()
        userinfo = "/2/users/me?user.fields=confirmed_email" if self.style == "x" else "/v1/userinfo"
        return {
            f"{prefix}_CLIENT_ID": CLIENT_ID,
            f"{prefix}_CLIENT_SECRET": CLIENT_SECRET,
            f"{prefix}_AUTHORIZE_URL": f"{self.base}/authorize",
            f"{prefix}_TOKEN_URL": f"{self.base}/token",
            f"{prefix}_USERINFO_URL": f"{self.base}{userinfo}",
        }


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _handler(server: StandInOAuth) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/authorize":
                if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
                    self._json(400, {"error": "invalid_request"})
                    return
                if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
                    self._json(400, {"error": "invalid_request", "error_description": "PKCE required"})
                    return
                code = secrets.token_urlsafe(16)
                server.grants[code] = Grant(
                    query["code_challenge"], query["redirect_uri"], dict(server.account)
                )
                back = (
                    query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
                )
                self.send_response(302)
                self.send_header("Location", back)
                self.end_headers()
                return
            auth = self.headers.get("Authorization", "")
            account = server.tokens.get(auth.removeprefix("Bearer "))
            if account is None:
                self._json(401, {"error": "invalid_token"})
            elif server.style == "google" and parts.path == "/v1/userinfo":
                self._json(200, account)
            elif server.style == "x" and parts.path == "/2/users/me":
                data = {"id": account["id"], "name": account.get("name", ""), "username": "someone"}
                if "confirmed_email" in query.get("user.fields", "") and account.get("email"):
                    data["confirmed_email"] = account["email"]
                self._json(200, {"data": data})
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/token":
                self._json(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            server.token_requests.append(form)
            if server.style == "x":
                expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                client_ok = self.headers.get("Authorization") == f"Basic {expected}"
            else:
                client_ok = form.get("client_id") == CLIENT_ID and form.get("client_secret") == CLIENT_SECRET
            if not client_ok:
                self._json(401, {"error": "invalid_client"})
                return
            grant = server.grants.pop(form.get("code", ""), None)  # codes are single-use
            if grant is None or form.get("grant_type") != "authorization_code":
                self._json(400, {"error": "invalid_grant"})
                return
            if form.get("redirect_uri") != grant.redirect_uri:
                self._json(400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"})
                return
            if _challenge(form.get("code_verifier", "")) != grant.challenge:
                server.errors.append("pkce mismatch")
                self._json(400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
                return
            token = secrets.token_urlsafe(24)
            server.tokens[token] = grant.account
            self._json(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600})

    return Handler


class RunningServer:
    def __init__(self, state: StandInOAuth) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        state.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
