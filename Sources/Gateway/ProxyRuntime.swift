import AsyncHTTPClient
import CShim
import Foundation
import Hummingbird
import Isolation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import ProxyCore
import MCPSecurity
import ServiceLifecycle
import Upstream
import HummingbirdTLS
import HummingbirdCore

/// Options of `mcpproxy serve`, already merged with flags and environment.
public struct ServeOptions: Sendable {
    public var configPath: String
    public var dataDir: String
    public var listen: String?
    public var logLevel: Logger.Level
    public var stdio: Bool
    /// `--token-file`: the agent token whose scope a `--stdio` client gets (default: full).
    public var tokenFile: String?
    public init(configPath: String, dataDir: String, listen: String?, logLevel: Logger.Level, stdio: Bool, tokenFile: String? = nil) {
        self.configPath = configPath
        self.dataDir = dataDir
        self.listen = listen
        self.logLevel = logLevel
        self.stdio = stdio
        self.tokenFile = tokenFile
    }
}

/// Everything `mcpproxy serve` runs, assembled from options: logs, key, servers, HTTP or stdio.
public final class ProxyRuntime: Sendable {
    public let options: ServeOptions
    public let logs: LogFiles
    public let logger: Logger
    public let instanceID: String
    public let apiKey: String
    public let manager: ServerManager
    public let handler: MCPHandler
    /// The OTLP exporter (nil: tracing off).
    let tracingService: (any Service)?
    public let gateway: HTTPGateway
    public let authenticator: Authenticator
    let httpClient: HTTPClient
    let initialConfig: ProxyConfig
    let listen: String
    let listenAddress: ListenAddress
    /// `metrics_listen`: a loopback listener for `GET /metrics` without a credential.
    let metricsAddress: ListenAddress?
    public let metrics = ProxyMetrics()
    /// The forwarding proxy of servers with an `egress` allowlist (docs/egress.md). The runtime
    /// monitor consumes refused attempts through `egress.denials()`.
    public let egress: EgressProxy

    /// Hooks other layers fill in before `run()`.
    public struct Plugins: Sendable {
        /// The isolation backends by mode (none, sandbox, docker with its engines).
        public var backends: IsolationBackends = .standard
        public var gate: ToolGate = OpenGate()
        public var restExtensions: [RESTExtension] = []
        /// The state database (agent tokens, servers awaiting approval); nil: tokens are off and
        /// pending servers live in memory only.
        public var stateStore: SecurityStore? = nil
        /// Runs once before servers start (e.g. orphan container cleanup).
        public var beforeStart: [@Sendable (ProxyRuntime) async -> Void] = []
        public init() {}
    }

    /// - Parameter makePlugins: builds the optional layers from the loaded config (read once) and
    ///   the proxy's log files (one writer per file, so rotation stays consistent).
    public init(options: ServeOptions, makePlugins: (ProxyConfig, LogFiles) throws -> Plugins = { _, _ in Plugins() }) throws {
        self.options = options
        let proxyHome = try ProxyHome.open(dataDir: options.dataDir, configPath: options.configPath, logLevel: options.logLevel)
        dataDirLock = proxyHome.lock
        logs = proxyHome.logs
        let logger = proxyHome.logger
        self.logger = logger
        let (store, config, warnings) = try ConfigStore.load(path: options.configPath, logger: logger)
        for w in warnings { logger.warning("\(options.configPath): \(w.path): \(w.message)") }
        configStore = store
        initialConfig = config
        listen = options.listen ?? config.listen
        guard let address = ListenAddress.parse(listen) else {
            throw ProxyError(.invalidConfig, "listen address \"\(listen)\" is not HOST:PORT")
        }
        listenAddress = address
        if !options.stdio {
            // The config loader checked the config's own listen; --listen may differ.
            let problems = config.auth.problems(listen: address)
            if !problems.isEmpty {
                throw ProxyError(.invalidConfig, problems.map { "\($0.key): \($0.message)" }.joined(separator: "; "))
            }
        }
        if let m = config.metricsListen {
            // The config loader checked it against the config's own listen; --listen may differ.
            if let problem = ConfigLoader.metricsListenProblem(m, listen: listen) {
                throw ProxyError(.invalidConfig, "metrics_listen: \(problem)")
            }
            metricsAddress = ListenAddress.parse(m)
        } else {
            metricsAddress = nil
        }
        let plugins = try makePlugins(config, logs)

        apiKey = try proxyHome.apiKey()
        let instance = try InstanceDirectory.make(dataDir: options.dataDir)
        instanceID = instance.id
        let runtimeDir = instance.path
        self.runtimeDir = runtimeDir
        runtimeDirLock = instance.lock
        let group = MultiThreadedEventLoopGroup.singleton
        httpClient = HTTPClient(eventLoopGroup: group)
        let dataDir = options.dataDir
        let instanceID = self.instanceID
        let launcher = Self.sandboxLauncherPath()
        let home = ProcessSettings.current.home
        // Confined servers are kept off the proxy's own ports where the mechanism allows it, the
        // unauthenticated metrics port included.
        let listenPorts = [address.port] + (metricsAddress.map { [$0.port] } ?? [])
        let secretsBase = SecretDelivery.baseDirectory()
        let (traces, traceService) = try Self.makeTracing(config.tracing, logger: logger)
        let workspaceRoot = WorkspaceNames.root(dataDir: options.dataDir, isRoot: getuid() == 0)
        tracingService = traceService
        var env = UpstreamEnvironment(
            group: group, httpClient: httpClient,
            launchContext: {
                var c = LaunchContext(dataDir: dataDir, instanceID: instanceID, proxyPID: getpid(),
                                      hostEnvironment: ProcessSettings.current.environment, sandboxLauncher: launcher,
                                      runtimeDir: runtimeDir, homeDir: home,
                                      launchID: String(UUID().uuidString.lowercased().prefix(8)),
                                      proxyListenPorts: listenPorts)
                c.secretsBaseDir = secretsBase
                c.workspaceRoot = workspaceRoot
                return c
            },
            logs: logs, logger: logger, logLevel: options.logLevel, maxMessageBytes: max(64 << 20, config.maxRequestBodyBytes),
            backends: plugins.backends)
        env.traces = traces
        let proxyMetrics = metrics
        egress = EgressProxy(group: group, logger: logger, onDenied: { d in
            proxyMetrics.egressDenied(server: d.server, reason: d.reason.rawValue)
        })
        env.egress = egress
        manager = ServerManager(config: config, configStore: store, environment: env,
                                gate: plugins.gate, logger: logger, store: plugins.stateStore, metrics: metrics)
        handler = MCPHandler(manager: manager, gate: plugins.gate, config: config, logger: logger)
        var rest = RESTAPI(manager: manager, apiKey: apiKey, instanceID: instanceID, listen: listen, logs: logs,
                           extensions: plugins.restExtensions, tokenStore: plugins.stateStore)
        rest.dataDir = options.dataDir
        let door = try FrontDoor(listen: address, auth: config.auth)
        let client = httpClient
        let jwt = config.auth.oauth.map { JWTVerifier(config: $0, resource: door.resource, httpClient: client, logger: logger) }
        authenticator = Authenticator(adminKey: apiKey, mode: config.auth.mode, store: plugins.stateStore, jwt: jwt, logger: logger,
                                      workspaces: config.workspaces)
        gateway = HTTPGateway(handler: handler, rest: rest, auth: authenticator, door: door, config: config, logger: logger,
                              stateStore: plugins.stateStore)
        self.plugins = plugins
        Self.subscribe(store, handler: handler, gateway: gateway, authenticator: authenticator, manager: manager)
    }
    let plugins: Plugins
    /// The running config's owner (ConfigStore): publishes every change to all components.
    public let configStore: ConfigStore
    /// Held while this proxy runs: one proxy per data dir; a runtime dir whose lock is free is stale.
    let dataDirLock: FileLock
    let runtimeDirLock: FileLock?
    /// Per-launch runtime files (cid files, env files, sandbox homes and temp dirs).
    public let runtimeDir: String

    /// The `mcpproxy-sandbox` launcher next to this executable, if present.
    static func sandboxLauncherPath() -> String? {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let candidate = ((exe as NSString).deletingLastPathComponent as NSString).appendingPathComponent("mcpproxy-sandbox")
        return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
    }

    /// Runs until SIGTERM/SIGINT (HTTP) or end of stdin (stdio).
    public func run() async throws {
        do {
            try await runServices()
        } catch {
            try? await httpClient.shutdown()  // AsyncHTTPClient traps if it is dropped running
            throw error
        }
    }

    func runServices() async throws {
        for hook in plugins.beforeStart { await hook(self) }
        let service = SupervisorService(runtime: self)
        let tokens = TokenWatchService(authenticator: authenticator)
        let handler = self.handler
        let monitor = RuntimeMonitor(manager: manager, logger: logger, denials: egress.denials(), notify: { handler.monitorNotice($0) })
        // Tracing first: services stop in reverse order, so it flushes the others' last spans.
        let tracing = tracingService.map { [ServiceGroupConfiguration.ServiceConfiguration(service: $0)] } ?? []
        let metricsApp = try await metricsApplication()
        if options.stdio {
            // The pipes are the credential; --token-file narrows the client to a token's scope.
            let identity = try options.tokenFile.map { try authenticator.identity(tokenFile: $0) } ?? .admin
            let stdio = StdioFrontend(handler: handler, identity: identity, logger: logger, maxLine: initialConfig.maxRequestBodyBytes)
            let group = ServiceGroup(configuration: .init(
                services: tracing + [.init(service: service), .init(service: tokens), .init(service: monitor),
                           .init(service: stdio, successTerminationBehavior: .gracefullyShutdownGroup)] + metricsApp,
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        } else {
            let address = listenAddress
            try await Self.checkListenable(host: address.host, port: address.port, listen: listen)
            let auth = initialConfig.auth
            if auth.mode == .none {
                logger.warning("mcp_auth is \"none\": /mcp answers every local process without a credential (any program on this machine, a confined server included, can call your tools). Remove \"mcp_auth\" to require a token")
            }
            if !address.isLoopback {
                logger.warning("listening on \(listen), which is not loopback: every request to /mcp needs a credential\(auth.tls ? "" : "; TLS is off (allow_plaintext), so credentials cross the network in clear text")")
            }
            if !address.isLoopback && !auth.tls && auth.allowPlaintext {
                logger.warning("allow_plaintext is set: serving plain HTTP on a non-loopback address")
            }
            if let jwt = authenticator.jwt { await jwt.loadKeys() }
            let logger = self.logger
            let listen = self.listen
            let key = (options.dataDir as NSString).appendingPathComponent("api_key")
            let dataDir = options.dataDir
            var appLogger = logger
            appLogger.logLevel = .warning
            let scheme = auth.tls ? "https" : "http"
            // Idle and half-sent client connections are closed after client_idle_timeout (a
            // response still being written, such as an SSE stream, is not idle).
            let http1 = HTTPServerBuilder.http1(configuration: .init(idleTimeout: .milliseconds(Int64(initialConfig.clientIdleTimeout * 1000))))
            let server: HTTPServerBuilder = auth.tls ? try .tls(http1, tlsConfiguration: Self.tlsConfiguration(auth)) : http1
            let app = Application(
                router: gateway.router(),
                server: server,
                configuration: .init(address: .hostname(address.host, port: address.port), serverName: nil),
                onServerRunning: { channel in
                    let addr = channel.localAddress.map { "\($0.ipAddress ?? address.host):\($0.port ?? address.port)" } ?? listen
                    // Where CLI commands find this proxy when `--listen` overrode the config.
                    Self.publishAddress("\(scheme)://\(addr)", dataDir: dataDir)
                    logger.info("listening on \(scheme)://\(addr)/mcp (REST API under /api/v1; admin key: \(ProcessSettings.current.apiKey != nil ? "MCPPROXY_API_KEY" : key))")
                },
                logger: appLogger)
            let group = ServiceGroup(configuration: .init(
                services: tracing + [.init(service: service), .init(service: tokens), .init(service: monitor), .init(service: app)] + metricsApp,
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
        await egress.closeAll()
        try? await httpClient.shutdown()
        if runtimeDir.hasPrefix("/run/mcpproxy/") || runtimeDir.hasPrefix("/var/run/mcpproxy/") {
            try? FileManager.default.removeItem(atPath: runtimeDir)
        }
    }

    /// The `metrics_listen` listener, if configured: plain HTTP on loopback, `GET /metrics` only.
    func metricsApplication() async throws -> [ServiceGroupConfiguration.ServiceConfiguration] {
        guard let m = metricsAddress else { return [] }
        try await Self.checkListenable(host: m.host, port: m.port, listen: "\(m) (metrics_listen)")
        var appLogger = logger
        appLogger.logLevel = .warning
        let logger = self.logger
        let app = Application(
            router: try gateway.metricsRouter(listen: m),
            configuration: .init(address: .hostname(m.host, port: m.port), serverName: nil),
            onServerRunning: { channel in
                let addr = channel.localAddress.map { "\($0.ipAddress ?? m.host):\($0.port ?? m.port)" } ?? "\(m)"
                logger.info("metrics on http://\(addr)/metrics (metrics_listen, no credential, loopback only)")
            },
            logger: appLogger)
        return [.init(service: app)]
    }

    /// The TLS configuration from `tls_cert` / `tls_key` (PEM), with a clear error naming the file.
    static func tlsConfiguration(_ auth: GatewayAuthConfig) throws -> TLSConfiguration {
        guard let certPath = auth.tlsCert, let keyPath = auth.tlsKey else {
            throw ProxyError(.invalidConfig, "tls_cert and tls_key are both needed")
        }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certPath).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
            var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            tls.minimumTLSVersion = .tlsv12
            return tls
        } catch {
            throw ProxyError(.invalidConfig, "cannot load the TLS certificate \(certPath) or key \(keyPath): check that both are PEM files readable by mcpproxy", cause: error)
        }
    }

    /// Fails fast, before any server is spawned, when the address cannot be bound, naming it.
    /// The probe binds a plain socket and never listens: a listening probe took clients'
    /// connections into its backlog and closed them, so a client polling the port at start-up
    /// was reset or waited a SYN retransmission (1 s) for the real listener (seen as one cold
    /// start in five at ~1-2 s in the benchmarks).
    static func checkListenable(host: String, port: Int, listen: String) async throws {
        guard port != 0 else { return }
        let address: NIOCore.SocketAddress
        do {
            address = try NIOCore.SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            throw ProxyError(.unavailable, "cannot listen on \(listen): \(error)", detail: nil, cause: error)
        }
        let fd = socket(Int32(address.protocol.rawValue), Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }  // no socket to probe with: the real bind reports any problem
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc: Int32 = address.withSockAddr { sa, len in bind(fd, sa, socklen_t(len)) }
        if rc != 0 {
            let code = errno
            let why = code == EADDRINUSE ? "address already in use (is another mcpproxy running?)" : String(cString: strerror(code))
            throw ProxyError(.unavailable, "cannot listen on \(listen): \(why)")
        }
    }

    /// Hands every published snapshot to the components, the cheap lock-guarded ones first.
    static func subscribe(_ store: ConfigStore, handler: MCPHandler, gateway: HTTPGateway, authenticator: Authenticator,
                          manager: ServerManager) {
        store.subscribe { config in
            handler.updateConfig(config)
            gateway.updateConfig(config)
            authenticator.setWorkspaces(config.workspaces)
            await manager.apply(config)
        }
    }
}

/// Keeps the authenticator's agent tokens in step with the database (revocations by the CLI).
struct TokenWatchService: Service {
    let authenticator: Authenticator
    func run() async throws {
        await cancelWhenGracefulShutdown { await authenticator.watchTokens() }
    }
}

/// Starts the servers, watches the config file, and on shutdown stops every server.
struct SupervisorService: Service {
    let runtime: ProxyRuntime

    func run() async throws {
        let log = runtime.logger
        log.info("mcpproxy \(ProxyVersion.current) starting; config \(runtime.options.configPath), data dir \(runtime.options.dataDir), instance \(runtime.instanceID)")
        let manager = runtime.manager
        // The servers' lifetimes (and everything each one runs) are children of this task.
        await withDiscardingTaskGroup { group in
            group.addTask { await manager.run() }
            await manager.startAll()
            // Poll the file: cheap (one stat per 250 ms), and unlike inotify it survives editors
            // that replace the file by rename and config dirs on network file systems.
            var ticks = 0
            await withGracefulShutdownHandler {
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    try? await Task.sleep(nanoseconds: 250_000_000)
                    ticks += 1
                    if ticks % 120 == 0 { Self.returnFreeMemory() }
                    await runtime.configStore.reloadIfChanged()
                }
            } onGracefulShutdown: {
                log.info("shutting down")
            }
            runtime.gateway.closeAllSessions()
            await manager.stopAll()
            await manager.close()
        }
        log.info("all servers stopped")
    }

    /// Every 30 s, hands free heap pages back to the system. glibc keeps freed memory in its
    /// per-thread arenas: after a burst (a notification flood, a 64 MiB result) RSS would stay at
    /// the peak for the life of the proxy. `malloc_trim` walks the arenas once (a few ms at most
    /// for this heap) and is a no-op when nothing is free.
    static func returnFreeMemory() {
        mcpx_malloc_trim()
    }
}

/// Serves one MCP client over stdin/stdout (newline-delimited JSON-RPC). Plain blocking reads on
/// a thread and locked writes: stdin/stdout may be pipes, ttys or regular files (NIO's pipe
/// channels refuse files), and one client needs no event loop.
struct StdioFrontend: Service {
    let handler: MCPHandler
    let identity: Identity
    let logger: Logger
    /// The longest line accepted from the client (the HTTP front end's `max_request_body`); a
    /// longer one is answered with a parse error and skipped, never buffered without bound.
    var maxLine: Int = 4 << 20

    func run() async throws {
        let session = MCPSession(id: "stdio", identity: identity)
        let lines = AsyncStream<[UInt8]>.makeStream()
        let input = dup(0)
        let limit = maxLine
        let log = logger
        Thread.detachNewThread {
            var framer = LineFramer(maxLength: limit)
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            func deliver(_ frame: LineFramer.Frame) {
                switch frame {
                case .line(let line): lines.continuation.yield(Array(buffer: line))
                case .tooLong:
                    // Answered once (an unparsable message); the rest of the line is dropped.
                    log.warning("stdio client sent a line over \(limit) bytes; it is dropped")
                    lines.continuation.yield(Array("{".utf8))
                }
            }
            while true {
                let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                buffer.withUnsafeBytes { framer.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                while let frame = framer.next() { deliver(frame) }
            }
            if let last = framer.finish() { deliver(.line(last)) }
            close(input)
            lines.continuation.finish()
        }
        let writer = StdioWriter(fd: 1, logger: logger)
        /// A response: always written, in order.
        @Sendable func emit(_ message: [UInt8]) { writer.send(message, droppable: false) }
        /// A notification: dropped (and counted) when the client is far behind.
        @Sendable func notify(_ message: [UInt8]) { writer.send(message, droppable: true) }
        // Tell the client when the tools it may see change (upstreams coming up, approvals),
        // as the HTTP front end does on its event stream.
        // Nothing is sent before the client's initialize has been answered.
        let manager = handler.manager
        let me = identity
        let initialized = NIOLockedValueBox(false)
        _ = session.updateToolsSignature(MCPHandler.visibleSignature(manager.catalog, for: me))
        manager.onCatalogChange {
            if session.updateToolsSignature(MCPHandler.visibleSignature(manager.catalog, for: me)),
               initialized.withLockedValue({ $0 }) {
                notify(JSONRPC.notification(method: "notifications/tools/list_changed"))
            }
        }
        session.sendDirectly(to: { message in
            if initialized.withLockedValue({ $0 }) { notify(message) }
        })
        handler.onBroadcast { server, note in
            guard initialized.withLockedValue({ $0 }), me.mayReceive(from: server) else { return }
            notify(note)
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for await line in lines.stream {
                    if line.allSatisfy({ JSONSpan.isSpace($0) }) { continue }
                    group.addTask {
                        // Progress goes out on the pipe as it comes; a cancelled request gets no response.
                        // A MCP 2026-07-28 request (its `_meta` envelope, or `server/discover`) is
                        // handled without the handshake, with the pipe's identity and session.
                        let outcome = MCPHandler.isModern(line, versionHeader: nil)
                            ? await handler.handleModern(line, checked: false, session: session, identity: identity, related: { notify($0) })
                            : await handler.handle(line, session: session, identity: identity, related: { notify($0) })
                        if case .response(let bytes) = outcome {
                            emit(bytes)
                        }
                        if !initialized.withLockedValue({ $0 }), (try? JSONRPCEnvelope.parse(line))?.method == "initialize" {
                            initialized.withLockedValue { $0 = true }
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            lines.continuation.finish()
        }
        writer.drain()
    }
}

/// The stdio front end's output. One writer thread does the blocking writes, so nothing that
/// produces a message (an upstream's event loop forwarding progress or a log line, a request's
/// task) ever waits for a slow client. Responses are always queued, in order; notifications past
/// `maxPendingNotifications` are dropped and counted (one warning per burst).
final class StdioWriter: @unchecked Sendable {  // mutable state is guarded by `cond`
    private let cond = ConditionLock(value: 0)  // 1: something to write
    private var queue: [[UInt8]] = []
    private var pendingNotifications = 0
    private var dropped = 0
    private var writing = false
    private let fd: Int32
    private let log: Logger
    let maxPendingNotifications = 1024

    init(fd: Int32, logger: Logger) {
        self.fd = fd
        self.log = logger
        Thread.detachNewThread { [self] in self.run() }
    }

    /// Waits (up to `timeout` seconds) until everything queued has been written: before the
    /// process exits at the end of stdin, so the last responses are not lost.
    func drain(timeout: Double = 5) {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            cond.lock()
            let idle = queue.isEmpty && !writing
            cond.unlock()
            if idle { return }
            usleep(1000)
        }
    }

    func send(_ message: [UInt8], droppable: Bool) {
        cond.lock()
        if droppable && pendingNotifications >= maxPendingNotifications {
            dropped += 1
            cond.unlock(withValue: 1)
            return
        }
        queue.append(message)
        if droppable { pendingNotifications += 1 }
        cond.unlock(withValue: 1)
    }

    private func run() {
        while true {
            cond.lock(whenValue: 1)
            let batch = queue
            let lost = dropped
            queue.removeAll(keepingCapacity: true)
            pendingNotifications = 0
            dropped = 0
            writing = true
            cond.unlock(withValue: 0)
            defer { cond.lock(); writing = false; cond.unlock(withValue: queue.isEmpty ? 0 : 1) }
            if lost > 0 { log.warning("the stdio client reads too slowly: dropped \(lost) notifications") }
            for message in batch {
                var bytes = JSONLine.flatten(message)  // one line per message: see JSONLine
                bytes.append(0x0A)
                var offset = 0
                while offset < bytes.count {
                    let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    offset += n
                }
            }
        }
    }
}
