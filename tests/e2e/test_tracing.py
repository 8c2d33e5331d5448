"""Issue 15, item 2: OpenTelemetry traces. A real proxy exports OTLP/HTTP (protobuf) to a small
receiver on loopback that decodes with the OpenTelemetry proto package from PyPI; a client sends a
W3C `traceparent`; the proxy's server span continues that trace, its upstream (client) span is a
child of it, and an HTTP upstream receives the upstream span's context as `traceparent`."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from e2e_support import RawSession, fixture_server, free_port, http_server, make_config, result_text

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


class _Receiver(BaseHTTPRequestHandler):
    spans: list  # set per server

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        for rs in req.resource_spans:
            service = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), None)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    self.server.spans.append((service, s))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, *a):
        pass


class _HeaderEcho(BaseHTTPRequestHandler):
    """A stateless streamable-HTTP MCP server whose one tool answers with the `traceparent` header
    of the request that called it."""

    def do_POST(self):  # noqa: N802
        msg = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        if "id" not in msg:
            self.send_response(202)
            self.end_headers()
            return
        method = msg.get("method")
        if method == "initialize":
            result = {"protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                      "serverInfo": {"name": "hdr", "version": "1"}}
        elif method == "tools/list":
            result = {"tools": [{"name": "traceparent", "description": "Returns the traceparent header it received.",
                                 "inputSchema": {"type": "object", "properties": {}}}]}
        elif method == "tools/call":
            result = {"content": [{"type": "text", "text": self.headers.get("traceparent") or "(none)"}]}
        else:
            result = {}
        out = json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


def _serve(handler):
    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    srv.spans = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _attrs(span: Span) -> dict:
    return {a.key: a.value.string_value for a in span.attributes}


def _wait_spans(receiver, predicate, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [s for _, s in list(receiver.spans) if predicate(s)]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no matching span; got {[(s.name, s.kind) for _, s in receiver.spans]}")


def test_client_proxy_upstream_spans_share_one_trace(proxy):
    receiver = _serve(_Receiver)
    upstream = _serve(_HeaderEcho)
    try:
        p = proxy(make_config(
            [http_server("hdr", f"http://127.0.0.1:{upstream.server_port}/mcp"), fixture_server("fx")],
            tracing={"otlp_endpoint": f"http://127.0.0.1:{receiver.server_port}/v1/traces",
                     "service_name": "mcpx-e2e", "export_interval": "100ms"}))
        s = RawSession(p.mcp_url, headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"}, token=p.api_key).initialize()
        seen_upstream = result_text(s.call_tool("hdr:traceparent")["result"])
        assert result_text(s.call_tool("fx:echo", {"text": "hi"})["result"]) == "hi"

        # The upstream got our trace id with the proxy's upstream span as its parent.
        version, trace_id, parent_id, flags = seen_upstream.split("-")
        assert (version, trace_id, flags) == ("00", TRACE_ID, "01"), seen_upstream
        assert parent_id != CLIENT_SPAN

        ours = bytes.fromhex(TRACE_ID)
        servers = _wait_spans(receiver, lambda sp: sp.trace_id == ours and sp.kind == Span.SPAN_KIND_SERVER
                              and sp.name == "tools/call")
        def upstream_spans():
            return [sp for _, sp in list(receiver.spans) if sp.trace_id == ours and sp.kind == Span.SPAN_KIND_CLIENT]
        deadline = time.monotonic() + 15
        while len({_attrs(c).get("mcp.server") for c in upstream_spans()}) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        clients = upstream_spans()
        assert {_attrs(c).get("mcp.server") for c in clients} == {"hdr", "fx"}, clients
        # Each client request's server span is a child of the client's span.
        assert len(servers) >= 1 and all(sv.parent_span_id == bytes.fromhex(CLIENT_SPAN) for sv in servers)
        server_ids = {sv.span_id for sv in servers}
        for c in clients:
            assert c.parent_span_id in server_ids, (c, servers)
            assert _attrs(c)["mcp.method.name"] == "tools/call"
        hdr = next(c for c in clients if _attrs(c)["mcp.server"] == "hdr")
        assert hdr.span_id == bytes.fromhex(parent_id)  # what the upstream received is that span
        assert all(_attrs(sv)["mcp.method.name"] == "tools/call" for sv in servers)
        assert {svc for svc, _ in receiver.spans} == {"mcpx-e2e"}
    finally:
        receiver.shutdown()
        upstream.shutdown()


def test_errors_are_marked_and_requests_without_context_start_their_own_trace(proxy):
    receiver = _serve(_Receiver)
    try:
        p = proxy(make_config([fixture_server("fx")],
                              tracing={"otlp_endpoint": f"http://127.0.0.1:{receiver.server_port}/v1/traces",
                                       "export_interval": "100ms"}))
        s = p.session()
        assert s.call_tool("fx:no_such_tool")["result"]["isError"] is True
        spans = _wait_spans(receiver, lambda sp: sp.kind == Span.SPAN_KIND_SERVER and sp.name == "tools/call")
        assert spans[0].status.code == 2  # STATUS_CODE_ERROR: an isError result
        assert len(spans[0].trace_id) == 16 and spans[0].parent_span_id == b""
        init = _wait_spans(receiver, lambda sp: sp.name == "initialize")
        assert init[0].status.code != 2
    finally:
        receiver.shutdown()


def test_without_tracing_nothing_is_sent_upstream(proxy):
    upstream = _serve(_HeaderEcho)
    try:
        p = proxy(make_config([http_server("hdr", f"http://127.0.0.1:{upstream.server_port}/mcp")]))
        s = RawSession(p.mcp_url, headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01"}, token=p.api_key).initialize()
        # The client's header is not forwarded: upstream requests are the proxy's own.
        assert result_text(s.call_tool("hdr:traceparent")["result"]) == "(none)"
    finally:
        upstream.shutdown()


def test_tracing_config_errors_are_reported(proxy):
    p = proxy.create(make_config([], tracing={"otlp_endpoint": "ftp://x", "sample_ratio": 2, "exprot_interval": "1s"}))
    r = p.cli("doctor")
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "tracing.otlp_endpoint" in out and "http:// or https://" in out
    assert "tracing.sample_ratio" in out
    assert 'did you mean "export_interval"' in out
