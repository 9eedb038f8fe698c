"""The bearer token that guards the whole server (API and web page) when one is configured.

HTTP clients send `Authorization: Bearer TOKEN`. A browser cannot add that header to the
page's own requests, so the page's login form (`/login`) checks the same token once and sets
it as an HTTP-only, same-site cookie that every later request of the page carries. Only
`/healthz` and the login form are open. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import html
import json
from urllib.parse import parse_qs, quote, unquote

COOKIE = "facestudio_token"
OPEN_PATHS = ("/healthz", "/login")
LOGIN_FORM_BYTES = 4096


class TokenGuard:
    """ASGI middleware: requests without the token get 401 (API) or the login page (browser)."""

    def __init__(self, app, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send) -> None:
        if self.token is None or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/login" and scope["type"] == "http":
            await self._login(scope, receive, send)
            return
        if path in OPEN_PATHS or self._authorised(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if _wants_html(scope):
            await _respond(send, 303, b"", [(b"location", b"/login")])
            return
        body = json.dumps({"detail": "a bearer token is required: Authorization: Bearer TOKEN"})
        await _respond(
            send,
            401,
            body.encode(),
            [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
        )

    def _authorised(self, scope) -> bool:
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, value = given.partition(" ")
        if scheme.lower() == "bearer" and self._matches(value.strip()):
            return True
        return self._matches(_cookie(headers.get(b"cookie", b"").decode("latin-1")))

    def _matches(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), self.token.encode())

    async def _login(self, scope, receive, send) -> None:
        if scope["method"] != "POST":
            await _respond(send, 200, _login_page(None), [(b"content-type", b"text/html")])
            return
        body = await _read_body(receive, LOGIN_FORM_BYTES)
        token = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0]
        if not self._matches(token):
            page = _login_page("That token is not the server's; check $FACESTUDIO_TOKEN.")
            await _respond(send, 401, page, [(b"content-type", b"text/html")])
            return
        cookie = f"{COOKIE}={quote(token, safe='')}; HttpOnly; SameSite=Strict; Path=/"
        await _respond(send, 303, b"", [(b"location", b"/"), (b"set-cookie", cookie.encode())])


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return unquote(value)
    return None


def _wants_html(scope) -> bool:
    headers = dict(scope.get("headers") or [])
    accept = headers.get(b"accept", b"").decode("latin-1")
    return scope.get("method") == "GET" and "text/html" in accept


async def _read_body(receive, limit: int) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > limit or not message.get("more_body"):
            return body[:limit]


async def _respond(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _login_page(error: str | None) -> bytes:
    message = f'<p class="error">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>FaceStudio: sign in</title>
<style>body{{font-family:sans-serif;max-width:28rem;margin:4rem auto}}
.error{{color:#b00020}}input{{width:100%;padding:.4rem;margin:.4rem 0}}</style></head>
<body><h1>FaceStudio</h1>
<p>This server needs its access token (the value of <code>$FACESTUDIO_TOKEN</code> where it runs).</p>
{message}
<form method="post" action="/login">
<label>Token <input type="password" name="token" autocomplete="current-password" autofocus></label>
<input type="submit" value="Sign in"></form></body></html>""".encode()
