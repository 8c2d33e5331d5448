#!/usr/bin/env python3
"""Writes a realistic generated tool catalogue (a JSON array of MCP tool definitions) for the
10,000-tool benchmark: `mcpproxy-fixture --tools-file PATH` serves it.

Deterministic (seeded). Tools are spread over service domains (code hosting, tickets, chat,
cloud, databases, files, calendars, mail, CRM, monitoring, ...), with snake_case and camelCase
names, descriptions of one to four sentences (about 120-700 bytes), and input schemas of 1-9
parameters (types, enums, defaults, nested objects, arrays) whose descriptions are sentences too.
The text is benign: the scanner should find nothing hard in it.

    bench/gen_catalog.py --count 10000 --out /tmp/catalog.json
"""
import argparse
import json
import random

DOMAINS = {
    "github": ["repository", "pull request", "issue", "branch", "commit", "release", "workflow run", "gist", "label", "review comment"],
    "gitlab": ["merge request", "pipeline", "project", "job", "runner", "milestone", "snippet"],
    "jira": ["ticket", "sprint", "epic", "board", "worklog", "component", "version"],
    "slack": ["channel", "message", "thread", "reaction", "user group", "reminder", "bookmark"],
    "k8s": ["pod", "deployment", "service", "namespace", "config map", "ingress", "cron job", "node", "persistent volume"],
    "aws": ["bucket", "object", "lambda function", "queue", "topic", "instance", "security group", "log group", "stack"],
    "postgres": ["table", "index", "query plan", "schema", "role", "extension", "view", "sequence"],
    "files": ["file", "directory", "symlink", "archive", "file permission", "file checksum"],
    "calendar": ["event", "attendee", "calendar", "availability slot", "meeting room"],
    "mail": ["email", "draft", "mailbox", "attachment", "mail filter", "contact"],
    "crm": ["lead", "opportunity", "account", "deal stage", "customer note", "invoice"],
    "monitoring": ["alert", "dashboard", "metric", "incident", "on-call schedule", "service level objective", "trace"],
    "docs": ["page", "document", "comment", "space", "template", "attachment version"],
    "search": ["web page", "news article", "image result", "search index", "query suggestion"],
    "payments": ["charge", "refund", "subscription", "payout", "customer", "price"],
    "analytics": ["report", "funnel", "cohort", "event stream", "segment", "experiment"],
    "maps": ["route", "place", "geocode", "distance matrix", "time zone"],
    "weather": ["forecast", "observation", "weather alert", "air quality reading"],
    "notes": ["note", "notebook", "tag", "reminder list", "checklist"],
    "ci": ["build", "artifact", "test report", "deployment environment", "cache entry"],
}
VERBS = [
    ("list", "Lists {objs} in {scope}, newest first, with paging."),
    ("get", "Gets one {obj} by its identifier, with all of its fields."),
    ("create", "Creates a new {obj} in {scope}."),
    ("update", "Updates the fields of an existing {obj}; fields left out keep their value."),
    ("delete", "Deletes a {obj} permanently. This cannot be undone."),
    ("search", "Searches {objs} in {scope} by keyword, with filters for state and date."),
    ("archive", "Archives a {obj} so it no longer shows in default listings."),
    ("restore", "Restores an archived {obj}."),
    ("export", "Exports {objs} from {scope} as CSV or JSON."),
    ("count", "Counts {objs} in {scope} matching the given filters."),
    ("describe", "Describes a {obj}: its configuration, status and recent changes."),
    ("watch", "Returns changes to {objs} since a given cursor."),
    ("assign", "Assigns a {obj} to a person or a team."),
    ("tag", "Adds or removes tags on a {obj}."),
    ("compare", "Compares two versions of a {obj} and returns the differences."),
    ("validate", "Checks a {obj} definition for errors without applying it."),
    ("summarize", "Summarizes recent activity on {objs} in {scope}."),
    ("move", "Moves a {obj} to another {scope}."),
    ("copy", "Copies a {obj}, optionally into another {scope}."),
    ("rename", "Renames a {obj}."),
]
SCOPES = ["the workspace", "a project", "an organization", "the current account", "a team", "a folder", "a region", "the selected environment"]
EXTRA = [
    "Results are paginated; pass the cursor from the previous page to continue.",
    "Requires read access to {scope}.",
    "Timestamps are ISO 8601 in UTC.",
    "Use the filters to narrow the result before paging through large sets.",
    "Rate limited to 60 requests per minute per account.",
    "Returns an error when the {obj} does not exist or is not visible to the caller.",
    "The response includes the {obj}'s URL for display to the user.",
    "Large results are truncated to the first 1000 items.",
    "Deleted {objs} are kept for 30 days and can be restored.",
    "Set dry_run to preview the change without applying it.",
    "Fields are returned in the order of the API documentation.",
    "Useful when a person asks about recent changes or who changed what.",
]
PARAMS = [
    ("id", "string", "Identifier of the {obj}."),
    ("name", "string", "Display name of the {obj}."),
    ("query", "string", "Free-text search terms; quoted phrases match exactly."),
    ("limit", "integer", "Maximum number of results to return (1-100)."),
    ("cursor", "string", "Opaque cursor from a previous page."),
    ("state", "string", "Only {objs} in this state."),
    ("since", "string", "Only {objs} changed after this ISO 8601 time."),
    ("until", "string", "Only {objs} changed before this ISO 8601 time."),
    ("owner", "string", "User name or email address of the owner."),
    ("labels", "array", "Labels to filter by; all must match."),
    ("description", "string", "Longer text shown with the {obj}; markdown is allowed."),
    ("dry_run", "boolean", "Preview the change without applying it."),
    ("format", "string", "Output format."),
    ("sort", "string", "Field to sort by."),
    ("order", "string", "Sort order."),
    ("region", "string", "Region or data center, e.g. eu-west-1."),
    ("project", "string", "Project key or identifier."),
    ("path", "string", "Path of the item inside its container, relative to the root."),
    ("include_archived", "boolean", "Also return archived {objs}."),
    ("timeout_seconds", "integer", "Give up after this many seconds."),
    ("fields", "array", "Only return these fields of each {obj}."),
    ("options", "object", "Advanced options for the request."),
]
ENUMS = {"state": ["open", "closed", "all"], "format": ["json", "csv", "markdown"], "order": ["asc", "desc"],
         "sort": ["created", "updated", "name", "priority"]}


def snake(words):
    return "_".join(w.replace("-", "_") for w in words)


def camel(words):
    parts = [p for w in words for p in w.replace("-", " ").split()]
    return parts[0] + "".join(p.capitalize() for p in parts[1:])


def tool(rng, i):
    domain = rng.choice(list(DOMAINS))
    obj = rng.choice(DOMAINS[domain])
    objs = obj + ("es" if obj.endswith(("s", "x", "ch")) else "s")
    verb, sentence = rng.choice(VERBS)
    scope = rng.choice(SCOPES)
    words = [domain, verb] + obj.split() + ([] if i < len(DOMAINS) * 50 else [str(i)])
    name = camel(words) if rng.random() < 0.3 else snake(words)
    fmt = dict(obj=obj, objs=objs, scope=scope)
    desc = [sentence.format(**fmt)]
    for extra in rng.sample(EXTRA, rng.randint(0, 3)):
        desc.append(extra.format(**fmt))
    props = {}
    required = []
    for pname, ptype, pdesc in rng.sample(PARAMS, rng.randint(1, 9)):
        p = {"type": ptype, "description": pdesc.format(**fmt)}
        if pname in ENUMS:
            p["enum"] = ENUMS[pname]
        if ptype == "array":
            p["items"] = {"type": "string"}
        if ptype == "integer" and pname == "limit":
            p.update({"minimum": 1, "maximum": 100, "default": 20})
        if ptype == "object":
            p["properties"] = {"retries": {"type": "integer", "description": "Retries on a transient failure."},
                               "verbose": {"type": "boolean", "description": "Include debugging details."}}
        props[pname] = p
        if pname in ("id", "name", "query", "path") and rng.random() < 0.7:
            required.append(pname)
    schema = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    t = {"name": name, "description": " ".join(desc), "inputSchema": schema}
    if verb in ("list", "get", "search", "count", "describe", "export", "summarize", "compare", "validate", "watch"):
        t["annotations"] = {"readOnlyHint": True}
    elif verb == "delete":
        t["annotations"] = {"destructiveHint": True}
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    seen = set()
    tools = []
    i = 0
    while len(tools) < a.count:
        t = tool(rng, i)
        i += 1
        if t["name"] in seen:
            continue
        seen.add(t["name"])
        tools.append(t)
    with open(a.out, "w") as f:
        json.dump(tools, f)


if __name__ == "__main__":
    main()
