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
    case disabled, starting, ready, restarting, failed, stopped
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
    public var enforcement: [String: String]
    public var warnings: [String]
    public var serverInfo: JSONValue?
    /// The capabilities the server declared in its initialize result.
    public var capabilities: JSONValue? = nil
}

/// Events an upstream reports to whoever manages it.
public enum UpstreamEvent: Sendable {
    case toolsChanged(String)
    case stateChanged(String, ServerState)
}

/// Docker container hooks around a stdio launch (implemented by the Isolation layer's
/// container lifecycle; a no-op for other modes).
public protocol ContainerHooks: Sendable {
    func prepare(_ plan: LaunchPlan, log: @escaping @Sendable (String) -> Void) async throws
    func containerID(_ plan: LaunchPlan, timeout: Double) async -> String?
    func stop(_ plan: LaunchPlan, containerID: String?, grace: Double) async
    func diagnose(_ plan: LaunchPlan, containerID: String?, exitStatus: Int32, stderrTail: [String]) async -> String?
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
    public var containerHooks: ContainerHooks
    /// Grace period of each step of the stop ladder, seconds.
    public var stopGrace: Double

    public init(group: EventLoopGroup, httpClient: HTTPClient, launchContext: @escaping @Sendable () -> LaunchContext,
                logs: LogFiles, logger: Logger, logLevel: Logger.Level, maxMessageBytes: Int,
                containerHooks: ContainerHooks, stopGrace: Double = 3) {
        self.group = group
        self.httpClient = httpClient
        self.launchContext = launchContext
        self.logs = logs
        self.logger = logger
        self.logLevel = logLevel
        self.maxMessageBytes = maxMessageBytes
        self.containerHooks = containerHooks
        self.stopGrace = stopGrace
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

    /// What the hot path reads without hopping onto the actor.
    private struct Live {
        var peer: JSONRPCPeer?
        var tools: [ToolDefinition] = []
        var state: ServerState = .stopped
    }
    private nonisolated let live = NIOLockedValueBox(Live())

    private var generation = 0
    private var process: StdioProcess?
    private var transport: UpstreamTransport?
    private var plan: LaunchPlan?
    private var containerID: String?
    private var decision: IsolationDecision
    private var restarts = 0
    private var consecutiveFailures = 0
    private var readySince: Date?
    private var lastError: String?
    private var stderrTail: [String] = []
    private var serverInfo: JSONValue?
    private var capabilities: JSONValue?
    private var launchTask: Task<Void, Never>?
    private var restartTask: Task<Void, Never>?
    private var healthTask: Task<Void, Never>?
    /// Seconds between health pings of a ready server, and how many may fail in a row.
    private let pingInterval: Double = 30
    private let pingFailuresAllowed = 3
    private var stopping = false

    public init(config: ServerConfig, proxyConfig: ProxyConfig, environment: UpstreamEnvironment,
                onEvent: @escaping @Sendable (UpstreamEvent) -> Void) {
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
    }

    // MARK: hot path

    /// The current tools (empty unless ready).
    public nonisolated var tools: [ToolDefinition] { live.withLockedValue { $0.tools } }
    public nonisolated var state: ServerState { live.withLockedValue { $0.state } }

    /// Sends a request to the server; fails fast when it is not ready.
    public nonisolated func request(method: String, params: [UInt8]?, timeout: Double) async throws -> RawMessage {
        let (peer, state) = live.withLockedValue { ($0.peer, $0.state) }
        guard let peer, state == .ready else {
            throw ProxyError(.unavailable, "upstream server \"\(name)\" is \(state.rawValue)\(state == .restarting || state == .starting ? "; try again shortly" : "")")
        }
        return try await peer.request(method: method, params: params, timeout: timeout)
    }

    // MARK: lifecycle

    public func snapshot() -> ServerSnapshot {
        let l = live.withLockedValue { $0 }
        return ServerSnapshot(name: name, enabled: config.enabled, state: l.state,
                              protocolName: config.effectiveProtocol.rawValue, isolation: decision,
                              pid: process?.pid, containerID: containerID, toolCount: l.tools.count,
                              lastError: lastError, restarts: restarts,
                              enforcement: plan?.enforcement ?? [:], warnings: plan?.warnings ?? [],
                              serverInfo: serverInfo, capabilities: capabilities)
    }

    /// The launch plan of the last start (stdio servers).
    public func currentPlan() -> LaunchPlan? { plan }

    private func setState(_ s: ServerState) {
        let changed = live.withLockedValue { l -> Bool in
            defer { l.state = s }
            return l.state != s
        }
        if changed { onEvent(.stateChanged(name, s)) }
    }

    /// Starts the server (no-op when disabled).
    public func start() {
        guard config.enabled else { setState(.disabled); return }
        stopping = false
        launch()
    }

    private func launch() {
        generation += 1
        let gen = generation
        setState(.starting)
        launchTask = Task { await self.runLaunch(gen) }
    }

    private func runLaunch(_ gen: Int) async {
        do {
            try await connect(gen)
            guard gen == generation, !stopping else { return }
            // lastError is kept after a recovery: with `restarts` it shows a crash loop.
            readySince = Date()
            setState(.ready)
            log.info("server ready", metadata: ["tools": "\(tools.count)", "isolation": "\(decision.mode.rawValue)"])
            onEvent(.toolsChanged(name))
            startHealthPings(gen)
        } catch {
            guard gen == generation, !stopping else { return }
            let e = error as? ProxyError ?? ProxyError(.upstreamFailed, "\(error)")
            var message = e.description
            if let p = plan, p.mode == .docker, let d = await env.containerHooks.diagnose(p, containerID: containerID, exitStatus: -1, stderrTail: stderrTail) {
                message += "; \(d)"
            }
            lastError = message
            log.error("server failed to start: \(message)")
            await teardown()
            let permanent = [ProxyError.Code.refused, .invalidConfig, .unsupported].contains(e.code)
            if permanent { setState(.failed) } else { scheduleRestart() }
        }
    }

    private func connect(_ gen: Int) async throws {
        let ctx = env.launchContext()
        let loop = env.group.next()
        let peer = JSONRPCPeer(serverName: name, eventLoop: loop)
        peer.onNotification = { [weak self] method, _ in
            guard let self else { return }
            if method == "notifications/tools/list_changed" {
                Task { await self.refreshTools(gen) }
            }
        }
        let startupTimeout = config.startupTimeout ?? (decision.mode == .docker ? proxyConfig.dockerIsolation.timeout : 30)
        switch config.effectiveProtocol {
        case .stdio, .auto:
            let plan = try Launcher.plan(server: config, config: proxyConfig, context: ctx)
            self.plan = plan
            self.decision = plan.decision
            log.info("isolation: \(plan.decision.mode.rawValue) (\(plan.decision.reason))")
            for w in plan.warnings { log.warning("\(w)") }
            if plan.mode == .docker {
                log.info("docker_run_args: \(Self.jsonArray(Array(plan.redactedCommandLine.dropFirst())))")
                let logger = log
                try await env.containerHooks.prepare(plan, log: { logger.info("\($0)") })
            } else {
                log.info("launching: \(Self.jsonArray(plan.redactedCommandLine))")
            }
            if plan.mode != .docker {  // docker's prepare() writes them (O_CREAT with the mode)
                for f in plan.files { try PlannedFileWriter.write(f) }
            }
            let logFile = env.logs.server(name)
            let proc = try await StdioProcess.launch(
                plan: plan, group: env.group, maxMessageBytes: env.maxMessageBytes,
                onLine: { peer.deliver($0) },
                onStderr: { [weak self] line in
                    logFile.write("\(FileLogHandler.timestamp()) STDERR \(line)")
                    guard let self else { return }
                    Task { await self.noteStderr(line) }
                },
                onStdoutClosed: { _ in })
            process = proc
            peer.transport = proc
            proc.exitFuture.whenSuccess { status in
                Task { await self.processExited(gen, status) }
            }
            if plan.mode == .docker {
                let hooks = env.containerHooks
                Task {
                    let id = await hooks.containerID(plan, timeout: startupTimeout)
                    await self.setContainerID(gen, id)
                }
            }
        case .http:
            guard let url = config.url else { throw ProxyError(.invalidConfig, "server \"\(name)\" has no url") }
            let serverName = name
            let t = StreamableHTTPTransport(client: env.httpClient, url: url, headers: config.headers,
                                            maxMessageBytes: env.maxMessageBytes, deliver: { peer.deliver($0) },
                                            onUnanswered: { id in
                                                peer.abandon(id: id, error: ProxyError(.upstreamFailed, "upstream server \"\(serverName)\" closed its reply stream without answering (the server may have stopped)"))
                                            })
            transport = t
            peer.transport = t
            log.info("connecting (streamable HTTP): \(URLRedaction.redact(url))")
        case .sse:
            guard let url = config.url else { throw ProxyError(.invalidConfig, "server \"\(name)\" has no url") }
            let t = SSETransport(client: env.httpClient, url: url, headers: config.headers, deliver: { peer.deliver($0) },
                                 onClosed: { [weak self] why in
                                     guard let self else { return }
                                     Task { await self.transportClosed(gen, why) }
                                 })
            transport = t
            peer.transport = t
            log.info("connecting (SSE): \(URLRedaction.redact(url))")
            try await t.connect(timeout: startupTimeout)
        }
        live.withLockedValue { $0.peer = peer }

        let deadline = Date().addingTimeInterval(startupTimeout)
        let initParams = #"{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcpproxy","version":"\#(ProxyVersion.current)"}}"#
        let initReply: RawMessage
        do {
            initReply = try await peer.request(method: "initialize", params: Array(initParams.utf8), timeout: startupTimeout)
        } catch let e as ProxyError where e.code == .timeout {
            throw ProxyError(.timeout, "server \"\(name)\" did not complete initialize within \(JSONRPCPeer.format(startupTimeout))\(stderrTail.isEmpty ? "" : "; last stderr: \(stderrTail.suffix(3).joined(separator: " | "))")")
        }
        if let err = initReply.errorSummary() { throw ProxyError(.upstreamFailed, "server \"\(name)\" rejected initialize: \(err)") }
        let result = initReply.resultValue()
        serverInfo = result?["serverInfo"]
        capabilities = result?["capabilities"]
        if let v = result?["protocolVersion"]?.stringValue, let h = transport as? StreamableHTTPTransport {
            h.setProtocolVersion(v)
        }
        try await peer.notify(method: "notifications/initialized")
        if let h = transport as? StreamableHTTPTransport { h.openNotificationStream() }
        let remaining = max(1, deadline.timeIntervalSinceNow)
        let list = try await listTools(peer: peer, timeout: remaining)
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
            if let err = reply.errorSummary() {
                if reply.envelope.error != nil, err.contains("-32601") { return [] }  // no tools capability
                throw ProxyError(.upstreamFailed, "server \"\(name)\" failed tools/list: \(err)")
            }
            guard let result = reply.resultValue() else { throw ProxyError(.upstreamFailed, "server \"\(name)\" sent an unreadable tools/list result") }
            for t in result["tools"]?.arrayValue ?? [] { if let d = ToolDefinition(json: t) { tools.append(d) } }
            guard let next = result["nextCursor"]?.stringValue, !next.isEmpty, next != cursor else { break }
            cursor = next
        }
        return tools
    }

    private func refreshTools(_ gen: Int) async {
        guard gen == generation, state == .ready, let peer = live.withLockedValue({ $0.peer }) else { return }
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

    private func processExited(_ gen: Int, _ status: ExitStatus) async {
        guard gen == generation else { return }
        if stopping { return }
        var message = "upstream server \"\(name)\" exited (\(status))"
        if let p = plan, p.mode == .docker,
           let d = await env.containerHooks.diagnose(p, containerID: containerID, exitStatus: status.shellStatus, stderrTail: stderrTail) {
            message += ": \(d)"
        } else if let last = stderrTail.last, status.code != 0 {
            message += "; last stderr: \(last.prefix(200))"
        }
        guard gen == generation, !stopping else { return }
        await failAndRestart(message)
    }

    /// The one path for an upstream that died, hung or disconnected: fail what is in flight with
    /// `message`, tear down, and restart with backoff.
    private func failAndRestart(_ message: String) async {
        log.error("\(message)")
        lastError = message
        live.withLockedValue { $0.peer?.fail(ProxyError(.upstreamFailed, message)) }
        await teardown()
        scheduleRestart()
    }

    private func transportClosed(_ gen: Int, _ why: String) async {
        guard gen == generation, !stopping, state == .ready || state == .starting else { return }
        await failAndRestart("upstream server \"\(name)\" disconnected: \(why)")
    }

    /// Pings a ready server periodically; a server that stops answering is restarted like one
    /// that crashed (a hung process holds calls forever otherwise).
    private func startHealthPings(_ gen: Int) {
        healthTask?.cancel()
        let interval = pingInterval
        healthTask = Task {
            var failures = 0
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                guard !Task.isCancelled, let peer = self.live.withLockedValue({ $0.peer }) else { return }
                do {
                    _ = try await peer.request(method: "ping", params: nil, timeout: 10)
                    failures = 0
                } catch {
                    failures += 1
                    if failures >= self.pingFailuresAllowed {
                        await self.unresponsive(gen, "\(error)")
                        return
                    }
                }
            }
        }
    }

    private func unresponsive(_ gen: Int, _ why: String) async {
        guard gen == generation, !stopping else { return }
        await failAndRestart("upstream server \"\(name)\" stopped answering pings (\(why)); restarting it")
    }

    private func scheduleRestart() {
        if let since = readySince, Date().timeIntervalSince(since) >= 60 { consecutiveFailures = 0 }
        readySince = nil
        consecutiveFailures += 1
        let delay = min(60, pow(2, Double(consecutiveFailures - 1)))
        setState(.restarting)
        log.info("restarting in \(JSONRPCPeer.format(delay)) (attempt \(consecutiveFailures))")
        let gen = generation
        restartTask?.cancel()
        restartTask = Task {
            try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
            guard !Task.isCancelled else { return }
            await self.restartAfterBackoff(gen)
        }
    }

    private func restartAfterBackoff(_ gen: Int) {
        guard gen == generation, !stopping, config.enabled else { return }
        restarts += 1
        launch()
    }

    /// Tears down the current process/transport (stop ladder for stdio, docker stop for containers).
    private func teardown() async {
        healthTask?.cancel()
        healthTask = nil
        let peer = live.withLockedValue { l -> JSONRPCPeer? in
            defer { l.peer = nil; l.tools = [] }
            return l.peer
        }
        peer?.fail(ProxyError(.unavailable, "upstream server \"\(name)\" is stopping"))
        if let p = process {
            process = nil
            if let plan, plan.mode == .docker {
                async let status = p.terminate(grace: env.stopGrace)
                await env.containerHooks.stop(plan, containerID: containerID, grace: env.stopGrace)
                _ = await status
            } else {
                await p.terminate(grace: env.stopGrace)
            }
        }
        if let t = transport { transport = nil; await t.close() }
        if let plan { for f in plan.files { try? FileManager.default.removeItem(atPath: f.path) } }
        containerID = nil
    }

    /// Stops the server; `disabled` sets the state shown afterwards.
    public func stop(disabled: Bool = false) async {
        stopping = true
        generation += 1
        restartTask?.cancel()
        launchTask?.cancel()
        await teardown()
        setState(disabled ? .disabled : .stopped)
        onEvent(.toolsChanged(name))
    }

    /// Restarts now (resets the backoff).
    public func restart() async {
        await stop()
        consecutiveFailures = 0
        restarts += 1
        stopping = false
        if config.enabled { launch() } else { setState(.disabled) }
    }

    /// Applies a new config; restarts only when something that matters changed.
    public func update(config newConfig: ServerConfig, proxyConfig newProxy: ProxyConfig) async {
        let oldDecision = IsolationResolver.resolve(config, global: proxyConfig.dockerIsolation)
        let newDecision = IsolationResolver.resolve(newConfig, global: newProxy.dockerIsolation)
        var relevantOld = config, relevantNew = newConfig
        relevantOld.quarantined = nil; relevantNew.quarantined = nil
        let isolationChanged = oldDecision != newDecision
            || (newDecision.mode == .docker && proxyConfig.dockerIsolation != newProxy.dockerIsolation)
            || (newDecision.mode == .sandbox && proxyConfig.sandbox != newProxy.sandbox)
        let changed = relevantOld != relevantNew || isolationChanged
        config = newConfig
        proxyConfig = newProxy
        decision = newDecision
        guard changed else { return }
        if !newConfig.enabled { await stop(disabled: true); return }
        log.info("configuration changed; restarting")
        await stop()
        stopping = false
        consecutiveFailures = 0
        launch()
    }

    /// Sets enabled and starts/stops accordingly.
    public func setEnabled(_ enabled: Bool) async {
        config.enabled = enabled
        if enabled { if state == .disabled || state == .stopped || state == .failed { stopping = false; consecutiveFailures = 0; launch() } }
        else { await stop(disabled: true) }
    }

    static func jsonArray(_ items: [String]) -> String {
        JSONValue.array(items.map { .string($0) }).serialized()
    }
}

/// The proxy's version string.
public enum ProxyVersion {
    public static let current = "0.1.0"
}

/// Writes a plan's files with their mode set at creation (never briefly world-readable).
enum PlannedFileWriter {
    static func write(_ f: PlannedFile) throws {
        unlink(f.path)
        let fd = open(f.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(f.mode))
        guard fd >= 0 else { throw ProxyError(.internalError, "cannot create \(f.path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(f.contents.utf8)
        guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw ProxyError(.internalError, "cannot write \(f.path)")
        }
    }
}
