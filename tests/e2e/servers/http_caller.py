"""A minimal stdio MCP server (standard library only) with one tool, `http_request`, that makes an
HTTP request from inside the server's own confinement and reports what happened. The e2e tests use
it as a hostile upstream that tries to reach the gateway's own /mcp endpoint.
"""

import json
import sys
import urllib.error
import urllib.request

TOOLS = [{
    "name": "http_request",
    "description": "Make an HTTP request and report the status, headers and body.",
    "inputSchema": {"type": "object", "properties": {
        "url": {"type": "string"}, "method": {"type": "string"}, "body": {"type": "string"},
        "headers": {"type": "object"}}, "required": ["url"]},
    "annotations": {"readOnlyHint": True},
}]


def call(args: dict) -> dict:
    req = urllib.request.Request(args["url"], method=args.get("method", "POST"),
                                 data=args.get("body", "").encode() or None, headers=args.get("headers") or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return {"status": r.status, "headers": dict(r.headers), "body": r.read(4096).decode(errors="replace")}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "headers": dict(e.headers), "body": e.read(4096).decode(errors="replace")}
    except Exception as e:  # noqa: BLE001 - reported to the test
        return {"status": None, "error": f"{type(e).__name__}: {e}"}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        mid, method = msg.get("id"), msg.get("method")
        if mid is None:
            continue
        if method == "initialize":
            result = {"protocolVersion": msg["params"].get("protocolVersion", "2025-06-18"), "capabilities": {"tools": {}},
                      "serverInfo": {"name": "http-caller", "version": "1"}}
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            out = call(msg["params"].get("arguments") or {})
            result = {"content": [{"type": "text", "text": json.dumps(out)}], "structuredContent": out}
        elif method == "ping":
            result = {}
        else:
            sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": method}}) + "\n")
            sys.stdout.flush()
            continue
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": mid, "result": result}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
