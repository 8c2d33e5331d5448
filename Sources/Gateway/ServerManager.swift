import Foundation
import Isolation
import Logging
import NIOConcurrencyHelpers
import ProxyCore
import MCPSecurity
import Upstream

/// What the security layer decides about one server's tools.
public struct GateVerdict: Sendable {
    /// Names of the tools clients may see and call.
    public var visible: Set<String>
    /// Why a server or tool is held back: refusal messages keyed by tool name ("*" = whole server).
    public var refusals: [String: String]
    /// The findings of this evaluation's scan, by severity (`hard`, `soft`), for the metrics.
    public var findings: [String: Int]
    public init(visible: Set<String>, refusals: [String: String] = [:], findings: [String: Int] = [:]) {
        self.visible = visible
        self.refusals = refusals
        self.findings = findings
    }
}

/// The seam to the security layer (quarantine, pinning, scanning). Called when a server's tools
/// are (re)listed; calls are then checked against the resulting catalog without a hop.
public protocol ToolGate: Sendable {
    func evaluate(server: ServerConfig, tools: [ToolDefinition], mode: IsolationMode,
                  otherServers: [String: [String]]) async -> GateVerdict
    /// Records a finished call. Synchronous and cheap: called on the hot path.
    func recordCall(server: String, tool: String, durationMs: Double, outcome: ActivityOutcome, requestID: String,
                    arguments: [UInt8]?, caller: String)
    /// Called when a server leaves the config, so a later server of that name starts afresh.
    func forget(server: String) async
    /// Text the model reads besides tool descriptions (prompts, resource templates, resources),
    /// screened like a tool description and (prompts, templates) pinned like one: the items of
    /// one listing that are held, by name, with a message saying why and how a person approves.
    func hold(server: String, kind: ItemKind, items: [ToolDefinition]) async -> [String: String]
}

extension ToolGate {
    public func forget(server: String) async {}
    public func hold(server: String, kind: ItemKind, items: [ToolDefinition]) async -> [String: String] { [:] }
}

/// A gate that lets everything through (used when security is explicitly off, and in unit tests).
public struct OpenGate: ToolGate {
    public init() {}
    public func evaluate(server: ServerConfig, tools: [ToolDefinition], mode: IsolationMode,
                         otherServers: [String: [String]]) async -> GateVerdict {
        GateVerdict(visible: Set(tools.map(\.name)))
    }
    public func recordCall(server: String, tool: String, durationMs: Double, outcome: ActivityOutcome, requestID: String,
                           arguments: [UInt8]?, caller: String) {}
}

/// How long requests wait for upstream servers whose first start is still in progress (one
/// place for these bounds; docs/commands.md, "Start-up"). Requests wait only within `window`
/// seconds of the proxy's start; afterwards a server that is not ready is reported at once.
public enum StartupWait {
    /// Requests wait for starting servers only this long after the proxy started.
    public static let window: Double = 120
    /// `retrieve_tools` waits at most this long for the servers still starting (in the caller's
    /// scope), then answers from what is ready and names the rest (`starting`).
    public static let search: Double = 3
    /// A routed call (`call_tool`, direct `server__tool`) whose server is still starting waits
    /// for that server only, at most this long, then gets the server's state as its error.
    public static let call: Double = 15
}

/// The routable view of all servers, swapped atomically when anything changes.
public struct Catalog: Sendable {
    public var tools: [String: CatalogTool] = [:]          // by qualified name server:tool
    public var index = ToolIndex(tools: [])
    public var refusals: [String: String] = [:]            // server:tool or server:* → message
    public var serverNames: Set<String> = []
    /// The live servers by name, so calls route without a hop onto the manager actor.
    public var servers: [String: UpstreamServer] = [:]
    /// A hash of the visible tools, to notify clients only on real changes.
    public var signature: Int = 0
    /// Servers whose current tool list has been through the gate.
    public var evaluated: Set<String> = []
    /// Servers held by the runtime monitor (`held_by_monitor`) → the refusal their calls get.
    public var held: [String: String] = [:]

    public func lookup(_ qualified: String) -> CatalogTool? { tools[qualified] }
}

/// Owns the upstream servers: applies config (at start and on reload), routes lookups, persists
/// changes made through the API or MCP to the config file.
public actor ServerManager {
    public nonisolated var configPath: String { configStore.path }
    /// The config's owner: the manager's own writes (REST, MCP) reload through it, so every
    /// component gets the new snapshot at once.
    public nonisolated let configStore: ConfigStore
    /// The snapshot the manager last applied.
    private(set) var config: ProxyConfig
    private var servers: [String: UpstreamServer] = [:]
    private let env: UpstreamEnvironment
    /// Tracing (off unless configured): the handler's server spans use it too.
    public nonisolated var traces: TraceHooks { env.traces }
    private let gate: ToolGate
    private let log: Logger
    private nonisolated let catalogBox = NIOLockedValueBox(Catalog())
    /// Names of the configured servers, readable without a hop (a request can arrive before
    /// `startAll` built the first catalog: in stdio mode it often does).
    private nonisolated let configuredBox = NIOLockedValueBox<Set<String>>([])
    public nonisolated func isConfigured(_ server: String) -> Bool { configuredBox.withLockedValue { $0.contains(server) } }
    /// The current config, readable without a hop (workspace instances start from it).
    private nonisolated let configBox: NIOLockedValueBox<ProxyConfig>
    /// Per-workspace instances of servers with `instance: "workspace"`.
    public nonisolated let instances: WorkspaceInstances
    private var verdicts: [String: GateVerdict] = [:]
    /// Called after the catalog changes (sessions are told tools/list_changed).
    private nonisolated let listeners = NIOLockedValueBox<[@Sendable () -> Void]>([])
    /// Servers added over MCP that await a person's approval (nothing runs for them), by name.
    private nonisolated let pendingBox = NIOLockedValueBox<[String: PendingServer]>([:])
    /// Where pending servers persist; nil keeps them in memory only (unit tests).
    private let store: SecurityStore?
    /// The proxy's metrics (`GET /metrics`); the handler, gateway and REST API reach them here.
    public nonisolated let metrics: ProxyMetrics
    /// The runtime monitor's recent events (`GET /api/v1/events`).
    public nonisolated let monitorEvents = MonitorEventLog()
    /// Every server's `run()` and the manager's own background work (tool refreshes, catalog
    /// rebuilds) are child tasks of `run()` (the supervisor's): `close()` ends them all.
    private nonisolated let jobs: Jobs

    public init(config: ProxyConfig, configStore: ConfigStore, environment: UpstreamEnvironment, gate: ToolGate, logger: Logger,
                store: SecurityStore? = nil, metrics: ProxyMetrics = ProxyMetrics()) {
        self.metrics = metrics
        self.config = config
        self.configBox = NIOLockedValueBox(config)
        let listenersBox = NIOLockedValueBox<[@Sendable (String, String, RawMessage) -> Void]>([])
        self.notificationListeners = listenersBox
        let jobs = Jobs()
        self.jobs = jobs
        self.instances = WorkspaceInstances(environment: environment, logger: logger, jobs: jobs) { event in
            // A workspace instance's notifications carry `server@workspace`; its tools are
            // compared with the definition's on each call, so list changes need nothing here.
            if case .notification(let key, let method, let message) = event {
                for f in listenersBox.withLockedValue({ $0 }) { f(key, method, message) }
            }
        }
        configuredBox.withLockedValue { $0 = Set(config.servers.map(\.name)) }
        self.configStore = configStore
        self.env = environment
        self.gate = gate
        self.log = logger
        self.store = store
        if let store {
            do {
                let all = try store.pendingServers()
                pendingBox.withLockedValue { p in for s in all { p[s.name] = s } }
            } catch {
                logger.error("cannot read the servers awaiting approval: \(error)")
            }
            do {
                let all = try store.monitorHolds()
                heldBox.withLockedValue { h in for x in all { h[x.server] = x } }
                for x in all { logger.warning("server \(x.server) stays held by the runtime monitor (rule \(x.rule): \(x.reason)); release it with `mcpproxy upstream release \(x.server)`") }
            } catch {
                logger.error("cannot read the monitor holds: \(error)")
            }
        }
    }

    // MARK: runtime monitor holds

    /// Servers the runtime monitor holds (`held_by_monitor`), by name.
    private nonisolated let heldBox = NIOLockedValueBox<[String: MonitorHold]>([:])

    /// The monitor's hold on `name`, if it is held.
    public nonisolated func monitorHold(_ name: String) -> MonitorHold? { heldBox.withLockedValue { $0[name] } }
    /// Every hold, by server name.
    public nonisolated var monitorHolds: [String: MonitorHold] { heldBox.withLockedValue { $0 } }

    /// What a call to a held server is told.
    public static func heldMessage(_ h: MonitorHold) -> String {
        "server \"\(h.server)\" is held by the runtime monitor (rule \(h.rule): \(h.reason)); it is stopped and its tools are refused "
            + "until a person releases it: `mcpproxy upstream release \(h.server)` or POST /api/v1/servers/\(h.server)/release"
    }

    /// The runtime monitor holds `name`: recorded in the state database (so it stays held across
    /// restarts of mcpproxy), stopped, and its tools refused. Returns false when it was already
    /// held or is not configured.
    @discardableResult
    public func hold(_ h: MonitorHold) async -> Bool {
        guard config.server(named: h.server) != nil, heldBox.withLockedValue({ $0[h.server] }) == nil else { return false }
        do { try store?.addMonitorHold(h) } catch {
            log.error("cannot record the monitor hold of \(h.server) (it is held until mcpproxy restarts): \(error)")
        }
        heldBox.withLockedValue { $0[h.server] = h }
        log.warning("server \(h.server) held by the runtime monitor (rule \(h.rule): \(h.reason)); stopping it. Release: `mcpproxy upstream release \(h.server)` or POST /api/v1/servers/\(h.server)/release")
        rebuildCatalog()
        if let server = servers[h.server] { await server.stop() }
        rebuildCatalog()
        return true
    }

    /// A person releases a held server: the hold is forgotten and the server starts afresh from
    /// the current config.
    public func release(_ name: String) async throws {
        guard heldBox.withLockedValue({ $0[name] }) != nil else {
            throw ProxyError(.notFound, "server \"\(name)\" is not held by the runtime monitor")
        }
        try store?.removeMonitorHold(name)
        heldBox.withLockedValue { _ = $0.removeValue(forKey: name) }
        log.notice("server \(name) released from its monitor hold; starting it")
        if let old = servers.removeValue(forKey: name) { await old.stop(); old.close() }
        verdicts.removeValue(forKey: name)
        if let sc = config.server(named: name) { makeServer(sc) }
        rebuildCatalog()
    }

    public nonisolated var catalog: Catalog { catalogBox.withLockedValue { $0 } }
    public var currentConfig: ProxyConfig { config }

    public nonisolated func onCatalogChange(_ f: @escaping @Sendable () -> Void) {
        listeners.withLockedValue { $0.append(f) }
    }

    /// Answers upstream servers' requests to clients (sampling, elicitation, roots).
    public nonisolated func onServerRequest(_ f: @escaping @Sendable (_ server: String, _ request: RawMessage) async -> [UInt8]) {
        env.serverRequests.set(f)
    }

    /// Called with each notification an upstream sends for the clients (its log messages, its
    /// resource and prompt list changes), with the server's name.
    public nonisolated func onUpstreamNotification(_ f: @escaping @Sendable (String, String, RawMessage) -> Void) {
        notificationListeners.withLockedValue { $0.append(f) }
    }
    private nonisolated let notificationListeners: NIOLockedValueBox<[@Sendable (String, String, RawMessage) -> Void]>

    public nonisolated func server(named name: String) async -> UpstreamServer? {
        await serverLookup(name)
    }
    private func serverLookup(_ name: String) -> UpstreamServer? { servers[name] }

    public func allServers() -> [UpstreamServer] {
        config.servers.compactMap { servers[$0.name] }
    }

    /// The lifetime of every server and of the manager's background work: returns after
    /// `close()`, once all of it has ended. The supervisor runs it next to its own loop.
    public nonisolated func run() async { await jobs.run() }

    /// Ends `run()`: every server's lifetime (after `stopAll`, nothing of theirs is running) and
    /// the manager's own work.
    public func close() async {
        await instances.close()
        for s in servers.values { s.close() }
        jobs.close()
    }

    /// Starts every configured server.
    public func startAll() {
        for s in config.servers where servers[s.name] == nil { makeServer(s) }
        rebuildCatalog()
    }

    private func makeServer(_ s: ServerConfig) {
        let server = UpstreamServer(config: s, proxyConfig: config, environment: env) { [weak self] event in
            guard let self else { return }
            switch event {
            case .toolsChanged(let name): self.jobs.spawn { await self.refresh(server: name) }
            case .notification(let name, let method, let message):
                for f in self.notificationListeners.withLockedValue({ $0 }) { f(name, method, message) }
            case .stateChanged: break
            }
        }
        servers[s.name] = server
        jobs.spawn { await server.run() }
        // A held server's object exists (listings, release) but does not run.
        let held = heldBox.withLockedValue({ $0[s.name] }) != nil
        jobs.spawn { if held { await server.stop() } else { await server.start() } }
    }

    /// Re-evaluates one server's tools through the gate and rebuilds the catalog.
    public func refresh(server name: String) async {
        guard let server = servers[name], let sc = config.server(named: name) else {
            verdicts.removeValue(forKey: name)
            rebuildCatalog()
            return
        }
        let tools = server.tools
        var others: [String: [String]] = [:]
        for (n, s) in servers where n != name { others[n] = s.tools.map(\.name) }
        let mode = IsolationResolver.resolve(sc, global: config.dockerIsolation).mode
        let verdict = await gate.evaluate(server: sc, tools: tools, mode: mode, otherServers: others)
        metrics.scanFindings(verdict.findings)
        guard servers[name] === server else { return }  // removed or replaced meanwhile
        verdicts[name] = verdict
        requestRebuild()
    }

    /// Rebuilding the catalog (and its search index) costs time in the number of all tools:
    /// when many servers come up together (hundreds at start-up), one rebuild per server made the
    /// start quadratic. Tool refreshes within 20 ms share one rebuild.
    private var rebuildScheduled = false
    private func requestRebuild() {
        guard !rebuildScheduled else { return }
        rebuildScheduled = true
        jobs.spawn {
            try? await Task.sleep(nanoseconds: 20_000_000)
            await self.scheduledRebuild()
        }
    }
    private func scheduledRebuild() {
        rebuildScheduled = false
        rebuildCatalog()
    }

    private func rebuildCatalog() {
        var c = Catalog()
        c.serverNames = Set(config.servers.map(\.name))
        c.servers = servers
        let holds = heldBox.withLockedValue { $0 }
        for (name, h) in holds where c.serverNames.contains(name) { c.held[name] = Self.heldMessage(h) }
        var list: [CatalogTool] = []
        for s in config.servers where s.enabled && holds[s.name] == nil {
            guard let server = servers[s.name], server.state == .ready else { continue }
            let verdict = verdicts[s.name]
            // Judged only when the verdict covers the tools the server has now: a verdict made
            // before a restarted server listed its tools (a reload) judges none of them, and
            // calls must wait for the next one rather than be told "being evaluated".
            if let v = verdict, v.refusals["*"] != nil
                || server.tools.allSatisfy({ v.visible.contains($0.name) || v.refusals[$0.name] != nil }) {
                c.evaluated.insert(s.name)
            }
            for t in server.tools {
                let ct = CatalogTool(server: s.name, tool: t)
                if let v = verdict, v.visible.contains(t.name) {
                    c.tools[ct.qualifiedName] = ct
                    list.append(ct)
                } else {
                    c.refusals[ct.qualifiedName] = verdict?.refusals[t.name] ?? verdict?.refusals["*"]
                        ?? "tool \"\(ct.qualifiedName)\" is being evaluated; try again shortly"
                }
            }
            if let star = verdict?.refusals["*"] { c.refusals["\(s.name):*"] = star }
        }
        c.index = ToolIndex(tools: list, reusing: catalogBox.withLockedValue { $0.index })
        // Clients are told only when what they can see changed (names, descriptions, schemas).
        var h = Hasher()
        for (name, t) in list.map({ ($0.qualifiedName, $0) }).sorted(by: { $0.0 < $1.0 }) { h.combine(name); h.combine(t.tool.raw) }
        c.signature = h.finalize()
        let changed = catalogBox.withLockedValue { old -> Bool in
            defer { old = c }
            return old.signature != c.signature
        }
        if changed { notifyListeners() }
    }

    /// Applies a new config: removed servers stop, new ones start, changed ones restart, and
    /// failed ones are retried.
    /// Applies run one at a time in the order they were asked for (each awaits server stops
    /// and updates; two interleaved ones could leave a server with an older config).
    public func apply(_ newConfig: ProxyConfig) async {
        let previous = applyTail
        let task = Task { await previous?.value; await self.applyNow(newConfig) }
        applyTail = task
        await task.value
    }
    private var applyTail: Task<Void, Never>?

    private func applyNow(_ newConfig: ProxyConfig) async {
        let old = config
        config = newConfig
        configBox.withLockedValue { $0 = newConfig }
        // Workspace instances of servers that changed or left, and of workspaces that left, stop;
        // the next call starts them from the new config.
        let wsNames = Set(newConfig.workspaces.map(\.name))
        await instances.stop { key in
            newConfig.server(named: key.server).map { $0 != old.server(named: key.server) || $0.instance != .workspace } ?? true
                || !wsNames.contains(key.workspace)
        }
        configuredBox.withLockedValue { $0 = Set(newConfig.servers.map(\.name)) }
        dropPendingShadowedByConfig()
        let newNames = Set(newConfig.servers.map(\.name))
        for (name, server) in servers where !newNames.contains(name) {
            log.info("server removed from config: \(name)")
            servers.removeValue(forKey: name)
            verdicts.removeValue(forKey: name)
            await server.stop()
            server.close()
            await gate.forget(server: name)
            if heldBox.withLockedValue({ $0.removeValue(forKey: name) }) != nil { try? store?.removeMonitorHold(name) }
        }
        for s in newConfig.servers {
            if heldBox.withLockedValue({ $0[s.name] }) != nil {
                continue  // stays stopped; release starts it from the config then in force
            }
            if let server = servers[s.name] {
                await server.update(config: s, proxyConfig: newConfig)
                if server.state == .failed { await server.restart() }
                else if old.server(named: s.name)?.quarantined != s.quarantined { await refresh(server: s.name) }
            } else {
                log.info("server added from config: \(s.name)")
                makeServer(s)
            }
        }
        rebuildCatalog()
    }

    /// Waits (up to `timeout` seconds) until no enabled server is still starting, so that the
    /// first search or call after the proxy starts sees every server that will come up.
    /// Servers whose first start has not settled yet (starting, or ready but tools not yet
    /// through the gate), sorted.
    public nonisolated func startingServers() -> [String] {
        let c = catalog
        return c.servers.filter { name, server in
            switch server.state {
            case .starting, .stopped: return !server.firstStartOver
            case .ready: return !c.evaluated.contains(name)
            default: return false
            }
        }.keys.sorted()
    }

    /// Waits (up to `timeout` seconds) until the servers named in `only` (every server when nil)
    /// have settled their first start: ready with their tools through the gate, or failed,
    /// disabled, or restarting (restarts are not waited for). Polls the catalog every 10 ms.
    public nonisolated func waitForStartup(timeout: Double, only: Set<String>? = nil) async {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let c = catalog
            // A named server that is configured but not in the catalog yet has not started.
            if let only, only.contains(where: { c.servers[$0] == nil && isConfigured($0) }) {
                try? await Task.sleep(nanoseconds: 10_000_000)
                continue
            }
            let unsettled = c.servers.contains { name, server in
                if let only, !only.contains(name) { return false }
                switch server.state {
                // Restarts are not waited for, except by a call for that very server (a reload
                // replaces a server: the catalog may still hold the stopped one for a moment).
                case .starting, .stopped: return only != nil || !server.firstStartOver
                case .ready: return !c.evaluated.contains(name)  // tools not yet through the gate
                default: return false
                }
            }
            if !unsettled { return }
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
    }

    /// Stops every server (shutdown).
    public func stopAll() async {
        shuttingDown = true
        await instances.shutdown()
        await withTaskGroup(of: Void.self) { group in
            for s in servers.values { group.addTask { await s.stop() } }
        }
    }

    // MARK: workspace instances

    /// The instance of `server` for `workspace`, started when it is not running, once it is
    /// ready. A call is in flight on it until `releaseInstance`. Throws when it cannot start.
    public nonisolated func acquireInstance(server name: String, workspace: String) async throws -> UpstreamServer {
        let cfg = configBox.withLockedValue { $0 }
        guard let sc = cfg.server(named: name), sc.instance == .workspace else {
            throw ProxyError(.notFound, "server \"\(name)\" has no workspace instances")
        }
        let key = InstanceKey(server: name, workspace: workspace)
        let server = await instances.acquire(key, config: sc, proxyConfig: cfg)
        let limit = (sc.startupTimeout ?? 60) + 5
        let deadline = Date().addingTimeInterval(limit)
        while Date() < deadline {
            switch server.state {
            case .ready, .unresponsive: return server
            case .starting, .stopped, .restarting:
                try? await Task.sleep(nanoseconds: 10_000_000)
            default:
                await instances.release(key)
                let why = (await server.snapshot()).lastError ?? server.state.rawValue
                throw ProxyError(.unavailable, "the instance of server \"\(name)\" for this workspace could not start: \(why)")
            }
        }
        await instances.release(key)
        throw ProxyError(.timeout, "the instance of server \"\(name)\" for this workspace did not become ready within \(Int(limit)) s")
    }

    public nonisolated func releaseInstance(server name: String, workspace: String) async {
        await instances.release(InstanceKey(server: name, workspace: workspace))
    }

    /// Stops every instance of `workspace`; returns their keys (`server@workspace`).
    public func stopInstances(workspace: String) async -> [String] {
        await instances.stop { $0.workspace == workspace }.map(\.description)
    }

    // MARK: changes that persist to the config file

    public func remove(_ name: String) async throws {
        if pendingBox.withLockedValue({ $0[name] }) != nil, config.server(named: name) == nil {
            try rejectPending(name)
            return
        }
        try ConfigFile.updateServer(path: configPath, name: name, create: false) { _ in nil }
        try await reloadFromFile()
    }

    // MARK: servers awaiting approval (added over MCP)

    /// Servers awaiting approval, by name.
    public nonisolated var pendingServers: [PendingServer] {
        pendingBox.withLockedValue { $0.values.sorted { $0.name < $1.name } }
    }
    /// Their names (cheap: read by retrieve_tools on every search).
    public nonisolated var pendingNames: [String] { pendingBox.withLockedValue { Array($0.keys) } }

    /// Records a server added over MCP as `awaiting_approval`: stored in the state database, not
    /// in the config file, and nothing is started, connected or pulled for it until a person
    /// approves it (`approvePending`).
    public func addPending(_ s: ServerConfig, addedBy: String) async throws {
        guard ConfigLoader.isValidServerName(s.name) else {
            throw ProxyError(.invalidArgument, "invalid server name \"\(s.name)\": use letters, digits, '-', '_' and '.'")
        }
        if config.server(named: s.name) != nil || pendingBox.withLockedValue({ $0[s.name] }) != nil {
            throw ProxyError(.conflict, "a server named \"\(s.name)\" already exists")
        }
        var entry = s
        entry.quarantined = nil  // never pre-approved through this path
        let json = try JSONValue.parse(JSONSerialization.data(withJSONObject: ConfigFile.json(for: entry), options: [.sortedKeys]))
        // Validate now, so that approval cannot fail on an entry a person already looked at.
        var probe: [String: Any] = ["mcpServers": [ConfigFile.json(for: entry)]]
        probe["listen"] = config.listen
        _ = try ConfigLoader.parse(data: JSONSerialization.data(withJSONObject: probe), file: "upstream_servers add")
        let p = PendingServer(name: s.name, entry: json, addedBy: addedBy, addedAt: Date().timeIntervalSince1970)
        try store?.addPendingServer(p)
        pendingBox.withLockedValue { $0[s.name] = p }
        log.notice("server \(s.name) added over MCP by \(addedBy): awaiting approval, nothing started")
        notifyListeners()
    }

    /// A person approved a pending server: it is written to the config file (without
    /// `quarantined`, so it starts quarantined: connected and inspected, tools hidden until a
    /// second approval).
    public func approvePending(_ name: String) async throws {
        guard let p = pendingBox.withLockedValue({ $0[name] }) else {
            throw ProxyError(.notFound, "no server named \"\(name)\" is awaiting approval")
        }
        guard let entry = p.entry.objectValue else { throw ProxyError(.internalError, "the stored entry of \"\(name)\" is not an object") }
        let object = try JSONSerialization.jsonObject(with: Data(JSONValue.object(entry).serialized().utf8)) as? [String: Any] ?? [:]
        try ConfigFile.updateServer(path: configPath, name: name, create: true) { _ in object }
        try store?.removePendingServer(name)
        pendingBox.withLockedValue { _ = $0.removeValue(forKey: name) }
        log.notice("server \(name) (added over MCP by \(p.addedBy)) approved to start; it runs quarantined until its tools are approved")
        try await reloadFromFile()
    }

    /// Drops a pending server without starting it.
    public func rejectPending(_ name: String) throws {
        guard pendingBox.withLockedValue({ $0[name] }) != nil else {
            throw ProxyError(.notFound, "no server named \"\(name)\" is awaiting approval")
        }
        try store?.removePendingServer(name)
        pendingBox.withLockedValue { _ = $0.removeValue(forKey: name) }
        log.notice("server \(name) awaiting approval was removed")
        notifyListeners()
    }

    /// A person wrote a server of the same name into the config file: theirs wins.
    private func dropPendingShadowedByConfig() {
        let names = Set(config.servers.map(\.name))
        let shadowed = pendingBox.withLockedValue { p in p.keys.filter { names.contains($0) } }
        for name in shadowed {
            try? store?.removePendingServer(name)
            pendingBox.withLockedValue { _ = $0.removeValue(forKey: name) }
            log.warning("server \(name) awaiting approval was dropped: the config file now defines a server of that name")
        }
    }

    private func notifyListeners() {
        // Servers stopping with the proxy change no client's tools: a list_changed sent while a
        // client closes its end crashes some clients (the SDK 1.x stdio reader).
        guard !shuttingDown else { return }
        for f in listeners.withLockedValue({ $0 }) { f() }
    }
    private var shuttingDown = false

    public func setEnabled(_ name: String, _ enabled: Bool) async throws {
        try ConfigFile.updateServer(path: configPath, name: name, create: false) { entry in
            var e = entry ?? [:]
            e.removeValue(forKey: "disabled")
            e["enabled"] = enabled
            return e
        }
        try await reloadFromFile()
    }

    public func setQuarantined(_ name: String, _ quarantined: Bool) async throws {
        try ConfigFile.updateServer(path: configPath, name: name, create: false) { entry in
            var e = entry ?? [:]
            e["quarantined"] = quarantined
            return e
        }
        try await reloadFromFile()
    }

    public func restart(_ name: String) async throws {
        guard let s = servers[name] else { throw ProxyError(.notFound, "no server named \"\(name)\"") }
        if let h = heldBox.withLockedValue({ $0[name] }) { throw ProxyError(.conflict, Self.heldMessage(h)) }
        await s.restart()
    }

    /// After our own writes: the store reads the file and publishes it to every component
    /// (this manager included).
    public func reloadFromFile() async throws {
        try await configStore.reload()
    }
}
