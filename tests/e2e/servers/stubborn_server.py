"""A minimal MCP stdio server (no SDK import, so it starts fast) that is hard to get rid of.

Flags:
  --ignore-eof       keep running after stdin closes (a server that does not notice its client left)
  --ignore-sigterm   ignore SIGTERM (only SIGKILL ends it)
  --grandchild       start `/bin/sleep 600` as a child of its own at startup (like npx -> node)

Tool `pids` returns {"pid": <this server>, "grandchild": <pid or null>} as JSON text, so a test
can check that every process of the tree is gone after the proxy stops.
"""

import json
import os
import signal
import subprocess
import sys
import time


def main() -> None:
    flags = set(sys.argv[1:])
    if "--ignore-sigterm" in flags:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    grandchild = None
    if "--grandchild" in flags:
        grandchild = subprocess.Popen(["/bin/sleep", "600"], stdin=subprocess.DEVNULL)

    def send(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    tool = {
        "name": "pids",
        "description": "Return the process ids of this stubborn server and of its grandchild.",
        "inputSchema": {"type": "object", "properties": {}},
        "annotations": {"readOnlyHint": True},
    }
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        msg = json.loads(line)
        mid, method = msg.get("id"), msg.get("method")
        if method == "initialize":
            version = msg.get("params", {}).get("protocolVersion", "2025-06-18")
            send({"jsonrpc": "2.0", "id": mid, "result": {
                "protocolVersion": version, "capabilities": {"tools": {}},
                "serverInfo": {"name": "stubborn", "version": "1.0.0"}}})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": mid, "result": {"tools": [tool]}})
        elif method == "tools/call":
            text = json.dumps({"pid": os.getpid(), "grandchild": grandchild.pid if grandchild else None})
            send({"jsonrpc": "2.0", "id": mid, "result": {"content": [{"type": "text", "text": text}], "isError": False}})
        elif method == "ping":
            send({"jsonrpc": "2.0", "id": mid, "result": {}})
        elif mid is not None:
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": f"method not found: {method}"}})
    if "--ignore-eof" in flags:
        while True:
            time.sleep(1)


if __name__ == "__main__":
    main()
