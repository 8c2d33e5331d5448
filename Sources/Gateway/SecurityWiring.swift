import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import ProxyCore
import MCPSecurity

/// Adapts the security layer's gate to the gateway's `ToolGate` seam. Call records are buffered
/// and written in batches, so the activity log costs the hot path one lock, not a database write.
public final class SecurityToolGate: ToolGate, Sendable {
    public let gate: SecurityGate
    private let pending = NIOLockedValueBox<(records: [SecurityGate.CallRecord], flushing: Bool)>(([], false))

    public init(gate: SecurityGate) { self.gate = gate }

    public func evaluate(server: ServerConfig, tools: [ToolDefinition], mode: IsolationMode,
                         otherServers: [String: [String]]) async -> GateVerdict {
        let v = await gate.evaluate(server: server, tools: tools, isolationMode: mode, otherServers: otherServers)
        var findings: [String: Int] = [:]
        for f in v.scan.findings { findings[f.severity.rawValue, default: 0] += 1 }
        return GateVerdict(visible: Set(v.visibleToolNames), refusals: v.refusals, findings: findings)
    }

    public func recordCall(server: String, tool: String, durationMs: Double, outcome: ActivityOutcome, requestID: String,
                           arguments: [UInt8]?, caller: String) {
        let record = SecurityGate.CallRecord(at: Date().timeIntervalSince1970, server: server, tool: tool, durationMs: durationMs,
                                             outcome: outcome, requestID: requestID, arguments: arguments, caller: caller)
        let startFlush = pending.withLockedValue { p -> Bool in
            p.records.append(record)
            if p.flushing { return false }
            p.flushing = true
            return true
        }
        guard startFlush else { return }
        // One writer at a time; it drains whatever accumulated while it slept or wrote.
        Task {
            while true {
                try? await Task.sleep(nanoseconds: 100_000_000)
                let batch = pending.withLockedValue { p -> [SecurityGate.CallRecord] in
                    defer { p.records.removeAll(keepingCapacity: true) }
                    if p.records.isEmpty { p.flushing = false }
                    return p.records
                }
                if batch.isEmpty { return }
                await gate.recordCalls(batch)
            }
        }
    }

    public func forget(server: String) async {
        try? await gate.forget(server: server)
    }

    /// Hard findings of the built-in scanner on prompt and resource listings, cached by content
    /// (a listing is screened once, not on every `prompts/list`). Bounded: the cache is cleared
    /// when it reaches 10,000 entries.
    private let screened = NIOLockedValueBox<[Int: String?]>([:])
    private let scanner = ToolScanner()

    public func hold(server: String, kind: ItemKind, items: [ToolDefinition]) async -> [String: String] {
        let hard = screen(server: server, items: items)
        let statuses = await gate.judge(server: server, kind: kind, items: items, hard: Set(hard.keys))
        var out: [String: String] = [:]
        for (name, st) in statuses where st != .approved {
            out[name] = SecurityGate.itemHeldMessage(server: server, kind: kind, name: name, status: st)
                + (hard[name].map { " (scanner: \($0))" } ?? "")
        }
        return out
    }

    func screen(server: String, items: [ToolDefinition]) -> [String: String] {
        var out: [String: String] = [:]
        for item in items {
            var h = Hasher()
            h.combine(server)
            h.combine(item.raw)
            let key = h.finalize()
            let cached: String?? = screened.withLockedValue { $0[key] }
            let why: String?
            if let cached { why = cached } else {
                let hard = scanner.scan(server: server, tools: [item], otherServers: [:]).findings.filter { $0.severity == .hard }
                why = hard.isEmpty ? nil : hard.prefix(3).map { "\($0.ruleID) in \($0.field)" }.joined(separator: "; ")
                screened.withLockedValue { c in
                    if c.count >= 10_000 { c.removeAll() }
                    c[key] = .some(why)
                }
            }
            if let why { out[item.name] = why }
        }
        return out
    }
}

/// The security REST routes: approvals, quarantine, diffs, scans, activity. Approvals exist only
/// here (REST and the web console, which calls the same functions) and in the CLI, never in MCP,
/// so an agent cannot approve the tools it is shown.
public struct SecurityRESTExtension: RESTExtension {
    public let gate: SecurityGate
    public init(gate: SecurityGate) { self.gate = gate }

    /// An `Encodable` value as JSON.
    static func json<T: Encodable>(_ value: T) throws -> JSONValue {
        do { return try JSONValue.parse(try JSONEncoder().encode(value)) } catch {
            throw ProxyError(.internalError, "cannot encode the response", cause: error)
        }
    }

    // The operations behind the routes. The web console calls these same functions.

    /// Approval: for a server added over MCP (awaiting_approval), permission to start it (it then
    /// runs quarantined); for a running server, release of its tools. Hard findings refuse it
    /// unless `force`.
    public func approve(_ name: String, force: Bool, api: RESTAPI) async throws -> JSONValue {
        if let p = api.manager.pendingServers.first(where: { $0.name == name }) {
            try await api.manager.approvePending(p.name)
            return ["ok": true, "server": .string(p.name), "state": "quarantined",
                    "message": .string("approved to start; it now runs quarantined: review its tools (\(SecurityRoutes.security(p.name))) and approve again to release them")]
        }
        let s = try await api.requireServer(name)
        try await gate.approveServer(s.name, force: force)
        try await api.manager.setQuarantined(s.name, false)
        // The config may already say false (an identity change re-quarantined it): re-evaluate
        // now rather than on the next restart.
        await api.manager.refresh(server: s.name)
        return try Self.json(gate.status(server: s.name))
    }

    /// Quarantine: every tool of the server is hidden again until approved.
    public func quarantine(_ name: String, api: RESTAPI) async throws -> JSONValue {
        let s = try await api.requireServer(name)
        try await gate.quarantineServer(s.name)
        try await api.manager.setQuarantined(s.name, true)
        await api.manager.refresh(server: s.name)
        return try Self.json(gate.status(server: s.name))
    }

    /// Approval of one held (new, changed or blocked) tool.
    public func approveTool(server name: String, tool: String, force: Bool, api: RESTAPI) async throws -> JSONValue {
        let s = try await api.requireServer(name)
        try await gate.approveTool(server: s.name, tool: tool, force: force)
        await api.manager.refresh(server: s.name)
        return try Self.json(gate.status(server: s.name))
    }

    /// Approval of one held prompt or resource template (as last listed).
    public func approveItem(server name: String, kind: ItemKind, item: String, force: Bool, api: RESTAPI) async throws -> JSONValue {
        let s = try await api.requireServer(name)
        try await gate.approveItem(server: s.name, kind: kind, name: item, force: force)
        return try Self.json(gate.status(server: s.name))
    }

    /// Old versus new definition of every held tool.
    public func diffs(server name: String, api: RESTAPI) async throws -> JSONValue {
        let s = try await api.requireServer(name)
        return try Self.json(DiffBody(server: s.name, diffs: await gate.toolDiffs(server: s.name)))
    }

    /// The server's security status (tools, findings, counts, hint).
    public func security(server name: String, api: RESTAPI) async throws -> JSONValue {
        let s = try await api.requireServer(name)
        return try Self.json(gate.status(server: s.name))
    }

    /// The newest activity entries, newest first (`limit` clamped to 1...1000).
    public func activity(server: String?, limit: Int) async throws -> JSONValue {
        switch await gate.activity(server: server, limit: min(1000, max(1, limit))) {
        case .success(let list): return try Self.json(ActivityBody(activity: list))
        case .failure(let e): throw e
        }
    }

    public func register(on group: RouterGroup<BasicRequestContext>, api: RESTAPI) {
        @Sendable func force(_ r: Request) -> Bool { r.uri.queryParameters.get("force") == "true" }
        for route in ["/servers/:name/unquarantine", "/servers/:name/approve"] {
            group.post(RouterPath(route)) { request, ctx in
                guard let name = ctx.parameters.get("name") else { return RESTAPI.error(ProxyError(.invalidArgument, "missing server name")) }
                return await RESTAPI.answer { try await self.approve(name, force: force(request), api: api) }
            }
        }
        group.post("/servers/:name/quarantine") { _, ctx in await api.withServer(ctx) { s in
            await RESTAPI.answer { try await self.quarantine(s.name, api: api) }
        } }
        group.post("/servers/:name/tools/:tool/approve") { request, ctx in await api.withServer(ctx) { s in
            guard let tool = ctx.parameters.get("tool") else { return RESTAPI.error(ProxyError(.invalidArgument, "missing tool name")) }
            return await RESTAPI.answer { try await self.approveTool(server: s.name, tool: tool, force: force(request), api: api) }
        } }
        for (path, kind, param) in [("prompts", ItemKind.prompt, "name"), ("resource-templates", .resourceTemplate, "uri_template")] {
            group.post(RouterPath("/servers/:name/\(path)/approve")) { request, ctx in await api.withServer(ctx) { s in
                guard let item = request.uri.queryParameters.get(param), !item.isEmpty else {
                    return RESTAPI.error(ProxyError(.invalidArgument, "missing ?\(param)= (the \(kind.label) to approve)"))
                }
                return await RESTAPI.answer { try await self.approveItem(server: s.name, kind: kind, item: item, force: force(request), api: api) }
            } }
        }
        group.get("/servers/:name/tools/diff") { _, ctx in await api.withServer(ctx) { s in
            await RESTAPI.answer { try await self.diffs(server: s.name, api: api) }
        } }
        group.get("/servers/:name/security") { _, ctx in await api.withServer(ctx) { s in
            await RESTAPI.answer { try await self.security(server: s.name, api: api) }
        } }
        group.get("/activity") { request, _ in
            let limit = request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 100
            return await RESTAPI.answer { try await self.activity(server: request.uri.queryParameters.get("server").map { String($0) }, limit: limit) }
        }
    }

    public func serverFields(_ name: String) async -> [String: JSONValue] {
        let st = gate.summary(server: name)
        return ["quarantined": .bool(st.quarantined), "security": .object([
            "scan_status": st.scan.map { .string($0.status.rawValue) } ?? .null,
            "approved_tools": .number(Double(st.approvedTools)), "pending_tools": .number(Double(st.pendingTools)),
            "changed_tools": .number(Double(st.changedTools)), "blocked_tools": .number(Double(st.blockedTools)),
            "hint": st.hint.map { .string($0) } ?? .null,
        ])]
    }
}

struct DiffBody: Encodable { let server: String; let diffs: [ToolDiff] }
struct ActivityBody: Encodable { let activity: [ActivityRecord] }
