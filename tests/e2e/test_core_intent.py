"""call_tool_read / call_tool_write / call_tool_destructive refuse calls whose declared intent
contradicts the tool's annotations, and the refused call never reaches the upstream."""

from __future__ import annotations

import pytest

from e2e_support import fixture_server, make_config, result_text


@pytest.fixture
def p(proxy):
    return proxy(make_config([fixture_server("fixture")]))


def _refused(reply) -> bool:
    return "error" in reply or reply.get("result", {}).get("isError") is True


def _message(reply) -> str:
    return reply["error"]["message"] if "error" in reply else result_text(reply["result"])


# (via, tool, allowed). Fixture annotations: echo readOnly; alloc readOnlyHint false (no destructive
# hint: MCP's default is destructiveHint true); write_file and crash destructiveHint true.
CASES = [
    ("call_tool_read", "echo", True),
    ("call_tool_read", "alloc", False),
    ("call_tool_read", "write_file", False),
    ("call_tool_write", "alloc", False),
    ("call_tool_destructive", "alloc", True),
    ("call_tool_write", "write_file", False),
    ("call_tool_write", "echo", True),
    ("call_tool_destructive", "write_file", True),
    ("call_tool_destructive", "echo", True),
]


@pytest.mark.parametrize("via,tool,allowed", CASES)
def test_intent(p, tmp_path, via, tool, allowed):
    s = p.session()
    target = tmp_path / f"{via}-{tool}.txt"
    args = {"echo": {"text": "hi"}, "alloc": {"mb": 1},
            "write_file": {"path": str(target), "content": "written"}}[tool]
    reply = s.call_tool(f"fixture:{tool}", args, via=via)
    if allowed:
        assert not _refused(reply), reply
        if tool == "write_file":
            assert target.read_text() == "written"
    else:
        assert _refused(reply), f"{via} on {tool} should be refused: {reply}"
        msg = _message(reply)
        assert tool in msg and via in msg or "intent" in msg.lower() or "hint" in msg.lower(), msg
        if tool == "write_file":
            assert not target.exists(), "a refused call reached the upstream"


def test_intent_tools_are_listed_with_annotations(p):
    tools = {t["name"]: t for t in p.session().request("tools/list")["result"]["tools"]}
    assert tools["call_tool_read"].get("annotations", {}).get("readOnlyHint") is True, tools["call_tool_read"]
    assert tools["call_tool_destructive"].get("annotations", {}).get("destructiveHint") is True
