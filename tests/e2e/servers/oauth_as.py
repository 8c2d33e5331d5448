"""A small OAuth 2.1 authorization server for the e2e tests (loopback only), built on starlette and
PyJWT: RFC 8414 metadata, RFC 7591 dynamic client registration, an authorization endpoint that
approves at once (the "person" is the test), a token endpoint that checks PKCE (S256) and signs RS256
access tokens whose audience is the RFC 8707 `resource` the client asked for, and the JWKS.

Run: python oauth_as.py --port P --key private.pem [--kid K]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import secrets
import time
from urllib.parse import urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route


def build(issuer: str, key_pem: bytes, kid: str) -> Starlette:
    private = serialization.load_pem_private_key(key_pem, password=None)
    public_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    public_jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    clients: dict[str, dict] = {}
    codes: dict[str, dict] = {}

    async def metadata(_: Request):
        return JSONResponse({
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "registration_endpoint": f"{issuer}/register",
            "jwks_uri": f"{issuer}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["mcp:read", "mcp:write", "mcp:destructive", "mcp:admin"],
        })

    async def register(request: Request):
        body = await request.json()
        client_id = "client-" + secrets.token_hex(8)
        info = {**body, "client_id": client_id, "client_id_issued_at": int(time.time()),
                "token_endpoint_auth_method": "none"}
        clients[client_id] = info
        return JSONResponse(info, status_code=201)

    async def authorize(request: Request):
        q = request.query_params
        client = clients.get(q.get("client_id", ""))
        if client is None or q.get("redirect_uri") not in client.get("redirect_uris", []):
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE S256 required"}, status_code=400)
        code = secrets.token_urlsafe(24)
        codes[code] = {"client_id": client["client_id"], "challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"],
                       "resource": q.get("resource"), "scope": q.get("scope") or "mcp:read"}
        params = {"code": code, "iss": issuer}
        if q.get("state"):
            params["state"] = q["state"]
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode(params)}", status_code=302)

    async def token(request: Request):
        form = await request.form()
        grant = codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if challenge != grant["challenge"] or form.get("client_id") != grant["client_id"] \
                or form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE or client mismatch"}, status_code=400)
        resource = form.get("resource") or grant["resource"]
        now = int(time.time())
        claims = {"iss": issuer, "sub": f"user-of-{grant['client_id']}", "aud": resource, "iat": now, "nbf": now,
                  "exp": now + 600, "scope": grant["scope"], "client_id": grant["client_id"]}
        access = jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid})
        return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": 600, "scope": grant["scope"]})

    async def jwks(_: Request):
        return JSONResponse({"keys": [public_jwk]})

    return Starlette(routes=[
        Route("/.well-known/oauth-authorization-server", metadata),
        Route("/register", register, methods=["POST"]),
        Route("/authorize", authorize),
        Route("/token", token, methods=["POST"]),
        Route("/jwks", jwks),
    ])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--kid", default="test-key-1")
    a = ap.parse_args()
    issuer = f"http://127.0.0.1:{a.port}"
    with open(a.key, "rb") as f:
        app = build(issuer, f.read(), a.kid)
    uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning")


if __name__ == "__main__":
    main()
