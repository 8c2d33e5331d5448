import Foundation
import ProxyCore

/// The console's pages, built from the same JSON values the REST API answers (so the console
/// shows exactly what `/api/v1` shows). Pure functions of their inputs: unit-tested.
///
/// Every interpolation of a value goes through `HTML.escape` (element text) or `HTML.attribute`
/// (attribute values); `e(_:)` and `a(_:)` are the short names used below.
enum ConsolePages {
    static func e(_ s: String) -> String { HTML.escape(s) }
    static func a(_ s: String) -> String { HTML.attribute(s) }
    static func str(_ v: JSONValue?) -> String? { v?.stringValue }
    static func int(_ v: JSONValue?) -> Int { v?.intValue ?? 0 }

    static let css = """
    body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#f7f7f8}
    header{background:#20232a;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}
    header a{color:#fff;text-decoration:none;font-weight:600}header .grow{flex:1}
    header form{margin:0}main{padding:16px;max-width:1400px}
    h1{font-size:20px;margin:4px 0 12px}h2{font-size:16px;margin:20px 0 8px}
    table{border-collapse:collapse;width:100%;background:#fff}
    th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
    th{background:#eef0f3}td.err{color:#a40000;max-width:380px;overflow-wrap:anywhere}
    form.inline{display:inline;margin:0}
    button{font:inherit;padding:2px 8px;margin:1px;border:1px solid #888;border-radius:3px;background:#fff;cursor:pointer}
    button.primary{background:#0b62c4;color:#fff;border-color:#0b62c4}button.danger{color:#a40000;border-color:#a40000}
    .badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;background:#ddd}
    .approved,.ready,.available{background:#d7f5dc}.quarantined,.held,.pending{background:#fff1c2}
    .awaiting_approval{background:#e3e0ff}.failed,.blocked,.changed,.unresponsive{background:#ffd7d7}
    .disabled,.stopped{background:#e6e6e6}.ok{background:#d7f5dc}.error,.refused,.timeout,.cancelled{background:#ffd7d7}
    .flash{padding:8px 12px;margin-bottom:12px;border-radius:4px}.flash.ok{background:#d7f5dc}.flash.bad{background:#ffd7d7}
    pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0;font:12px/1.35 ui-monospace,monospace}
    pre.log{background:#111;color:#ddd;padding:8px;max-height:420px;overflow:auto}
    mark.hard{background:#ff9c9c}mark.soft{background:#ffe08a}
    .finding.hard{border-left:4px solid #d00000;padding-left:6px}.finding.soft{border-left:4px solid #e0a800;padding-left:6px}
    table.diff td{width:50%;font:12px/1.35 ui-monospace,monospace;white-space:pre-wrap;overflow-wrap:anywhere}
    table.diff td.removed,table.diff td.changed-old{background:#ffe4e4}table.diff td.added,table.diff td.changed-new{background:#dff7e2}
    .invisible{background:#ffd7d7;color:#a40000;font-size:11px}
    .muted{color:#666}dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:600}dd{margin:0}
    .login{max-width:420px;margin:60px auto;background:#fff;padding:20px;border:1px solid #ddd;border-radius:6px}
    .login input{width:100%;box-sizing:border-box;padding:6px;margin:6px 0 12px;font:inherit}
    """

    /// The page frame: title, navigation (with the sign-out form), a flash message, the body.
    static func layout(title: String, body: String, csrf: String?, flash: ConsoleSessions.Flash? = nil,
                       refreshSeconds: Int? = nil) -> String {
        var h = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        if let r = refreshSeconds { h += "<meta http-equiv=\"refresh\" content=\"\(r)\">" }
        h += "<title>\(e(title)) · mcpproxy</title><style>\(css)</style></head><body>"
        h += "<header><a href=\"/ui\">mcpproxy</a>"
        if let csrf {
            h += "<a href=\"/ui\">Servers</a><a href=\"/ui/activity\">Activity</a><a href=\"/ui/tokens\">Tokens</a><span class=\"grow\"></span>"
            h += "<form class=\"inline\" method=\"post\" action=\"/ui/logout\">\(csrfField(csrf))<button type=\"submit\" id=\"logout\">Sign out</button></form>"
        }
        h += "</header><main>"
        if let flash {
            h += "<div class=\"flash \(flash.ok ? "ok" : "bad")\" id=\"flash\">\(e(flash.text))</div>"
        }
        h += body
        h += "</main></body></html>\n"
        return h
    }

    static func csrfField(_ csrf: String) -> String {
        "<input type=\"hidden\" name=\"csrf\" value=\"\(a(csrf))\">"
    }

    /// A one-button form that POSTs `fields` (with the CSRF token) to `action`.
    static func button(_ label: String, action: String, csrf: String, fields: [(String, String)] = [],
                       style: String = "", id: String? = nil) -> String {
        var h = "<form class=\"inline\" method=\"post\" action=\"\(a(action))\">\(csrfField(csrf))"
        for (k, v) in fields { h += "<input type=\"hidden\" name=\"\(a(k))\" value=\"\(a(v))\">" }
        h += "<button type=\"submit\"\(style.isEmpty ? "" : " class=\"\(style)\"")\(id.map { " id=\"\(a($0))\"" } ?? "")>\(e(label))</button></form>"
        return h
    }

    static func serverPath(_ name: String) -> String { "/ui/servers/" + HTML.pathSegment(name) }

    static func badge(_ text: String) -> String {
        "<span class=\"badge \(a(text.replacingOccurrences(of: " ", with: "_")))\">\(e(text))</span>"
    }

    // MARK: sign-in

    static func login(error: String?) -> String {
        var b = "<div class=\"login\"><h1>Sign in</h1>"
        if let error { b += "<div class=\"flash bad\" id=\"login-error\">\(e(error))</div>" }
        b += "<form method=\"post\" action=\"/ui/login\"><label for=\"key\">Admin API key</label>"
        b += "<input type=\"password\" id=\"key\" name=\"key\" autocomplete=\"current-password\" autofocus required>"
        b += "<button type=\"submit\" class=\"primary\" id=\"signin\">Sign in</button></form>"
        b += "<p class=\"muted\">The key is in the data directory's <code>api_key</code> file (or <code>MCPPROXY_API_KEY</code>). "
        b += "It is exchanged once for a session cookie; agent tokens cannot sign in.</p></div>"
        return layout(title: "Sign in", body: b, csrf: nil)
    }

    /// A page that only says something (errors: 403, 404, 400).
    static func message(title: String, text: String, csrf: String?) -> String {
        layout(title: title, body: "<h1>\(e(title))</h1><p id=\"message\">\(e(text))</p><p><a href=\"/ui\">Back to the servers</a></p>", csrf: csrf)
    }

    // MARK: server list

    /// The approval state of a server as listed by `GET /api/v1/servers`.
    static func approval(_ s: JSONValue) -> String {
        if str(s["state"]) == "awaiting_approval" { return "awaiting_approval" }
        if s["quarantined"]?.boolValue == true { return "quarantined" }
        if s["quarantined"] == nil { return "unknown" }
        return "approved"
    }

    /// The buttons of one server (list and server page). `back` names where the POST returns to.
    static func actions(_ s: JSONValue, csrf: String, back: String) -> String {
        guard let name = str(s["name"]) else { return "" }
        let path = serverPath(name)
        let fields = [("back", back)]
        let approval = approval(s)
        let sid = HTML.pathSegment(name)
        if approval == "awaiting_approval" {
            return button("Approve", action: path + "/approve", csrf: csrf, fields: fields, style: "primary", id: "approve-\(sid)")
                + button("Reject", action: path + "/reject", csrf: csrf, fields: fields, style: "danger", id: "reject-\(sid)")
        }
        var h = ""
        if str(s["state"]) == "held_by_monitor" {
            h += button("Release", action: path + "/release", csrf: csrf, fields: fields, style: "primary", id: "release-\(sid)")
        }
        if approval == "quarantined" {
            h += button("Approve", action: path + "/approve", csrf: csrf, fields: fields, style: "primary", id: "approve-\(sid)")
            if int(s["security"]?["blocked_tools"]) > 0 {
                h += button("Approve despite findings", action: path + "/approve", csrf: csrf, fields: fields + [("force", "true")],
                            style: "danger", id: "force-approve-\(sid)")
            }
        } else {
            h += button("Quarantine", action: path + "/quarantine", csrf: csrf, fields: fields, id: "quarantine-\(sid)")
        }
        if s["enabled"]?.boolValue == false {
            h += button("Enable", action: path + "/enable", csrf: csrf, fields: fields, id: "enable-\(sid)")
        } else {
            h += button("Disable", action: path + "/disable", csrf: csrf, fields: fields, id: "disable-\(sid)")
            h += button("Restart", action: path + "/restart", csrf: csrf, fields: fields, id: "restart-\(sid)")
        }
        return h
    }

    static func toolCounts(_ s: JSONValue) -> String {
        let total = int(s["tool_count"])
        guard let sec = s["security"]?.objectValue else { return "\(total)" }
        var parts = ["\(total) offered"]
        for (k, label) in [("approved_tools", "approved"), ("pending_tools", "pending"), ("changed_tools", "changed"), ("blocked_tools", "blocked")] {
            let n = int(sec[k])
            if n > 0 || k == "approved_tools" { parts.append("\(n) \(label)") }
        }
        return e(parts.joined(separator: " · "))
    }

    /// `GET /ui`: every server of `GET /api/v1/servers`.
    static func serverList(_ body: JSONValue, csrf: String, flash: ConsoleSessions.Flash?) -> String {
        let servers = body["servers"]?.arrayValue ?? []
        var b = "<h1>Servers</h1>"
        let waiting = servers.filter { approval($0) == "awaiting_approval" }.count
        let quarantined = servers.filter { approval($0) == "quarantined" }.count
        if waiting + quarantined > 0 {
            b += "<p id=\"summary\">\(waiting) awaiting approval, \(quarantined) quarantined. Review a server's tools before approving it.</p>"
        }
        if servers.isEmpty {
            b += "<p>No servers are configured. Add one to the config file, or let an agent add one with <code>upstream_servers</code> (it then waits here for approval).</p>"
        }
        b += "<table id=\"servers\"><thead><tr><th>Name</th><th>State</th><th>Isolation</th><th>Approval</th><th>Tools</th><th>Last error</th><th>Actions</th></tr></thead><tbody>"
        for s in servers {
            let name = str(s["name"]) ?? "?"
            let state = str(s["state"]) ?? "?"
            let enabled = s["enabled"]?.boolValue ?? true
            b += "<tr data-server=\"\(a(name))\"><td><a href=\"\(a(serverPath(name)))\">\(e(name))</a></td>"
            b += "<td>\(badge(state))\(enabled || state == "awaiting_approval" ? "" : " <span class=\"muted\">(disabled)</span>")</td>"
            b += "<td>\(e(str(s["isolation"]?["mode"]) ?? "—"))</td>"
            b += "<td>\(badge(approval(s)))</td>"
            b += "<td>\(state == "awaiting_approval" ? "—" : toolCounts(s))</td>"
            let hold = s["monitor_hold"].map { "held by the runtime monitor (\(str($0["rule"]) ?? "?")): \(str($0["reason"]) ?? "")" }
            b += "<td class=\"err\">\(e(hold ?? str(s["last_error"]) ?? ""))</td>"
            b += "<td>\(actions(s, csrf: csrf, back: "list"))</td></tr>"
        }
        b += "</tbody></table>"
        return layout(title: "Servers", body: b, csrf: csrf, flash: flash)
    }

    // MARK: server page

    /// A description (or any field text) with the findings' spans marked: hard over soft.
    static func highlighted(_ text: String, findings: [JSONValue]) -> String {
        let scalars = Array(text.unicodeScalars)
        guard !scalars.isEmpty else { return "" }
        var level = [UInt8](repeating: 0, count: scalars.count)  // 0 none, 1 soft, 2 hard
        for f in findings {
            guard let start = f["span"]?["start"]?.intValue, let end = f["span"]?["end"]?.intValue else { continue }
            let sev: UInt8 = str(f["severity"]) == "hard" ? 2 : 1
            let lo = max(0, start), hi = min(scalars.count, end)
            if lo < hi { for i in lo..<hi { level[i] = max(level[i], sev) } }
        }
        var out = "", i = 0
        while i < scalars.count {
            var j = i
            while j < scalars.count && level[j] == level[i] { j += 1 }
            var run = String.UnicodeScalarView()
            run.append(contentsOf: scalars[i..<j])
            let piece = e(String(run))
            switch level[i] {
            case 2: out += "<mark class=\"hard\">\(piece)</mark>"
            case 1: out += "<mark class=\"soft\">\(piece)</mark>"
            default: out += piece
            }
            i = j
        }
        return out
    }

    static func findingsList(_ findings: [JSONValue]) -> String {
        guard !findings.isEmpty else { return "" }
        var h = "<ul class=\"findings\">"
        for f in findings {
            let sev = str(f["severity"]) == "hard" ? "hard" : "soft"
            h += "<li class=\"finding \(sev)\"><b>\(e(sev))</b> <code>\(e(str(f["rule_id"]) ?? "?"))</code> in <code>\(e(str(f["field"]) ?? "?"))</code>: "
            h += "\(e(str(f["message"]) ?? "")) <span class=\"muted\">“\(e(str(f["excerpt"]) ?? ""))”</span></li>"
        }
        return h + "</ul>"
    }

    /// The text compared line by line for one field of a tool definition.
    static func fieldText(_ v: JSONValue?) -> [String] {
        guard let v, v != .null else { return [] }
        if let s = v.stringValue { return s.components(separatedBy: "\n") }
        return HTML.prettyJSON(v).components(separatedBy: "\n")
    }

    /// Old (left) versus new (right) definition of one held tool, field by field.
    static func diffTable(_ d: JSONValue) -> String {
        let old = d["old"], new = d["new"]
        let isNew = old == nil || old == .null
        var h = "<table class=\"diff\"><thead><tr><th>\(isNew ? "Approved definition (none: a new tool)" : "Approved definition")</th><th>Offered now</th></tr></thead><tbody>"
        for field in ["name", "description", "inputSchema", "outputSchema", "annotations"] {
            let o = isNew ? [] : fieldText(old?[field]), n = fieldText(new?[field])
            if o.isEmpty && n.isEmpty { continue }
            h += "<tr><th colspan=\"2\">\(e(field))</th></tr>"
            for row in LineDiff.rows(old: o, new: n) {
                let (lc, rc): (String, String)
                switch row.kind {
                case .same: (lc, rc) = ("same", "same")
                case .changed: (lc, rc) = ("changed-old", "changed-new")
                case .removed: (lc, rc) = ("removed", "")
                case .added: (lc, rc) = ("", "added")
                }
                h += "<tr class=\"\(row.kind.rawValue)\"><td class=\"\(lc)\">\(e(row.old ?? ""))</td><td class=\"\(rc)\">\(e(row.new ?? ""))</td></tr>"
            }
        }
        return h + "</tbody></table>"
    }

    /// `GET /ui/servers/NAME` for a configured server.
    static func serverPage(server s: JSONValue, tools: JSONValue?, security: JSONValue?, diffs: JSONValue?,
                           diagnostics: JSONValue?, csrf: String, flash: ConsoleSessions.Flash?, refreshSeconds: Int?) -> String {
        let name = str(s["name"]) ?? "?"
        let approval = approval(s)
        var b = "<h1>\(e(name)) \(badge(str(s["state"]) ?? "?")) \(badge(approval))</h1>"
        b += "<p>\(actions(s, csrf: csrf, back: "server"))</p>"
        b += "<dl id=\"facts\">"
        func fact(_ k: String, _ v: String?) { if let v, !v.isEmpty { b += "<dt>\(e(k))</dt><dd>\(e(v))</dd>" } }
        fact("Enabled", (s["enabled"]?.boolValue ?? true) ? "yes" : "no")
        fact("Protocol", str(s["protocol"]))
        fact("Command", str(s["command"]))
        fact("URL", str(s["url"]))
        fact("Isolation", [str(s["isolation"]?["mode"]), str(s["isolation"]?["reason"])].compactMap { $0 }.joined(separator: ": "))
        fact("PID", s["pid"]?.intValue.map { String($0) })
        fact("Container", str(s["container_id"]))
        fact("Restarts", s["restarts"]?.intValue.map { String($0) })
        fact("Scan", str(s["security"]?["scan_status"]))
        fact("Next step", str(s["security"]?["hint"]))
        b += "</dl>"
        if let err = str(s["last_error"]) { b += "<h2>Last error</h2><pre id=\"last-error\">\(e(err))</pre>" }

        // Tools: every offered tool, its gate status and its findings.
        let findings = security?["scan"]?["findings"]?.arrayValue ?? []
        var statusByTool: [String: String] = [:]
        for t in security?["tools"]?.arrayValue ?? [] { if let n = str(t["name"]) { statusByTool[n] = str(t["status"]) } }
        let quarantined = approval == "quarantined"
        b += "<h2>Tools</h2>"
        let toolList = tools?["tools"]?.arrayValue ?? []
        if toolList.isEmpty {
            b += "<p class=\"muted\">No tools seen yet.</p>"
        } else {
            b += "<table id=\"tools\"><thead><tr><th>Tool</th><th>Status</th><th>Findings</th><th>Description</th><th></th></tr></thead><tbody>"
            for t in toolList {
                let tn = str(t["name"]) ?? "?"
                let mine = findings.filter { str($0["tool"]) == tn }
                let hard = mine.filter { str($0["severity"]) == "hard" }.count, soft = mine.count - hard
                let status = statusByTool[tn] ?? str(t["status"]) ?? "?"
                b += "<tr data-tool=\"\(a(tn))\"><td><code>\(e(tn))</code></td><td>\(badge(status))"
                if str(t["status"]) == "held", status == "approved" { b += " \(badge("held"))" }
                b += "</td><td>"
                if hard > 0 { b += "<span class=\"badge blocked\">\(hard) hard</span> " }
                if soft > 0 { b += "<span class=\"badge pending\">\(soft) soft</span>" }
                b += "</td><td><pre>\(highlighted(str(t["description"]) ?? "", findings: mine.filter { str($0["field"]) == "description" }))</pre>"
                b += findingsList(mine) + "</td><td>"
                if !quarantined, status != "approved", statusByTool[tn] != nil {
                    b += toolApproveButtons(server: name, tool: tn, status: status, csrf: csrf, idPrefix: "approve-tool-row-")
                }
                b += "</td></tr>"
            }
            b += "</tbody></table>"
        }

        // Changed and new tools: old versus new, side by side.
        let diffList = diffs?["diffs"]?.arrayValue ?? []
        if !diffList.isEmpty {
            b += "<h2>Held tools: approved versus offered</h2><div id=\"diffs\">"
            for d in diffList {
                let tn = str(d["tool"]) ?? "?"
                let status = str(d["status"]) ?? "?"
                let changed = (d["changed_fields"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ", ")
                b += "<section class=\"diff\" data-tool=\"\(a(tn))\"><h3><code>\(e(tn))</code> \(badge(status)) <span class=\"muted\">changed: \(e(changed))</span></h3>"
                b += findingsList(d["findings"]?.arrayValue ?? [])
                b += diffTable(d)
                if !quarantined { b += "<p>\(toolApproveButtons(server: name, tool: tn, status: status, csrf: csrf, idPrefix: "approve-tool-"))</p>" }
                b += "</section>"
            }
            b += "</div>"
            if quarantined { b += "<p class=\"muted\">Approving the server approves these definitions.</p>" }
        }

        // Enforcement report: what the isolation actually enforces, from the launch plan.
        b += "<h2>Enforcement</h2>"
        let enforcement = diagnostics?["launch"]?["enforcement"]?.objectValue ?? s["isolation"]?["enforcement"]?.objectValue ?? [:]
        if enforcement.isEmpty {
            b += "<p class=\"muted\">No enforcement report (no launch plan yet, or a remote server).</p>"
        } else {
            b += "<table id=\"enforcement\"><tbody>"
            for k in enforcement.keys.sorted() { b += "<tr><th>\(e(k))</th><td>\(e(str(enforcement[k]) ?? ""))</td></tr>" }
            b += "</tbody></table>"
        }
        let warnings = (diagnostics?["launch"]?["warnings"]?.arrayValue ?? s["isolation"]?["warnings"]?.arrayValue ?? []).compactMap(\.stringValue)
        if !warnings.isEmpty { b += "<ul>" + warnings.map { "<li>\(e($0))</li>" }.joined() + "</ul>" }
        if let argv = diagnostics?["launch"]?["argv"]?.arrayValue?.compactMap(\.stringValue), !argv.isEmpty {
            b += "<p>Command line (secrets redacted):</p><pre>\(e(argv.joined(separator: " ")))</pre>"
        }

        // Recent log lines, optionally refreshed.
        let path = serverPath(name)
        b += "<h2>Recent log</h2><p>"
        b += refreshSeconds == nil ? "<a href=\"\(a(path + "?refresh=5"))\" id=\"follow\">Follow (refresh every 5 s)</a>"
            : "<a href=\"\(a(path))\" id=\"follow\">Stop following</a>"
        b += "</p><pre class=\"log\" id=\"log\">"
        b += (diagnostics?["recent_log"]?.arrayValue ?? []).compactMap(\.stringValue).map(e).joined(separator: "\n")
        b += "</pre>"
        return layout(title: name, body: b, csrf: csrf, flash: flash, refreshSeconds: refreshSeconds)
    }

    /// The approve button of one held tool; `idPrefix` keeps ids unique on the page (the tool
    /// table and the diff section both have one).
    static func toolApproveButtons(server: String, tool: String, status: String, csrf: String, idPrefix: String) -> String {
        let action = serverPath(server) + "/tools/approve"
        let fields = [("tool", tool), ("back", "server")]
        let id = idPrefix + HTML.pathSegment(tool)
        if status == "blocked" {
            return button("Approve despite findings", action: action, csrf: csrf, fields: fields + [("force", "true")], style: "danger", id: id)
        }
        return button("Approve tool", action: action, csrf: csrf, fields: fields, style: "primary", id: id)
    }

    /// `GET /ui/servers/NAME` for a server added over MCP and awaiting approval.
    static func pendingPage(_ p: JSONValue, csrf: String, flash: ConsoleSessions.Flash?) -> String {
        let name = str(p["name"]) ?? "?"
        var b = "<h1>\(e(name)) \(badge("awaiting_approval"))</h1>"
        b += "<p>Added over MCP by <b>\(e(str(p["added_by"]) ?? "?"))</b>. Nothing runs until it is approved; it then starts quarantined (connected and scanned, its tools hidden) for a second review.</p>"
        b += "<p>\(actions(p, csrf: csrf, back: "server"))</p><dl id=\"facts\">"
        func fact(_ k: String, _ v: String?) { if let v, !v.isEmpty { b += "<dt>\(e(k))</dt><dd>\(e(v))</dd>" } }
        fact("Command", str(p["command"]))
        fact("Arguments", p["args"]?.arrayValue.map { $0.compactMap(\.stringValue).joined(separator: " ") })
        fact("URL", str(p["url"]))
        fact("Environment keys", p["env_keys"]?.arrayValue.map { $0.compactMap(\.stringValue).joined(separator: ", ") })
        fact("Working directory", str(p["working_dir"]))
        b += "</dl>"
        return layout(title: name, body: b, csrf: csrf, flash: flash)
    }

    // MARK: activity

    /// `GET /ui/activity`: the activity log of `GET /api/v1/activity`.
    static func activity(_ body: JSONValue, server: String?, limit: Int, csrf: String, flash: ConsoleSessions.Flash?) -> String {
        var b = "<h1>Activity</h1>"
        b += "<form method=\"get\" action=\"/ui/activity\">Server <input name=\"server\" value=\"\(a(server ?? ""))\"> "
        b += "Entries <input name=\"limit\" type=\"number\" min=\"1\" max=\"1000\" value=\"\(limit)\"> <button type=\"submit\">Show</button></form><p></p>"
        let list = body["activity"]?.arrayValue ?? []
        if list.isEmpty { b += "<p class=\"muted\" id=\"no-activity\">No calls recorded\(server.map { " for \(e($0))" } ?? "").</p>" }
        b += "<table id=\"activity\"><thead><tr><th>Time (UTC)</th><th>Server</th><th>Tool</th><th>Caller</th><th>Outcome</th><th>Duration</th><th>Arguments</th><th>Request</th></tr></thead><tbody>"
        let f = ISO8601DateFormatter()
        for r in list {
            let at = r["at"]?.numberValue.map { f.string(from: Date(timeIntervalSince1970: $0)) } ?? "?"
            let server = str(r["server"]) ?? "?"
            b += "<tr><td>\(e(at))</td><td><a href=\"\(a(serverPath(server)))\">\(e(server))</a></td><td><code>\(e(str(r["tool"]) ?? "?"))</code></td>"
            b += "<td>\(e(str(r["caller"]) ?? ""))</td><td>\(badge(str(r["outcome"]) ?? "?"))</td>"
            b += "<td>\(e(r["duration_ms"]?.numberValue.map { String(format: "%.1f ms", $0) } ?? ""))</td><td>"
            if let args = str(r["arguments"]) {
                b += "<pre>\(e(args))</pre>"
            } else if let n = r["arguments_bytes"]?.intValue {
                b += "\(n) bytes <span class=\"muted\">sha256 \(e(String((str(r["arguments_sha256"]) ?? "").prefix(12))))…</span>"
            }
            b += "</td><td class=\"muted\">\(e(str(r["request_id"]) ?? ""))</td></tr>"
        }
        b += "</tbody></table>"
        return layout(title: "Activity", body: b, csrf: csrf, flash: flash)
    }

    // MARK: tokens

    static func time(_ v: JSONValue?) -> String {
        guard let t = v?.numberValue else { return "" }
        return ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: t))
    }

    /// `GET /ui/tokens`: the agent tokens of `GET /api/v1/tokens` (never their values), a revoke
    /// button for each active one, and the form that creates one.
    static func tokens(_ body: JSONValue, csrf: String, flash: ConsoleSessions.Flash?) -> String {
        var b = "<h1>Agent tokens</h1>"
        b += "<p class=\"muted\">Each agent gets its own token (sent as <code>Authorization: Bearer</code> to <code>/mcp</code>), limited to some servers and an intent ceiling. Tokens cannot sign in here.</p>"
        let list = body["tokens"]?.arrayValue ?? []
        if list.isEmpty { b += "<p id=\"no-tokens\">No tokens yet.</p>" }
        b += "<table id=\"tokens\"><thead><tr><th>Name</th><th>State</th><th>Servers</th><th>Intent</th><th>May manage servers</th><th>Created (UTC)</th><th>Expires</th><th></th></tr></thead><tbody>"
        for t in list {
            let name = str(t["name"]) ?? "?"
            let state = str(t["state"]) ?? "?"
            let servers = t["servers"]?.arrayValue.map { $0.compactMap(\.stringValue).joined(separator: ", ") } ?? "all"
            b += "<tr data-token=\"\(a(name))\"><td><code>\(e(name))</code></td><td>\(badge(state))</td><td>\(e(servers))</td>"
            b += "<td>\(e(str(t["intent"]) ?? "?"))</td><td>\(t["manage_servers"]?.boolValue == true ? "yes" : "no")</td>"
            b += "<td>\(e(time(t["created_at"])))</td><td>\(e(time(t["expires_at"])))</td><td>"
            if state == "active" {
                b += button("Revoke", action: "/ui/tokens/revoke", csrf: csrf, fields: [("name", name)], style: "danger", id: "revoke-" + HTML.pathSegment(name))
            }
            b += "</td></tr>"
        }
        b += "</tbody></table>"
        b += "<h2>New token</h2><form method=\"post\" action=\"/ui/tokens\" id=\"new-token\">\(csrfField(csrf))<dl>"
        b += "<dt><label for=\"t-name\">Name</label></dt><dd><input id=\"t-name\" name=\"name\" required pattern=\"[A-Za-z0-9._-]+\"></dd>"
        b += "<dt><label for=\"t-intent\">Intent ceiling</label></dt><dd><select id=\"t-intent\" name=\"intent\"><option>read</option><option>write</option><option>destructive</option></select></dd>"
        b += "<dt><label for=\"t-servers\">Servers</label></dt><dd><input id=\"t-servers\" name=\"servers\" placeholder=\"all; or names, comma-separated\"></dd>"
        b += "<dt><label for=\"t-expires\">Expires after</label></dt><dd><input id=\"t-expires\" name=\"expires\" placeholder=\"never; or 30d, 12h\"></dd>"
        b += "<dt><label for=\"t-manage\">May add servers</label></dt><dd><input type=\"checkbox\" id=\"t-manage\" name=\"manage_servers\" value=\"true\"> <span class=\"muted\">(the upstream_servers tool; additions still wait for approval here)</span></dd>"
        b += "</dl><button type=\"submit\" class=\"primary\" id=\"create-token\">Create</button></form>"
        return layout(title: "Tokens", body: b, csrf: csrf, flash: flash)
    }

    /// The answer to creating a token: its value, shown this once.
    static func tokenCreated(_ created: JSONValue, csrf: String) -> String {
        let name = str(created["name"]) ?? "?"
        var b = "<h1>Token \(e(name)) created</h1>"
        b += "<p>Copy it now: it is shown only this once (the proxy keeps only its hash).</p>"
        b += "<pre id=\"token\">\(e(str(created["token"]) ?? ""))</pre>"
        b += "<p>Give it to the agent as the header <code>Authorization: Bearer TOKEN</code> on <code>/mcp</code>.</p>"
        b += "<p><a href=\"/ui/tokens\">Back to the tokens</a></p>"
        return layout(title: "Token created", body: b, csrf: csrf)
    }
}
