"""A stdio MCP server (standard library only, so any python runs it, also in the sandbox) that
misbehaves on request, for the runtime monitor's end-to-end tests.

Tools:
  hog {mb}     allocate and touch `mb` MiB and keep them (memory rule)
  fork {n}     fork `n` children that sleep (pids rule; stops at the first failed fork)
  spin {}      start a thread that burns CPU after the call returns (cpu rule)
  echo {text}  answer `text`

Flags:
  --exit-after-ms N   exit N ms after answering tools/list (a crash loop when restarted)
"""
import json
import os
import sys
import threading
import time

exit_after_ms = None
args = sys.argv[1:]
if "--exit-after-ms" in args:
    exit_after_ms = int(args[args.index("--exit-after-ms") + 1])

kept = []
children = []


def schema(props):
    return {"type": "object", "properties": props}


TOOLS = [
    {"name": "hog", "description": "Allocate memory and keep it.", "inputSchema": schema({"mb": {"type": "integer"}})},
    {"name": "fork", "description": "Start child processes that sleep.", "inputSchema": schema({"n": {"type": "integer"}})},
    {"name": "spin", "description": "Burn CPU in the background.", "inputSchema": schema({})},
    {"name": "echo", "description": "Echo the text back.", "inputSchema": schema({"text": {"type": "string"}})},
]


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def text(s, is_error=False):
    return {"content": [{"type": "text", "text": s}], "isError": is_error}


def call(name, a):
    if name == "hog":
        mb = int(a.get("mb", 1))
        for _ in range(mb):
            b = bytearray(1 << 20)
            for i in range(0, len(b), 4096):
                b[i] = 1
            kept.append(b)
        return text(f"holding {len(kept)} MiB")
    if name == "fork":
        started = 0
        for _ in range(int(a.get("n", 1))):
            try:
                pid = os.fork()
            except OSError as e:
                return text(f"started {started}; fork failed: {e}")
            if pid == 0:
                time.sleep(3600)
                os._exit(0)
            children.append(pid)
            started += 1
        return text(f"started {started}")
    if name == "spin":
        def burn():
            while True:
                pass
        threading.Thread(target=burn, daemon=True).start()
        return text("spinning")
    if name == "echo":
        return text(str(a.get("text", "")))
    return None


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        msg = json.loads(line)
        mid, method = msg.get("id"), msg.get("method")
        if mid is None:
            continue
        p = msg.get("params") or {}
        if method == "initialize":
            send({"jsonrpc": "2.0", "id": mid, "result": {
                "protocolVersion": p.get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {}}, "serverInfo": {"name": "misbehaving", "version": "1"}}})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": mid, "result": {"tools": TOOLS}})
            if exit_after_ms is not None:
                threading.Timer(exit_after_ms / 1000, lambda: os._exit(3)).start()
        elif method == "tools/call":
            r = call(p.get("name"), p.get("arguments") or {})
            if r is None:
                send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32602, "message": "unknown tool"}})
            else:
                send({"jsonrpc": "2.0", "id": mid, "result": r})
        elif method == "ping":
            send({"jsonrpc": "2.0", "id": mid, "result": {}})
        else:
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "method not found"}})


if __name__ == "__main__":
    main()
