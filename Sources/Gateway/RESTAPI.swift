import Foundation
import HTTPTypes
import Hummingbird
import Isolation
import Logging
import NIOCore
import ProxyCore
import MCPSecurity
import Upstream

/// Extra REST routes contributed by other layers (security: quarantine, scans, approvals).
public protocol RESTExtension: Sendable {
    func register(on group: RouterGroup<BasicRequestContext>, api: RESTAPI)
    /// Extra fields merged into each server's JSON in GET /servers.
    func serverFields(_ name: String) async -> [String: JSONValue]
}

/// The REST API under `/api/v1`. Every route needs the API key (X-API-Key, Authorization:
/// Bearer or ?apikey=), compared in constant time.
public struct RESTAPI: Sendable {
    let manager: ServerManager
    let apiKey: String
    let startedAt = Date()
    let instanceID: String
    let listen: String
    let logs: LogFiles
    var extensions: [RESTExtension]
    /// Where agent tokens live; nil: the token routes answer 501.
    let tokenStore: SecurityStore?
    /// The proxy's data directory (workspace deletion finds the workspace root from it).
    public var dataDir: String = ""

    public init(manager: ServerManager, apiKey: String, instanceID: String, listen: String, logs: LogFiles,
                extensions: [RESTExtension] = [], tokenStore: SecurityStore? = nil) {
        self.manager = manager
        self.apiKey = apiKey
        self.instanceID = instanceID
        self.listen = listen
        self.logs = logs
        self.extensions = extensions
        self.tokenStore = tokenStore
    }

    /// A JSON error body `{"error":{"code","message"}}` with the code's HTTP status.
    public static func error(_ e: ProxyError) -> Response { e.restResponse() }

    public static func ok(_ v: JSONValue) -> Response { HTTPGateway.json(.ok, v.serialized()) }

    /// Constant-time comparison of two strings' bytes.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                var diff = UInt8(truncatingIfNeeded: x.count ^ y.count)
                for i in 0..<max(x.count, y.count) {
                    diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0xFF)
                }
                return diff == 0 && x.count == y.count
            }
        }
    }

    /// The credential a REST request presents: `X-API-Key`, `Authorization: Bearer`, or
    /// `?apikey=` (kept for the REST API's documented form; `/mcp` never reads the query).
    static func presentedKey(_ request: Request) -> String? {
        if let k = Authenticator.credential(request.headers) { return k }
        return request.uri.queryParameters.get("apikey").map { String($0) }
    }

    /// Only the admin API key may use the REST API: no credential or an invalid one is 401; a
    /// valid agent token or JWT is 403 (it may never use these routes).
    struct KeyMiddleware: RouterMiddleware {
        typealias Context = BasicRequestContext
        let api: RESTAPI
        let auth: Authenticator
        var endpoint: AuthEndpoint = .rest
        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            let metrics = api.manager.metrics
            guard let presented = RESTAPI.presentedKey(request) else {
                metrics.authFailure(endpoint, .missing)
                return Self.challenged(ProxyError(.unauthorized, "missing API key: send X-API-Key, Authorization: Bearer, or ?apikey= (the key is in the data dir's api_key file)"))
            }
            if RESTAPI.constantTimeEqual(presented, api.apiKey) { return try await next(request, context) }
            if case .ok(let identity) = await auth.authenticate(credential: presented) {
                metrics.authFailure(endpoint, .forbidden)
                return RESTAPI.error(ProxyError(.refused, "\(identity.label) may not use \(endpoint == .metrics ? "/metrics" : "the REST API"): it needs the admin API key"))
            }
            metrics.authFailure(endpoint, .invalid)
            return Self.challenged(ProxyError(.unauthorized, "wrong API key: send X-API-Key, Authorization: Bearer, or ?apikey= (the key is in the data dir's api_key file)"))
        }

        /// A 401 with the Bearer challenge (the shared refusal model: no or an invalid credential).
        static func challenged(_ e: ProxyError) -> Response {
            var r = RESTAPI.error(e)
            r.headers[.wwwAuthenticate] = "Bearer realm=\"mcpproxy\""
            return r
        }
    }

    func register(on router: Router<BasicRequestContext>, auth: Authenticator) {
        let api = router.group("/api/v1").add(middleware: KeyMiddleware(api: self, auth: auth))
        api.get("/status") { _, _ in await self.status() }
        api.get("/servers") { _, _ in Self.ok(await self.serversJSON()) }
        api.get("/servers/:name") { _, ctx in
            if let p = self.pending(ctx) { return Self.ok(Self.pendingJSON(p)) }
            return await self.withServer(ctx) { s in Self.ok(await self.serverJSON(s)) }
        }
        api.delete("/servers/:name") { _, ctx in
            guard let name = ctx.parameters.get("name") else { return Self.error(ProxyError(.invalidArgument, "missing server name")) }
            return await Self.answer { try await self.remove(name) }
        }
        registerTokens(on: api, auth: auth)
        registerSecrets(on: api)
        registerWorkspaces(on: api)
        api.get("/servers/:name/tools") { _, ctx in await self.withServer(ctx) { s in Self.ok(self.toolsJSON(s)) } }
        api.get("/servers/:name/logs") { request, ctx in await self.withServer(ctx) { s in
            let tail = request.uri.queryParameters.get("tail")
            guard let n = tail.map({ Int($0) }) ?? 100, (1...10_000).contains(n) else {
                return Self.error(ProxyError(.invalidArgument, "tail must be a whole number from 1 to 10000, got \"\(tail ?? "")\""))
            }
            let lines = logs.server(s.name).tail(n)
            return Self.ok(["server": .string(s.name), "lines": .array(lines.map { .string($0) })])
        } }
        api.get("/servers/:name/diagnostics") { _, ctx in await self.withServer(ctx) { s in
            Self.ok(await self.diagnostics(s))
        } }
        for op in LifecycleOperation.allCases {
            api.post("/servers/:name/\(op.rawValue)") { _, ctx in await self.withServer(ctx) { s in
                await Self.answer { try await self.perform(op, on: s.name) }
            } }
        }
        api.post("/servers/:name/release") { _, ctx in await self.withServer(ctx) { s in
            await Self.answer { try await self.release(s.name) }
        } }
        api.get("/events") { request, _ in
            let q = request.uri.queryParameters
            let limit = q.get("limit").map { String($0) }
            guard let n = limit.map({ Int($0) }) ?? 100, (1...10_000).contains(n) else {
                return Self.error(ProxyError(.invalidArgument, "limit must be a whole number from 1 to 10000, got \"\(limit ?? "")\""))
            }
            let after = q.get("after").flatMap { Int(String($0)) } ?? 0
            return Self.ok(self.eventsJSON(limit: n, server: q.get("server").map { String($0) }, after: after))
        }
        for ext in extensions { ext.register(on: api, api: self) }
    }

    /// `GET /events?limit=&server=&after=`: the runtime monitor's recent events, newest first
    /// (a bounded ring of `monitor.events_kept`; ids grow within one run of the proxy).
    public func eventsJSON(limit: Int = 100, server: String? = nil, after: Int = 0) -> JSONValue {
        ["events": .array(manager.monitorEvents.recent(limit: limit, server: server, after: after).map(\.json))]
    }

    /// `POST /servers/{name}/release`: a person releases a server held by the runtime monitor.
    public func release(_ name: String) async throws -> JSONValue {
        try await manager.release(name)
        return ["ok": true, "server": .string(name), "operation": "release"]
    }

    /// The fields of a server held by the runtime monitor: its state and the hold.
    public static func holdFields(_ h: MonitorHold?) -> [String: JSONValue] {
        guard let h else { return [:] }
        return ["state": "held_by_monitor",
                "monitor_hold": ["rule": .string(h.rule), "reason": .string(h.reason), "since": .number(h.since.rounded()),
                                 "event_id": .number(Double(h.eventID)),
                                 "hint": .string("release: `mcpproxy upstream release \(h.server)` or POST /api/v1/servers/\(h.server)/release")]]
    }

    /// `GET/POST /tokens`, `DELETE /tokens/{name}`: agent tokens (admin only, like all of REST).
    func registerTokens(on api: RouterGroup<BasicRequestContext>, auth: Authenticator) {
        api.get("/tokens") { _, _ in await Self.answer { try self.tokensJSON() } }
        api.post("/tokens") { request, _ in
            let body: ByteBuffer
            do { body = try await request.body.collect(upTo: 64 << 10) } catch {
                return Self.error(ProxyError(.invalidArgument, "cannot read the request body", cause: error))
            }
            guard let v = try? JSONValue.parse(Data(body.readableBytesView)), case .object = v else {
                return Self.error(ProxyError(.invalidArgument, "expected a JSON object {name, servers?, intent?, expires?, manage_servers?}"))
            }
            return await Self.answer { try self.createToken(v, auth: auth) }
        }
        api.delete("/tokens/:name") { _, ctx in
            guard let name = ctx.parameters.get("name") else { return Self.error(ProxyError(.invalidArgument, "missing token name")) }
            return await Self.answer { try self.revokeToken(name, auth: auth) }
        }
    }

    func requireTokenStore() throws -> SecurityStore {
        guard let store = tokenStore else { throw ProxyError(.unsupported, "no state database: tokens are unavailable") }
        return store
    }

    /// `GET /tokens`: every agent token (never a token value).
    public func tokensJSON() throws -> JSONValue {
        ["tokens": .array(try requireTokenStore().tokens().map { $0.listing() })]
    }

    /// `POST /tokens` with `{name, servers?, intent?, expires?, manage_servers?}`: the answer has
    /// `token`, the only time it is shown.
    public func createToken(_ v: JSONValue, auth: Authenticator) throws -> JSONValue {
        let store = try requireTokenStore()
        guard let name = v["name"]?.stringValue else { throw ProxyError(.invalidArgument, "\"name\" is required") }
        var expires: Double? = nil
        if let e = v["expires"], e != .null {
            guard let d = e.stringValue.flatMap(TokenExpiry.parse) ?? e.numberValue else {
                throw ProxyError(.invalidArgument, "\"expires\" must be a duration like \"30d\", \"12h\" or seconds")
            }
            expires = d
        }
        var servers: [String]? = nil
        if let list = v["servers"], list != .null {
            guard let a = list.arrayValue?.compactMap(\.stringValue) else { throw ProxyError(.invalidArgument, "\"servers\" must be an array of names") }
            servers = a
        }
        let (token, record) = try AgentTokenIssuer.create(in: store, name: name, servers: servers,
                                                          intent: v["intent"]?.stringValue ?? "read", expiresIn: expires,
                                                          manageServers: v["manage_servers"]?.boolValue ?? false)
        auth.reloadTokens()
        var out = record.listing().objectValue ?? [:]
        out["token"] = .string(token)
        return .object(out)
    }

    /// `DELETE /tokens/{name}`: revokes an active token.
    public func revokeToken(_ name: String, auth: Authenticator) throws -> JSONValue {
        let store = try requireTokenStore()
        guard try store.revokeToken(named: name) else { throw ProxyError(.notFound, "no active token named \"\(name)\"") }
        auth.reloadTokens()
        return ["ok": true, "token": .string(name), "operation": "revoke"]
    }

    /// The operations on a running server's lifecycle (REST and the web console).
    public enum LifecycleOperation: String, CaseIterable, Sendable { case enable, disable, restart }

    /// Runs `body` and answers its JSON, or the error it threw.
    static func answer(_ body: () async throws -> JSONValue) async -> Response {
        do { return Self.ok(try await body()) } catch let e as ProxyError { return Self.error(e) } catch {
            return Self.error(ProxyError(.internalError, "\(error)"))
        }
    }

    /// The server named `name`, or a not-found error naming the closest names.
    public func requireServer(_ name: String) async throws -> UpstreamServer {
        if let s = await manager.server(named: name) { return s }
        let names = await manager.allServers().map(\.name)
        let close = ToolIndex.closest(to: name, among: names)
        throw ProxyError(.notFound, "no server named \"\(name)\"\(close.isEmpty ? "" : "; closest: \(close.joined(separator: ", "))")")
    }

    /// `POST /servers/{name}/{enable,disable,restart}`; the web console calls the same.
    public func perform(_ op: LifecycleOperation, on name: String) async throws -> JSONValue {
        let s = try await requireServer(name)
        switch op {
        case .enable: try await manager.setEnabled(s.name, true)
        case .disable: try await manager.setEnabled(s.name, false)
        case .restart: try await manager.restart(s.name)
        }
        return ["ok": true, "server": .string(s.name), "operation": .string(op.rawValue)]
    }

    /// `DELETE /servers/{name}`: removes a configured server, or rejects one awaiting approval.
    public func remove(_ name: String) async throws -> JSONValue {
        try await manager.remove(name)
        return ["ok": true, "server": .string(name), "operation": "remove"]
    }

    /// `GET /servers/{name}/tools`: every tool the server offers, with whether clients may see it.
    public func toolsJSON(_ s: UpstreamServer) -> JSONValue {
        let catalog = manager.catalog
        let tools: [JSONValue] = s.tools.map { t in
            let q = "\(s.name):\(t.name)"
            var o = t.raw.objectValue ?? [:]
            o["qualified_name"] = .string(q)
            o["status"] = catalog.tools[q] != nil ? "available" : "held"
            if let why = catalog.refusals[q] { o["held_reason"] = .string(why) }
            return .object(o)
        }
        return ["server": .string(s.name), "tools": .array(tools)]
    }

    /// `GET /servers/{name}` of a configured server.
    public func serverJSON(_ s: UpstreamServer) async -> JSONValue {
        let snap = await s.snapshot()
        var extra = await extraFields(s.name)
        extra["stats"] = await statsJSON(s, snap, totals: manager.metrics.callTotals())
        extra.merge(Self.holdFields(manager.monitorHold(s.name))) { _, b in b }
        return Self.serverJSON(snap, config: await manager.currentConfig.server(named: s.name), extra: extra)
    }

    /// A server's counters since the proxy started and its processes' resource use now (what
    /// `mcpproxy status` turns into rates). Keys absent where the kernel cannot say (docker).
    func statsJSON(_ s: UpstreamServer, _ snap: ServerSnapshot, totals: [String: [CallOutcome: Int]]) async -> JSONValue {
        let byOutcome = totals[s.name] ?? [:]
        var calls: [String: JSONValue] = [:]
        for outcome in CallOutcome.allCases { calls[outcome.label] = .number(Double(byOutcome[outcome] ?? 0)) }
        var o: [String: JSONValue] = ["calls": .object(calls)]
        let p = await ProxyMetrics.processSample(s, snap)
        if let v = p.cpuSeconds { o["cpu_seconds"] = .number(v) }
        if let v = p.memoryBytes { o["memory_bytes"] = .number(v) }
        if let v = p.pids { o["pids"] = .number(v) }
        return .object(o)
    }

    /// The pending (awaiting approval) server named in the path, if any.
    func pending(_ ctx: BasicRequestContext) -> PendingServer? {
        guard let name = ctx.parameters.get("name") else { return nil }
        return manager.pendingServers.first { $0.name == name }
    }

    /// A server awaiting approval, as listed: what it would run (env keys only, never values).
    public static func pendingJSON(_ p: PendingServer) -> JSONValue {
        var o: [String: JSONValue] = [
            "name": .string(p.name), "state": "awaiting_approval", "enabled": false, "added_by": .string(p.addedBy),
            "added_at": .number(p.addedAt.rounded()), "tool_count": 0,
            "hint": .string("added over MCP; nothing runs until approved: `mcpproxy upstream approve \(p.name)` or POST /api/v1/servers/\(p.name)/approve"),
        ]
        if let c = p.entry["command"]?.stringValue { o["command"] = .string(c) }
        if let a = p.entry["args"] { o["args"] = a }
        if let u = p.entry["url"]?.stringValue { o["url"] = .string(URLRedaction.redact(u)) }
        if let e = p.entry["env"]?.objectValue { o["env_keys"] = .array(e.keys.sorted().map { .string($0) }) }
        if let w = p.entry["working_dir"] { o["working_dir"] = w }
        return .object(o)
    }

    /// Runs `body` with the server named in the path, or answers 404.
    public func withServer(_ ctx: BasicRequestContext, _ body: (UpstreamServer) async -> Response) async -> Response {
        guard let name = ctx.parameters.get("name") else { return Self.error(ProxyError(.invalidArgument, "missing server name")) }
        do { return await body(try await requireServer(name)) } catch let e as ProxyError { return Self.error(e) } catch {
            return Self.error(ProxyError(.internalError, "\(error)"))
        }
    }

    func extraFields(_ name: String) async -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for e in extensions { out.merge(await e.serverFields(name)) { _, b in b } }
        return out
    }

    func status() async -> Response {
        let servers = await manager.allServers()
        var ready = 0
        for s in servers where s.state == .ready { ready += 1 }
        return Self.ok([
            "running": true, "version": .string(ProxyVersion.current), "listen": .string(listen),
            "instance_id": .string(instanceID), "pid": .number(Double(getpid())),
            "uptime_seconds": .number(Date().timeIntervalSince(startedAt).rounded()),
            "servers_total": .number(Double(servers.count)), "servers_ready": .number(Double(ready)),
            "tools_total": .number(Double(manager.catalog.tools.count)),
            "config_path": .string(manager.configPath),
        ])
    }

    /// `GET /servers`: every configured server, then those awaiting approval.
    public func serversJSON() async -> JSONValue {
        var list: [JSONValue] = []
        let config = await manager.currentConfig
        let totals = manager.metrics.callTotals()
        for s in await manager.allServers() {
            let snap = await s.snapshot()
            var extra = await extraFields(s.name)
            extra["stats"] = await statsJSON(s, snap, totals: totals)
            extra.merge(Self.holdFields(manager.monitorHold(s.name))) { _, b in b }
            list.append(Self.serverJSON(snap, config: config.server(named: s.name), extra: extra))
        }
        for p in manager.pendingServers { list.append(Self.pendingJSON(p)) }
        return ["servers": .array(list)]
    }

    /// `GET /servers/{name}/diagnostics`: the server, its launch plan and its recent log.
    public func diagnostics(_ s: UpstreamServer) async -> JSONValue {
        let snap = await s.snapshot()
        var o = Self.serverJSON(snap, config: await manager.currentConfig.server(named: s.name),
                                extra: Self.holdFields(manager.monitorHold(s.name))).objectValue ?? [:]
        if let plan = await s.currentPlan() {
            o["launch"] = Self.planJSON(plan)
        }
        o["recent_log"] = .array(logs.server(s.name).tail(30).map { .string($0) })
        return .object(o)
    }

    /// The JSON for one launch plan (argv redacted).
    public static func planJSON(_ plan: LaunchPlan) -> JSONValue {
        var o: [String: JSONValue] = [
            "mode": .string(plan.mode.rawValue), "reason": .string(plan.decision.reason),
            "argv": .array(plan.redactedCommandLine.map { .string($0) }),
            "environment_keys": .array((plan.mode == .sandbox ? SandboxPlanner.serverEnvironment(of: plan) : plan.environment)
                .keys.sorted().map { .string($0) }),
            "warnings": .array(plan.warnings.map { .string($0) }),
            "enforcement": .object(plan.enforcement.mapValues { .string($0) }),
        ]
        if let secrets = plan.secrets { o["secret_environment_keys"] = .array(secrets.names.map { .string($0) }) }
        if plan.mode == .docker { o["docker_run_args"] = .array(plan.redactedCommandLine.dropFirst().map { .string($0) }) }
        if let w = plan.workingDirectory { o["working_dir"] = .string(w) }
        return .object(o)
    }

    /// The JSON for one server in GET /servers.
    public static func serverJSON(_ s: ServerSnapshot, config: ServerConfig?, extra: [String: JSONValue] = [:]) -> JSONValue {
        var o: [String: JSONValue] = [
            "name": .string(s.name), "enabled": .bool(s.enabled), "state": .string(s.state.rawValue),
            "protocol": .string(s.protocolName),
            "isolation": ["mode": .string(s.isolation.mode.rawValue), "reason": .string(s.isolation.reason),
                          "enforcement": .object(s.enforcement.mapValues { .string($0) }),
                          "warnings": .array(s.warnings.map { .string($0) })],
            "pid": s.pid.map { .number(Double($0)) } ?? .null,
            "container_id": s.containerID.map { .string($0) } ?? .null,
            "tool_count": .number(Double(s.toolCount)),
            "last_error": s.lastError.map { .string($0) } ?? .null,
            "restarts": .number(Double(s.restarts)),
        ]
        if let c = config {
            if let cmd = c.command { o["command"] = .string(cmd) }
            if let u = c.url { o["url"] = .string(URLRedaction.redact(u)) }
        }
        if let info = s.serverInfo { o["server_info"] = info }
        o.merge(extra) { _, b in b }
        return .object(o)
    }
}
