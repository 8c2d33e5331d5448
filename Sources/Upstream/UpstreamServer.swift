import AsyncHTTPClient
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Isolation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ProxyCore

/// Lifecycle states of an upstream server, as shown in the API.
public enum ServerState: String, Sendable {
    /// `unresponsive`: ready, process alive, but its last calls all timed out (see docs/architecture.md).
    case disabled, starting, ready, unresponsive, restarting, failed, stopped
}

/// What the REST API and `doctor` show about one server.
public struct ServerSnapshot: Sendable {
    public var name: String
    public var enabled: Bool
    public var state: ServerState
    public var protocolName: String
    public var isolation: IsolationDecision
    public var pid: Int32?
    public var containerID: String?
    public var toolCount: Int
    public var lastError: String?
    public var restarts: Int
    /// Restarts after a crash or a failed start (not a person's restarts): the monitor's
    /// crash-loop rule counts these.
    public var crashRestarts: Int = 0
    public var enforcement: [String: String]
    public var warnings: [String]
    public var serverInfo: JSONValue?
    /// The capabilities the server declared in its initialize result.
    public var capabilities: JSONValue? = nil
}

/// Hands a server's request to a client (sampling, elicitation, roots) to whoever can answer it:
/// the gateway, which knows the sessions. Until one is set, such requests are refused.
public final class ServerRequestRouter: Sendable {
    private let handler = NIOLockedValueBox<(@Sendable (String, RawMessage) async -> [UInt8])?>(nil)
    public init() {}
    public func set(_ f: @escaping @Sendable (_ server: String, _ request: RawMessage) async -> [UInt8]) {
        handler.withLockedValue { $0 = f }
    }
    public func route(server: String, _ request: RawMessage) async -> [UInt8] {
        guard let f = handler.withLockedValue({ $0 }) else {
            return JSONRPC.error(id: request.envelope.id, ProxyError(.methodNotFound, "mcpproxy does not forward \(request.envelope.method ?? "") here"))
        }
        return await f(server, request)
    }
}

/// Events an upstream reports to whoever manages it.
public enum UpstreamEvent: Sendable {
    case toolsChanged(String)
    case stateChanged(String, ServerState)
    /// A notification for the clients: `notifications/message` (the server's log) or
    /// `notifications/resources|prompts/list_changed`.
    case notification(String, method: String, RawMessage)
}

/// Shared dependencies of all upstream servers.
public struct UpstreamEnvironment: Sendable {
    public var group: EventLoopGroup
    public var httpClient: HTTPClient
    /// A launch context with a fresh launch id.
    public var launchContext: @Sendable () -> LaunchContext
    public var logs: LogFiles
    public var logger: Logger
    public var logLevel: Logger.Level
    public var maxMessageBytes: Int
    /// The isolation backends by mode (`IsolationBackends.standard` unless a test swaps one).
    public var backends: IsolationBackends
    /// Grace period of each step of the stop ladder, seconds.
    public var stopGrace: Double
    /// Shared by all servers: how many start at once.
    public var startLimiter: StartLimiter
    /// Where servers' requests to clients go (set by the gateway).
    public var serverRequests = ServerRequestRouter()
    /// Spans for upstream requests and `traceparent` for HTTP upstreams (off unless configured).
    public var traces = TraceHooks.off
    /// The forwarding proxy of servers with an `egress` allowlist (nil: such servers do not start).
    public var egress: EgressProxy? = nil

    public init(group: EventLoopGroup, httpClient: HTTPClient, launchContext: @escaping @Sendable () -> LaunchContext,
                logs: LogFiles, logger: Logger, logLevel: Logger.Level, maxMessageBytes: Int,
                backends: IsolationBackends = .standard, stopGrace: Double = 3,
                startLimiter: StartLimiter = StartLimiter(limit: max(4, 2 * ProcessInfo.processInfo.activeProcessorCount))) {
        self.group = group
        self.httpClient = httpClient
        self.launchContext = launchContext
        self.logs = logs
        self.logger = logger
        self.logLevel = logLevel
        self.maxMessageBytes = maxMessageBytes
        self.backends = backends
        self.stopGrace = stopGrace
        self.startLimiter = startLimiter
    }
}

/// One supervised upstream server: launches it, performs the MCP handshake, lists its tools,
/// restarts it with exponential backoff when it dies, and stops it with a ladder that always ends.
public actor UpstreamServer {
    public nonisolated let name: String
    public private(set) var config: ServerConfig
    private var proxyConfig: ProxyConfig
    private let env: UpstreamEnvironment
    private let onEvent: @Sendable (UpstreamEvent) -> Void
    private let log: Logger
    /// The console (stderr only: the server's own log and main.log already get the details).
    /// Start failures, giving up and recovering are printed here once each, concisely.
    private let console: Logger
    /// A failure was shown on the console and recovery has not been yet.
    private var consoleShowedFailure = false

    /// What the hot path reads without hopping onto the actor.
    private struct Live {
        var peer: JSONRPCPeer?
        var tools: [ToolDefinition] = []
        var state: ServerState = .stopped
        /// The first start has ended (ready or not): later starts are restarts.
        var firstStartOver = false
    }
    private nonisolated let live = NIOLockedValueBox(Live())
    /// Why a generation's stdout ended abnormally (over-long line, stream error), recorded on the
    /// NIO thread before the exit is reported, so the exit message keeps the first cause.
    private nonisolated let stdoutFault = NIOLockedValueBox<(gen: Int, why: String)?>(nil)

    private var generation = 0
    private var process: StdioProcess?
    private var transport: UpstreamTransport?
    private var plan: LaunchPlan?
    /// What the backend started besides the process (a container id), from its `started` hook.
    private var containerID: String?
    /// The egress proxy listener of the current launch.
    private var egressKey: String?
    private var decision: IsolationDecision
    private var restarts = 0
    private var crashRestarts = 0
    private var consecutiveFailures = 0
    /// Starts in a row that never reached ready.
    private var failedStarts = 0
    private var readySince: Date?
    private var lastError: String?
    private var stderrTail: [String] = []
    private var serverInfo: JSONValue?
    private var capabilities: JSONValue?
    /// Everything the server does in the background (launches, restart backoff, health pings,
    /// what its process and transport report) runs as child tasks of `run()`, which the
    /// supervisor runs in its task group; `close()` ends it.
    private nonisolated let jobs = Jobs()
    /// Lifecycle operations (start, stop, restart, update, enable, failure handling) run one at a
    /// time, in order: each waits for the baton of the one before it (see `serialized`).
    private var opTail: Baton?
    /// Tools refresh after list_changed: at most one running and one pending per server.
    private var refreshRunning = false
    private var refreshPending = false
    private var stopping = false

    /// The workspace this instance belongs to (`instance: "workspace"`); nil: the shared one.
    public nonisolated let workspace: String?
    /// How notifications and requests to clients name this instance: `server`, or
    /// `server@workspace` for a workspace instance (server names cannot hold `@`).
    public nonisolated var routingKey: String { workspace.map { "\(name)@\($0)" } ?? name }

    public init(config: ServerConfig, proxyConfig: ProxyConfig, environment: UpstreamEnvironment,
                workspace: String? = nil, onEvent: @escaping @Sendable (UpstreamEvent) -> Void) {
        self.workspace = workspace
        self.name = config.name
        self.config = config
        self.proxyConfig = proxyConfig
        self.env = environment
        self.onEvent = onEvent
        self.decision = IsolationResolver.resolve(config, global: proxyConfig.dockerIsolation)
        // An enabled server is "starting" from birth: callers waiting for start-up must not see
        // it as stopped in the moment before its start task runs.
        if config.enabled { live.withLockedValue { $0.state = .starting } }
        let file = environment.logs.server(config.name)
        let level = environment.logLevel
        var logger = Logger(label: "server.\(config.name)") { label in
            FileLogHandler(label: label, files: [file, environment.logs.main], level: level, alsoStderr: false)
        }
        logger.logLevel = level
        self.log = logger
        let name = config.name
        var console = Logger(label: "server.\(name)") { label in
            FileLogHandler(label: label, files: [], level: .info, alsoStderr: true)
        }
        console.logLevel = .info
        self.console = console
    }

    /// One console line for the first failure of a streak (not one per retry of a crash loop).
    private func showFailure(_ message: String) {
        guard !consoleShowedFailure else { return }
        consoleShowedFailure = true
        console.info("\(message); retrying with backoff (details: \(env.logs.server(name).path))")
    }

    // MARK: hot path

    /// The current tools (empty unless ready).
    public nonisolated var tools: [ToolDefinition] { live.withLockedValue { $0.tools } }
    public nonisolated var state: ServerState { live.withLockedValue { $0.state } }
    /// Requests sent to the server and not yet answered.
    public nonisolated var callsInFlight: Int { live.withLockedValue { $0.peer }?.callsInFlight ?? 0 }
    /// Whether the server's first start is over (it was ready, failed, or was stopped once).
    /// Callers that wait for start-up wait only for first starts, never for restarts.
    public nonisolated var firstStartOver: Bool { live.withLockedValue { $0.firstStartOver } }

    /// Sends a request to the server; fails fast when it is not ready.
    public nonisolated func request(method: String, params: [UInt8]?, timeout: Double,
                                    progress: (token: String, handler: @Sendable (RawMessage) -> Void)? = nil) async throws -> RawMessage {
        let (peer, state) = live.withLockedValue { ($0.peer, $0.state) }
        // An unresponsive server still gets calls: its process is alive, and the next answer
        // brings it back to ready.
        guard let peer, state == .ready || state == .unresponsive else {
            throw ProxyError(.unavailable, "upstream server \"\(name)\" is \(state.rawValue)\(state == .restarting || state == .starting ? "; try again shortly" : "")")
        }
        return try await env.traces.span(method, kind: .client, attributes: ["mcp.server": name, "mcp.method.name": method],
                                         failed: { $0.errorBytes != nil ? "upstream answered with a JSON-RPC error" : nil }) {
            try await peer.request(method: method, params: params, timeout: timeout, progress: progress)
        }
    }

    // MARK: lifecycle

    public func snapshot() -> ServerSnapshot {
        let l = live.withLockedValue { $0 }
        return ServerSnapshot(name: name, enabled: config.enabled, state: l.state,
                              protocolName: config.effectiveProtocol.rawValue, isolation: decision,
                              pid: process?.pid, containerID: containerID, toolCount: l.tools.count,
                              lastError: lastError, restarts: restarts, crashRestarts: crashRestarts,
                              enforcement: plan.map { backend($0).enforcement($0) } ?? [:], warnings: plan?.warnings ?? [],
                              serverInfo: serverInfo, capabilities: capabilities)
    }

    /// The launch plan of the last start (stdio servers).
    public func currentPlan() -> LaunchPlan? { plan }

    /// Where this server's resource use can be read while it runs (its backend decides).
    public func resources() async -> ResourceSource {
        guard let plan, state == .ready || state == .unresponsive else { return .unknown }
        return await backend(plan).resources(plan, handle: containerID, pid: process?.pid)
    }

    private func setState(_ s: ServerState) {
        let changed = live.withLockedValue { l -> Bool in
            defer {
                l.state = s
                if s != .starting { l.firstStartOver = true }
            }
            return l.state != s
        }
        if changed { onEvent(.stateChanged(name, s)) }
    }

    /// The server's lifetime: runs its background work until `close()`. The supervisor runs
    /// it as a child task (ServerManager), so nothing the server started outlives the proxy.
    public nonisolated func run() async { await jobs.run() }

    /// Ends `run()` (work still running is cancelled). Call after `stop()`, when the server
    /// object is dropped.
    public nonisolated func close() { jobs.close() }

    /// Whether `gen` is the running generation (not retired, not stopping).
    private func isCurrent(_ gen: Int) -> Bool { gen == generation && !stopping }

    /// Runs `body` after every lifecycle operation queued before it, and waits for it. The actor
    /// alone does not serialize them: each operation awaits (a stop ladder takes seconds), and
    /// another one entering at that await would launch a second child or lose a state change.
    /// The operation runs as one of the server's jobs, so a caller that stops waiting (a
    /// cancelled request) does not cancel a stop ladder half-way; once the server is closed,
    /// the caller's own task runs it.
    private func serialized(_ body: @escaping @Sendable (UpstreamServer) async -> Void) async {
        let previous = opTail
        let mine = Baton()
        opTail = mine
        let op: @Sendable () async -> Void = {
            await previous?.wait()
            await body(self)
            mine.signal()
        }
        let done = Baton()
        if jobs.spawn({ await op(); done.signal() }) { await done.wait() } else { await op() }
    }

    /// Starts the server (no-op when disabled).
    public func start() async {
        await serialized { await $0.doStart() }
    }

    private func doStart() {
        guard config.enabled else { setState(.disabled); return }
        // Already running or on its way (or a restart is scheduled): a second start must not
        // launch a second child. Before the first launch the generation is 0.
        guard generation == 0 || [.stopped, .disabled, .failed].contains(state) else { return }
        stopping = false
        launch()
    }

    private func launch() {
        generation += 1
        let gen = generation
        setState(.starting)
        jobs.spawn { await self.runLaunch(gen) }
    }

    /// Retires the current generation before tearing it down: every callback of the old child
    /// (its exit, stdout EOF, a late reply) carries the old generation and is ignored, so the
    /// proxy's own kill is never reported as the failure.
    private func retire() {
        generation += 1
    }

    private func runLaunch(_ gen: Int) async {
        // Bounded parallel starts: wait for a slot, give it back when ready or failed.
        await env.startLimiter.acquire()
        var slot = true
        defer { if slot { env.startLimiter.release() } }
        guard gen == generation, !stopping else { return }
        do {
            try await connect(gen)
            env.startLimiter.release()
            slot = false
            guard gen == generation, !stopping else { return }
            // Recovered: the error shown is the current one, not history (restarts counts those).
            lastError = nil
            readySince = Date()
            if consoleShowedFailure {
                consoleShowedFailure = false
                console.info("ready again (\(tools.count) tools)")
            }
            setState(.ready)
            log.info("server ready", metadata: ["tools": "\(tools.count)", "isolation": "\(decision.mode.rawValue)"])
            onEvent(.toolsChanged(name))
            startHealthPings(gen)
        } catch {
            env.startLimiter.release()
            slot = false
            guard gen == generation, !stopping else { return }
            let e = error as? ProxyError ?? ProxyError(.upstreamFailed, "\(error)")
            var message = e.description
            // A child that exits at once makes the first write fail ("I/O on closed channel")
            // before its exit is seen; its exit status and stderr are the cause worth showing.
            if e.code == .upstreamFailed, let proc = process, let status = await proc.waitExit(seconds: 1) {
                guard gen == generation, !stopping else { return }
                message = "upstream server \"\(name)\" exited (\(status))"
                if let last = stderrTail.last, status.code != 0 { message += "; last stderr: \(last.prefix(200))" }
            }
            if let p = plan, let d = await backend(p).diagnose(p, handle: containerID, exitStatus: -1, stderrTail: stderrTail) {
                message += "; \(d)"
            }
            let cause = message
            await serialized { await $0.startFailed(gen, e.code, cause) }
        }
    }

    private func startFailed(_ gen: Int, _ code: ProxyError.Code, _ message: String) async {
        guard gen == generation, !stopping else { return }
        // The first cause is kept: the exit of the child torn down below is not reported.
        lastError = message
        log.error("server failed to start: \(message)")
        let permanent = [ProxyError.Code.refused, .invalidConfig, .unsupported].contains(code)
        if permanent {
            console.error("failed to start: \(message) (not retried: fix the config; details: \(env.logs.server(name).path))")
            consoleShowedFailure = true
        } else {
            showFailure("failed to start: \(message)")
        }
        retire()
        await teardown()
        if permanent { setState(.failed) } else { scheduleRestart(afterFailedStart: true) }
    }

    private func connect(_ gen: Int) async throws {
        var ctx = env.launchContext()
        // Which env values are secrets (docker mode delivers those through a file).
        ctx.secretEnvNames = SecretResolver.secretEnvironmentNames(of: config)
        ctx.workspace = workspace
        let loop = env.group.next()
        let peer = JSONRPCPeer(serverName: name, eventLoop: loop)
        // One task per burst of list_changed, not one per notification (a flood of 20,000 would
        // otherwise queue 20,000 tasks on this actor).
        let relistScheduled = NIOLockedValueBox(false)
        let serverName = routingKey
        let report = onEvent
        peer.onNotification = { [weak self] method, message in
            guard let self else { return }
            switch method {
            case "notifications/tools/list_changed":
                if relistScheduled.withLockedValue({ was in defer { was = true }; return was }) { return }
                self.jobs.spawn { await self.toolsListChanged(gen, relistScheduled) }
            case "notifications/message", "notifications/resources/list_changed", "notifications/prompts/list_changed",
                 "notifications/resources/updated":
                report(.notification(serverName, method: method, message))
            default:
                break
            }
        }
        // Requests to clients go to the gateway, which refuses what the server was not granted.
        let router = env.serverRequests
        peer.onRequest = { message in await router.route(server: serverName, message) }
        let unresponsiveAfter = proxyConfig.supervision.unresponsiveAfter
        peer.onTimeoutStreak = { [weak self] streak, why in
            guard let self else { return }
            guard streak == 0 || streak >= unresponsiveAfter else { return }
            self.jobs.spawn { await self.timeoutStreakChanged(gen, streak, why) }
        }
        let startupTimeout = config.startupTimeout ?? env.backends.backend(for: decision.mode).startupTimeout(proxyConfig)
        // `${secret:NAME}` values enter here only, for the launcher/transport; `config` (logs,
        // REST, identity) keeps the references.
        let resolved = try SecretResolver.resolve(config, config: proxyConfig, workspace: workspace)
        switch config.effectiveProtocol {
        case .stdio, .auto:
            let planned = try Launcher.plan(server: resolved, config: proxyConfig, context: ctx, backends: env.backends)
            let backend = self.backend(planned)
            self.plan = planned
            self.decision = planned.decision
            log.info("isolation: \(planned.decision.mode.rawValue) (\(planned.decision.reason))")
            for w in planned.warnings { log.warning("\(w)") }
            log.info("\(backend.launchLogLine(planned))")
            let logger = log
            // Files, images, the engine CLI's path: before the startup timer.
            var plan = try await backend.prepare(planned, log: { logger.info("\($0)") })
            self.plan = plan
            if var egress = plan.egress {
                // The way out: this launch's own listener on the gateway's address of its network.
                guard let proxy = env.egress, let gateway = egress.gateway else {
                    throw ProxyError(.unavailable, "server \"\(name)\": egress is set but the egress proxy is not running in this process")
                }
                let key = "\(name)/\(ctx.launchID)"
                egressKey = key
                let port = try await proxy.open(key: key, server: name, policy: egress.policy, host: gateway)
                let url = "http://\(gateway):\(port)"
                egress.proxyURL = url
                let fenced = egress
                egress.fence = await Blocking.run { EgressFence.install(fenced, port: port) }
                plan.egress = egress
                plan.environment.merge(egress.environment(proxyURL: url)) { _, new in new }
                plan.enforcement["egress_proxy"] = url
                plan.enforcement["proxy_port"] = egress.fence
                log.info("egress: proxy \(url); \(egress.fence ?? "")")
                self.plan = plan
            }
            let logFile = env.logs.server(name)
            let limit = env.maxMessageBytes
            let proc = try await StdioProcess.launch(
                plan: plan, group: env.group, maxMessageBytes: env.maxMessageBytes,
                onLine: { peer.deliver($0) },
                onStderr: { [weak self] line in
                    logFile.write("\(FileLogHandler.timestamp()) STDERR \(line)")
                    guard let self else { return }
                    self.jobs.spawn { await self.noteStderr(line) }
                },
                onStdoutClosed: { [weak self] error in
                    guard let self else { return }
                    let why: String
                    if error is LineTooLong {
                        why = "sent a message longer than the \(limit)-byte limit (\(limit >> 20) MiB); the stream cannot be resynchronized"
                    } else if let error {
                        why = "broke its stdout stream (\(error))"
                    } else {
                        why = "closed its stdout"
                    }
                    if error != nil {
                        // The stream cannot be resynchronized: calls in flight can never be
                        // answered, fail them now. (A plain EOF is usually a crash: its exit status,
                        // reported within a second, is the better message.)
                        self.stdoutFault.withLockedValue { $0 = (gen, why) }
                        peer.fail(ProxyError(.upstreamFailed, "upstream server \"\(self.name)\" \(why)"))
                    }
                    self.jobs.spawn { await self.stdoutClosed(gen, why) }
                })
            guard gen == generation, !stopping else {
                // Stopped or restarted while spawning: this child belongs to nobody.
                await proc.terminate(grace: env.stopGrace)
                throw CancellationError()
            }
            process = proc
            peer.transport = proc
            proc.exitFuture.whenSuccess { status in
                self.jobs.spawn { await self.processExited(gen, status) }
            }
            let launched = plan
            jobs.spawn {
                let id = await backend.started(launched, timeout: startupTimeout)
                await self.setContainerID(gen, id)
            }
        case .http:
            guard let url = resolved.url else { throw ProxyError(.invalidConfig, "server \"\(name)\" has no url") }
            let serverName = name
            let t = StreamableHTTPTransport(client: env.httpClient, url: url, displayURL: config.url, headers: resolved.headers,
                                            maxMessageBytes: env.maxMessageBytes, traces: env.traces, deliver: { peer.deliver($0) },
                                            onUnanswered: { id in
                                                peer.abandon(id: id, error: ProxyError(.upstreamFailed, "upstream server \"\(serverName)\" closed its reply stream without answering (the server may have stopped)"))
                                            })
            transport = t
            peer.transport = t
            log.info("connecting (streamable HTTP): \(URLRedaction.redact(config.url ?? ""))")
        case .sse:
            guard let url = resolved.url else { throw ProxyError(.invalidConfig, "server \"\(name)\" has no url") }
            let t = SSETransport(client: env.httpClient, url: url, displayURL: config.url, headers: resolved.headers, traces: env.traces, deliver: { peer.deliver($0) },
                                 onClosed: { [weak self] why in
                                     guard let self else { return }
                                     self.jobs.spawn { await self.transportClosed(gen, why) }
                                 })
            transport = t
            peer.transport = t
            log.info("connecting (SSE): \(URLRedaction.redact(config.url ?? ""))")
            try await t.connect(timeout: startupTimeout)
        }
        guard gen == generation, !stopping else { throw CancellationError() }
        live.withLockedValue { $0.peer = peer }

        let deadline = Date().addingTimeInterval(startupTimeout)
        // Only the client features this server was granted (`allow_client_requests`) are declared.
        var caps: [String: JSONValue] = [:]
        for k in config.clientRequests { caps[k.rawValue] = k == .roots ? ["listChanged": false] : .object([:]) }
        let initParams = #"{"protocolVersion":"2025-06-18","capabilities":"# + JSONValue.object(caps).serialized()
            + #","clientInfo":{"name":"mcpproxy","version":"\#(ProxyVersion.current)"}}"#
        let initReply: RawMessage
        do {
            initReply = try await peer.request(method: "initialize", params: Array(initParams.utf8), timeout: startupTimeout)
        } catch let e as ProxyError where e.code == .timeout {
            throw ProxyError(.timeout, "server \"\(name)\" did not complete initialize within \(JSONRPCPeer.format(startupTimeout))\(stderrTail.isEmpty ? "" : "; last stderr: \(stderrTail.suffix(3).joined(separator: " | "))")")
        }
        // The server is up: a secret file its launcher read is no longer needed.
        if let plan { backend(plan).initialized(plan) }
        if let err = initReply.rpcError { throw ProxyError(.upstreamFailed, "server \"\(name)\" rejected initialize: \(err)", detail: nil, cause: err) }
        let result = initReply.resultValue()
        serverInfo = result?["serverInfo"]
        capabilities = result?["capabilities"]
        if let v = result?["protocolVersion"]?.stringValue, let h = transport as? StreamableHTTPTransport {
            h.setProtocolVersion(v)
        }
        guard gen == generation else { throw CancellationError() }
        try await peer.notify(method: "notifications/initialized")
        if let h = transport as? StreamableHTTPTransport { h.openNotificationStream() }
        let remaining = max(1, deadline.timeIntervalSinceNow)
        let list = try await listTools(peer: peer, timeout: remaining)
        guard gen == generation else { throw CancellationError() }
        live.withLockedValue { $0.tools = list }
    }

    private func setContainerID(_ gen: Int, _ id: String?) {
        guard gen == generation else { return }
        containerID = id
        if let id { log.info("container id \(id)") }
    }

    private func noteStderr(_ line: String) {
        stderrTail.append(line)
        if stderrTail.count > 20 { stderrTail.removeFirst(stderrTail.count - 20) }
    }

    private func listTools(peer: JSONRPCPeer, timeout: Double) async throws -> [ToolDefinition] {
        var tools: [ToolDefinition] = []
        var cursor: String? = nil
        for _ in 0..<1000 {
            let params = cursor.map { Array("{\"cursor\":\(JSONValue.quoted($0))}".utf8) } ?? Array("{}".utf8)
            let reply = try await peer.request(method: "tools/list", params: params, timeout: timeout)
            if let err = reply.rpcError {
                if err.isMethodNotFound { return [] }  // no tools capability
                throw ProxyError(.upstreamFailed, "server \"\(name)\" failed tools/list: \(err)", detail: nil, cause: err)
            }
            guard let result = reply.resultValue() else { throw ProxyError(.upstreamFailed, "server \"\(name)\" sent an unreadable tools/list result") }
            // Each tool's exact bytes are kept beside its parsed form (direct mode lists them).
            let rawTools: [[UInt8]] = reply.bytes.withUnsafeBufferPointer { p in
                guard let r = reply.envelope.result, let m = JSONSpan.members(p, r),
                      let tr = m.first(where: { $0.key == "tools" })?.value,
                      let items = JSONSpan.elements(p, tr) else { return [] }
                return items.map { Array(p[$0]) }
            }
            let parsed = result["tools"]?.arrayValue ?? []
            for (i, t) in parsed.enumerated() {
                guard var d = ToolDefinition(json: t) else { continue }
                if rawTools.count == parsed.count { d.rawBytes = rawTools[i] }
                tools.append(d)
            }
            guard let next = result["nextCursor"]?.stringValue, !next.isEmpty, next != cursor else { break }
            cursor = next
        }
        return tools
    }

    /// A list_changed notification: re-list, with at most one re-list running and one pending
    /// (a flood of notifications costs two re-lists, not one per notification).
    private func toolsListChanged(_ gen: Int, _ scheduled: NIOLockedValueBox<Bool>) async {
        // Let the burst finish: one re-list answers all of it (at most ~10 re-lists a second).
        try? await Task.sleep(nanoseconds: 100_000_000)
        scheduled.withLockedValue { $0 = false }
        guard gen == generation else { return }
        if refreshRunning { refreshPending = true; return }
        refreshRunning = true
        defer { refreshRunning = false }
        repeat {
            refreshPending = false
            await refreshTools(gen)
        } while refreshPending && gen == generation
    }

    private func refreshTools(_ gen: Int) async {
        guard gen == generation, state == .ready || state == .unresponsive, let peer = live.withLockedValue({ $0.peer }) else { return }
        do {
            let list = try await listTools(peer: peer, timeout: 30)
            guard gen == generation else { return }
            live.withLockedValue { $0.tools = list }
            log.info("tools changed: \(list.count) tools")
            onEvent(.toolsChanged(name))
        } catch {
            log.warning("re-listing tools after list_changed failed: \(error)")
        }
    }

    /// Calls in a row timed out with the process alive (`unresponsive`), or an answer ended the run.
    private func timeoutStreakChanged(_ gen: Int, _ streak: Int, _ why: String?) {
        guard gen == generation, !stopping else { return }
        if streak == 0 {
            guard state == .unresponsive else { return }
            lastError = nil
            log.info("server answers again")
            setState(.ready)
        } else if state == .ready {
            let message = "\(streak) requests in a row timed out while the process is alive (last: \(why ?? "?"))"
            lastError = message
            log.warning("server unresponsive: \(message)")
            setState(.unresponsive)
        }
    }

    /// Stdout ended (EOF), broke, or carried an over-long line while the process may still run.
    /// A process that exits right after is reported by its exit; one that stays is wedged.
    private func stdoutClosed(_ gen: Int, _ why: String) async {
        guard gen == generation, !stopping, let proc = process else { return }
        if await proc.waitExit(seconds: 1) != nil { return }  // processExited reports it
        await failAndRestart(gen, "upstream server \"\(name)\" \(why) (pid \(proc.pid) still running); restarting it")
    }

    private func processExited(_ gen: Int, _ status: ExitStatus) async {
        guard gen == generation else { return }
        if stopping { return }
        var message = "upstream server \"\(name)\" exited (\(status))"
        if let fault = stdoutFault.withLockedValue({ $0 }), fault.gen == gen {
            // The stream fault came first; the exit (often SIGPIPE once the proxy closed the pipe) followed.
            message = "upstream server \"\(name)\" \(fault.why), then exited (\(status))"
        }
        if let p = plan,
           let d = await backend(p).diagnose(p, handle: containerID, exitStatus: status.shellStatus, stderrTail: stderrTail) {
            message += ": \(d)"
        } else if let last = stderrTail.last, status.code != 0 {
            message += "; last stderr: \(last.prefix(200))"
        }
        guard gen == generation, !stopping else { return }
        await failAndRestart(gen, message)
    }

    /// The one path for an upstream that died, hung or disconnected: fail what is in flight with
    /// `message`, tear down, and restart with backoff. Only the first report of a generation acts
    /// (exit, EOF and a failed ping may all report one death): one failure, one restart.
    private func failAndRestart(_ gen: Int, _ message: String) async {
        // Fail calls in flight now, without waiting for lifecycle operations queued before this.
        if gen == generation, !stopping { live.withLockedValue { $0.peer?.fail(ProxyError(.upstreamFailed, message)) } }
        await serialized { await $0.doFailAndRestart(gen, message) }
    }

    private func doFailAndRestart(_ gen: Int, _ message: String) async {
        guard gen == generation, !stopping else { return }
        let wasStarting = state == .starting
        log.error("\(message)")
        showFailure(message)
        lastError = message
        live.withLockedValue { $0.peer?.fail(ProxyError(.upstreamFailed, message)) }
        retire()
        await teardown()
        scheduleRestart(afterFailedStart: wasStarting)
    }

    private func transportClosed(_ gen: Int, _ why: String) async {
        guard gen == generation, !stopping, [.ready, .unresponsive, .starting].contains(state) else { return }
        await failAndRestart(gen, "upstream server \"\(name)\" disconnected: \(why)")
    }

    /// Pings a ready server periodically; a server that stops answering is restarted like one
    /// that crashed (a hung process holds calls forever otherwise).
    /// A missed ping counts only while no call is in flight: a server busy with a long call
    /// (a single-threaded one blocks its loop) and whose pipe is open is busy, not dead. Its
    /// calls end by answer or by their own timeout; a pipe that closes is reported at once.
    /// The loop belongs to generation `gen`: it ends at its next wake-up once that generation is
    /// retired (stopped, restarted), and at once when the server is closed.
    private func startHealthPings(_ gen: Int) {
        let interval = proxyConfig.supervision.pingInterval
        let allowed = proxyConfig.supervision.pingMisses
        jobs.spawn {
            var failures = 0
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                guard !Task.isCancelled, await self.isCurrent(gen), let peer = self.live.withLockedValue({ $0.peer }) else { return }
                do {
                    _ = try await peer.request(method: "ping", params: nil, timeout: min(10, max(interval, 1)))
                    failures = 0
                } catch {
                    if peer.callsInFlight > 0 { failures = 0; continue }  // busy, not dead
                    failures += 1
                    if failures >= allowed {
                        await self.missedPings(gen, failures, "\(error)")
                        return
                    }
                }
            }
        }
    }

    private func missedPings(_ gen: Int, _ count: Int, _ why: String) async {
        await failAndRestart(gen, "upstream server \"\(name)\" missed \(count) pings in a row with no call in flight (\(why)); restarting it")
    }

    /// Backoff 1, 2, 4 … 60 s. A server that fails to start `max_failed_starts` times in a row
    /// ends `failed` (with the cause in last_error) until its config changes or a person restarts it.
    private func scheduleRestart(afterFailedStart: Bool) {
        if let since = readySince, Date().timeIntervalSince(since) >= 60 { consecutiveFailures = 0 }
        readySince = nil
        consecutiveFailures += 1
        if afterFailedStart {
            failedStarts += 1
            if failedStarts >= proxyConfig.supervision.maxFailedStarts {
                let why = "gave up after \(failedStarts) failed starts in a row; fix the config or restart it (last error: \(lastError ?? "unknown"))"
                log.error("\(why)")
                console.error("\(why). After fixing it: `mcpproxy upstream enable \(name)` re-reads the config, or POST /api/v1/servers/\(name)/restart")
                consoleShowedFailure = true
                lastError = why
                setState(.failed)
                return
            }
        } else {
            failedStarts = 0
        }
        let delay = min(60, pow(2, Double(consecutiveFailures - 1)))
        setState(.restarting)
        log.info("restarting in \(JSONRPCPeer.format(delay)) (attempt \(consecutiveFailures))")
        let gen = generation
        // A stop meanwhile retires `gen`, and the restart is then nothing (restartAfterBackoff).
        jobs.spawn {
            try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
            guard !Task.isCancelled else { return }
            await self.serialized { await $0.restartAfterBackoff(gen) }
        }
    }

    private func restartAfterBackoff(_ gen: Int) {
        guard gen == generation, !stopping, config.enabled, state == .restarting else { return }
        restarts += 1
        crashRestarts += 1
        launch()
    }

    /// Tears down the current process/transport: the process's stop ladder and, at the same
    /// time, the backend's own stop (a container's), then the backend's clean-up.
    private func teardown() async {
        let peer = live.withLockedValue { l -> JSONRPCPeer? in
            defer { l.peer = nil; l.tools = [] }
            return l.peer
        }
        peer?.fail(ProxyError(.unavailable, "upstream server \"\(name)\" is stopping"))
        if let p = process {
            process = nil
            if let plan {
                async let status = p.terminate(grace: env.stopGrace)
                await backend(plan).stop(plan, handle: containerID, grace: env.stopGrace)
                _ = await status
            } else {
                await p.terminate(grace: env.stopGrace)
            }
        }
        if let t = transport { transport = nil; await t.close() }
        if let key = egressKey {
            egressKey = nil
            await env.egress?.close(key: key)
        }
        if let plan {
            for warning in await backend(plan).cleanUp(plan) { log.warning("\(warning)") }
        }
        containerID = nil
    }

    /// Stops the server; `disabled` sets the state shown afterwards.
    public func stop(disabled: Bool = false) async {
        await serialized { await $0.doStop(disabled: disabled) }
    }

    private func doStop(disabled: Bool) async {
        stopping = true  // marked before teardown begins: the exit that follows is not a failure
        retire()
        await teardown()
        setState(disabled ? .disabled : .stopped)
        onEvent(.toolsChanged(name))
    }

    /// Restarts now (resets the backoff and the failed-start count).
    public func restart() async {
        await serialized { await $0.doRestart() }
    }

    private func doRestart() async {
        await doStop(disabled: false)
        consecutiveFailures = 0
        failedStarts = 0
        restarts += 1
        stopping = false
        if config.enabled { launch() } else { setState(.disabled) }
    }

    /// Applies a new config; restarts only when something that matters changed (and retries a
    /// `failed` server whatever changed).
    public func update(config newConfig: ServerConfig, proxyConfig newProxy: ProxyConfig) async {
        await serialized { await $0.doUpdate(config: newConfig, proxyConfig: newProxy) }
    }

    private func doUpdate(config newConfig: ServerConfig, proxyConfig newProxy: ProxyConfig) async {
        let oldDecision = IsolationResolver.resolve(config, global: proxyConfig.dockerIsolation)
        let newDecision = IsolationResolver.resolve(newConfig, global: newProxy.dockerIsolation)
        var relevantOld = config, relevantNew = newConfig
        relevantOld.quarantined = nil; relevantNew.quarantined = nil
        relevantOld.monitor = nil; relevantNew.monitor = nil  // the monitor watches; the process is the same
        let isolationChanged = oldDecision != newDecision
            || env.backends.backend(for: newDecision.mode).settingsChanged(from: proxyConfig, to: newProxy)
        let changed = relevantOld != relevantNew || isolationChanged || proxyConfig.supervision != newProxy.supervision
        config = newConfig
        proxyConfig = newProxy
        decision = newDecision
        let idle = state == .disabled || state == .stopped || state == .failed
        guard changed || (newConfig.enabled && idle) else { return }
        if !newConfig.enabled { await doStop(disabled: true); return }
        log.info(idle ? "configuration changed; starting" : "configuration changed; restarting")
        await doStop(disabled: false)
        stopping = false
        consecutiveFailures = 0
        failedStarts = 0
        launch()
    }

    /// Sets enabled and starts/stops accordingly.
    public func setEnabled(_ enabled: Bool) async {
        await serialized { await $0.doSetEnabled(enabled) }
    }

    private func doSetEnabled(_ enabled: Bool) async {
        config.enabled = enabled
        if enabled {
            if state == .disabled || state == .stopped || state == .failed {
                stopping = false; consecutiveFailures = 0; failedStarts = 0; launch()
            }
        } else { await doStop(disabled: true) }
    }

    /// The backend that planned `plan`.
    private func backend(_ plan: LaunchPlan) -> any IsolationBackend {
        env.backends.backend(for: plan.decision.mode)
    }
}

/// The proxy's version string.
public enum ProxyVersion {
    public static let current = "0.1.0"
}
