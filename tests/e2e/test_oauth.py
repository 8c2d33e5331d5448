"""mcpproxy as an OAuth 2.1 resource server (MCP authorization, RFC 9728, RFC 8707): a local
authorization server (tests/e2e/servers/oauth_as.py) issues RS256 access tokens to the real Python
SDK client, which reaches tools through mcpproxy; forged, expired, misdirected and unsigned tokens
are refused with 401."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from e2e_support import (MCP_ACCEPT, SERVERS_DIR, RawSession, fixture_server, free_port, http, make_config,
                         result_text, run_async, wait_until)

KID = "test-key-1"
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


def _pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@pytest.fixture
def auth_server(tmp_path, python_bin):
    """A running local authorization server: (issuer URL, its RSA private key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "as-key.pem"
    key_file.write_bytes(_pem(key))
    port = free_port()
    log = open(tmp_path / "as.log", "wb")
    proc = subprocess.Popen([str(python_bin), str(SERVERS_DIR / "oauth_as.py"), "--port", str(port), "--key", str(key_file),
                             "--kid", KID], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def up() -> bool:
        assert proc.poll() is None, (tmp_path / "as.log").read_text()
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_until(up, 30, 0.1, "the authorization server")
    yield f"http://127.0.0.1:{port}", key
    proc.terminate()
    proc.wait(10)


def _oauth_proxy(proxy, issuer: str, servers=None, **oauth):
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    cfg = make_config(servers or [fixture_server("a"), fixture_server("b")],
                      oauth={"issuer": issuer, "jwks_url": f"{issuer}/jwks", "resource": resource, **oauth})
    return proxy(cfg, port=port)


def _mint(key, issuer: str, resource: str, **over) -> str:
    now = int(time.time())
    claims = {"iss": issuer, "sub": "alice", "aud": resource, "iat": now, "nbf": now, "exp": now + 300,
              "scope": "mcp:read"}
    headers = {"kid": over.pop("kid", KID)}
    alg = over.pop("alg", "RS256")
    claims.update(over)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def _err(result) -> bool:
    """isError of an SDK CallToolResult (SDK 2.x: is_error; 1.x: isError)."""
    return bool(getattr(result, "is_error", None) or getattr(result, "isError", None))


def _status(p, token: str) -> int:
    return http("POST", p.mcp_url, INIT, {"Content-Type": "application/json", "Accept": MCP_ACCEPT,
                                          "Authorization": f"Bearer {token}"}).status


def test_protected_resource_metadata_and_challenge(proxy, auth_server):
    issuer, _ = auth_server
    p = _oauth_proxy(proxy, issuer)
    r = http("POST", p.mcp_url, INIT, {"Content-Type": "application/json", "Accept": MCP_ACCEPT})
    assert r.status == 401
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    meta_url = f"{p.base_url}/.well-known/oauth-protected-resource/mcp"
    assert f'resource_metadata="{meta_url}"' in challenge, challenge
    for url in (meta_url, f"{p.base_url}/.well-known/oauth-protected-resource"):
        doc = http("GET", url)
        assert doc.status == 200 and doc.headers["content-type"].startswith("application/json"), doc
        body = doc.json()
        assert body["resource"] == p.mcp_url
        assert body["authorization_servers"] == [issuer]
        assert body["bearer_methods_supported"] == ["header"]
        assert "mcp:read" in body["scopes_supported"]
    # The metadata needs no credential; the admin key still works next to OAuth.
    assert _status(p, p.api_key) == 200


def test_real_oauth_flow_with_the_python_sdk(proxy, auth_server):
    issuer, _ = auth_server
    p = _oauth_proxy(proxy, issuer)
    from mcp.client.auth import OAuthClientProvider
    from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
    try:
        from mcp.shared.auth import AuthorizationCodeResult
    except ImportError:  # SDK 1.x: the callback returns (code, state)
        AuthorizationCodeResult = None

    class Memory:
        def __init__(self):
            self.tokens: OAuthToken | None = None
            self.client: OAuthClientInformationFull | None = None

        async def get_tokens(self):
            return self.tokens

        async def set_tokens(self, tokens):
            self.tokens = tokens

        async def get_client_info(self):
            return self.client

        async def set_client_info(self, info):
            self.client = info

    redirect = "http://127.0.0.1:1/callback"
    landed: dict[str, str] = {}

    async def on_redirect(url: str) -> None:
        # The "browser": the authorization server approves at once and redirects back.
        r = http("GET", url)
        assert r.status == 302, r
        q = parse_qs(urlsplit(r.headers["location"]).query)
        landed.update({k: v[0] for k, v in q.items()})

    async def on_callback():
        if AuthorizationCodeResult is None:
            return landed["code"], landed.get("state")
        return AuthorizationCodeResult(code=landed["code"], state=landed.get("state"), iss=landed.get("iss"))

    storage = Memory()
    provider = OAuthClientProvider(
        server_url=p.mcp_url,
        client_metadata=OAuthClientMetadata(client_name="e2e", redirect_uris=[redirect], grant_types=["authorization_code"],
                                            response_types=["code"], scope="mcp:read mcp:server:a",
                                            token_endpoint_auth_method="none"),
        storage=storage, redirect_handler=on_redirect, callback_handler=on_callback)

    async def body():
        async with p.client(token=None, auth=provider) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            assert "retrieve_tools" in names and "upstream_servers" not in names, names
            r = await s.call_tool("call_tool", {"name": "a:echo", "args": {"text": "via oauth"}})
            assert not _err(r) and r.content[0].text == "via oauth", r
            w = await s.call_tool("call_tool", {"name": "a:write_file", "args": {"path": "/tmp/x", "content": "y"}})
            assert _err(w), "mcp:read must not reach a destructive tool"
    run_async(body)

    # The token the SDK got is a JWT for this resource (RFC 8707) and carries the subject the
    # activity log names.
    assert storage.tokens is not None
    claims = jwt.decode(storage.tokens.access_token, options={"verify_signature": False})
    assert claims["aud"] == p.mcp_url
    # The SDK asks for the scope the 401 challenge names (mcp:read), as the MCP spec says.
    assert "mcp:read" in claims["scope"].split(), claims
    wait_until(lambda: any(a.get("caller") == f"jwt:{claims['sub']}"
                           for a in p.rest("GET", "/api/v1/activity?server=a").json()["activity"]),
               10, 0.1, "the call in the activity log with the JWT subject")
    # The client's token never reaches the logs.
    assert storage.tokens.access_token not in p.all_logs()


def test_forged_and_misdirected_tokens_are_refused(proxy, auth_server, tmp_path):
    issuer, key = auth_server
    p = _oauth_proxy(proxy, issuer)
    res = p.mcp_url
    good = _mint(key, issuer, res)
    assert _status(p, good) == 200

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    head, payload, sig = good.split(".")
    tampered_claims = jwt.decode(good, options={"verify_signature": False}) | {"scope": "mcp:destructive mcp:admin"}
    import base64
    tampered_payload = base64.urlsafe_b64encode(json.dumps(tampered_claims).encode()).decode().rstrip("=")
    bad = {
        "expired": _mint(key, issuer, res, exp=now - 120, iat=now - 600, nbf=now - 600),
        "not yet valid": _mint(key, issuer, res, nbf=now + 600),
        "no exp": _mint(key, issuer, res, exp=None),
        "wrong audience": _mint(key, issuer, res, aud="http://127.0.0.1:1/mcp"),
        "audience of another service": _mint(key, issuer, res, aud=["https://api.example.com"]),
        "wrong issuer": _mint(key, "http://127.0.0.1:2", res),
        "signed by another key": _mint(other, issuer, res),
        "unknown kid": _mint(other, issuer, res, kid="attacker"),
        "alg none": jwt.encode({"iss": issuer, "sub": "x", "aud": res, "exp": now + 300, "scope": "mcp:read"}, None,
                               algorithm="none", headers={"kid": KID}),
        "HS256 with the public key": _hs256(public_pem, {"iss": issuer, "sub": "x", "aud": res, "exp": now + 300,
                                                         "scope": "mcp:read"}),
        "tampered payload": f"{head}.{tampered_payload}.{sig}",
        "no signature": f"{head}.{payload}.",
    }
    for what, token in bad.items():
        assert _status(p, token) == 401, what
    # A valid token with no scope this gateway knows: 403 insufficient_scope.
    r = http("POST", p.mcp_url, INIT, {"Content-Type": "application/json", "Accept": MCP_ACCEPT,
                                       "Authorization": f"Bearer {_mint(key, issuer, res, scope='openid profile')}"})
    assert r.status == 403 and "insufficient_scope" in r.headers.get("www-authenticate", ""), r
    # Server scopes limit what a JWT sees, as with agent tokens.
    s = RawSession(p.mcp_url, token=_mint(key, issuer, res, scope="mcp:read mcp:server:b")).initialize()
    assert result_text(s.call_tool("b:echo", {"text": "b"})["result"]) == "b"
    assert s.call_tool("a:echo", {"text": "a"})["result"]["isError"]
    assert good not in p.all_logs()


def _hs256(secret: bytes, claims: dict) -> str:
    """An HS256 token keyed with the RSA public key (the classic algorithm-confusion forgery),
    built by hand because PyJWT refuses to do it."""
    import base64
    import hashlib
    import hmac
    b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")  # noqa: E731
    signing = f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': KID}).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing}.{b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest())}"


def test_jwks_file_and_key_rotation_refetch(proxy, auth_server, tmp_path):
    """Keys from a JWKS file work the same; a token from an unknown key is refused without
    hammering the issuer."""
    issuer, key = auth_server
    jwks = http("GET", f"{issuer}/jwks").json()
    f = tmp_path / "jwks.json"
    f.write_text(json.dumps(jwks))
    port = free_port()
    res = f"http://127.0.0.1:{port}/mcp"
    p = proxy(make_config([fixture_server("a")], oauth={"issuer": issuer, "jwks_file": str(f), "resource": res}), port=port)
    assert _status(p, _mint(key, issuer, res)) == 200
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for _ in range(20):
        assert _status(p, _mint(other, issuer, res, kid="rotated")) == 401
