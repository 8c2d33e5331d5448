import Foundation
import Logging
import ProxyCore
import Upstream

/// A server's instance for one workspace (`instance: "workspace"`).
public struct InstanceKey: Hashable, Sendable, CustomStringConvertible {
    public var server: String
    public var workspace: String
    public init(server: String, workspace: String) {
        self.server = server
        self.workspace = workspace
    }
    public var description: String { "\(server)@\(workspace)" }

    /// `server@workspace` back into its parts; nil for a plain server name.
    public static func parse(_ routingKey: String) -> InstanceKey? {
        guard let at = routingKey.firstIndex(of: "@") else { return nil }
        return InstanceKey(server: String(routingKey[..<at]), workspace: String(routingKey[routingKey.index(after: at)...]))
    }
}

/// When workspace instances stop: pure, so it is unit-tested.
public enum InstancePolicy {
    public struct Usage: Sendable, Equatable {
        public var lastUsed: Double
        public var inFlight: Int
        public var idleTimeout: Double
        public init(lastUsed: Double, inFlight: Int, idleTimeout: Double) {
            self.lastUsed = lastUsed
            self.inFlight = inFlight
            self.idleTimeout = idleTimeout
        }
    }
    /// The instances to stop at `now`: no call in flight and none for `idleTimeout` seconds.
    public static func idle<K: Hashable>(_ usage: [K: Usage], now: Double) -> [K] {
        usage.filter { $0.value.inFlight == 0 && now - $0.value.lastUsed >= $0.value.idleTimeout }.map(\.key)
    }
    /// How often to look: a quarter of the shortest timeout, between 0.5 s and 30 s.
    public static func checkInterval(_ timeouts: [Double]) -> Double {
        min(30, max(0.5, (timeouts.min() ?? 120) / 4))
    }

    /// Whether an instance's tools match the definition's (`definition`: the tools the gate
    /// approved, by name, as they were listed): a tool that is new or whose definition differs is
    /// a drift, held like a rug pull. Nil when they match, else the first drifted tool's name.
    public static func drift(instance: [ToolDefinition], definition: [String: ToolDefinition], held: Set<String>) -> String? {
        for t in instance {
            if held.contains(t.name) { continue }
            guard let d = definition[t.name] else { return t.name }
            if d.raw != t.raw { return t.name }
        }
        return nil
    }
}

/// The workspace instances of servers with `instance: "workspace"`: started on a workspace's
/// first call, stopped after the server's `idle_timeout`, never shared across workspaces.
/// The server's shared entry (in `ServerManager`) stays the definition: the gate judges its
/// tools (approval, pins, scanning) and serves no calls; an instance's tools are compared with it.
public actor WorkspaceInstances {
    struct Entry {
        var server: UpstreamServer
        var usage: InstancePolicy.Usage
    }
    private var entries: [InstanceKey: Entry] = [:]
    private let env: UpstreamEnvironment
    private let log: Logger
    private let onEvent: @Sendable (UpstreamEvent) -> Void
    /// The manager's jobs: instances' lifetimes, their starts and the idle reaper run there.
    private let jobs: Jobs
    private var reaperRunning = false
    private var closed = false

    init(environment: UpstreamEnvironment, logger: Logger, jobs: Jobs, onEvent: @escaping @Sendable (UpstreamEvent) -> Void) {
        self.env = environment
        self.log = logger
        self.jobs = jobs
        self.onEvent = onEvent
    }

    /// The running (or starting) instance for `key`, started when there is none. Marks a call in
    /// flight; `release` ends it.
    func acquire(_ key: InstanceKey, config: ServerConfig, proxyConfig: ProxyConfig,
                 now: Double = Date().timeIntervalSince1970) -> UpstreamServer {
        let timeout = config.idleTimeout ?? ServerConfig.defaultIdleTimeout
        if var e = entries[key], e.server.state != .stopped, e.server.state != .failed {
            e.usage.inFlight += 1
            e.usage.lastUsed = now
            e.usage.idleTimeout = timeout
            entries[key] = e
            return e.server
        }
        if let old = entries.removeValue(forKey: key) { jobs.spawn { await old.server.stop(); old.server.close() } }
        WorkspaceNames.ensureRoot(env.launchContext().workspaceRoot, isRoot: geteuid() == 0)
        let server = UpstreamServer(config: config, proxyConfig: proxyConfig, environment: env, workspace: key.workspace,
                                    onEvent: onEvent)
        entries[key] = Entry(server: server, usage: .init(lastUsed: now, inFlight: 1, idleTimeout: timeout))
        log.info("starting workspace instance \(key)")
        jobs.spawn { await server.run() }
        jobs.spawn { await server.start() }
        ensureReaper()
        return server
    }

    func release(_ key: InstanceKey, now: Double = Date().timeIntervalSince1970) {
        guard var e = entries[key] else { return }
        e.usage.inFlight = max(0, e.usage.inFlight - 1)
        e.usage.lastUsed = now
        entries[key] = e
    }

    /// The running instance for `key`, if any (no start).
    func existing(_ key: InstanceKey) -> UpstreamServer? { entries[key]?.server }

    /// Every instance, by key.
    func all() -> [InstanceKey: UpstreamServer] { entries.mapValues(\.server) }

    /// Stops idle instances; returns their keys.
    @discardableResult
    func reap(now: Double = Date().timeIntervalSince1970) async -> [InstanceKey] {
        let doomed = InstancePolicy.idle(entries.mapValues(\.usage), now: now)
        for key in doomed {
            guard let e = entries.removeValue(forKey: key) else { continue }
            log.info("stopping idle workspace instance \(key) (no call for \(Int(e.usage.idleTimeout)) s)")
            await e.server.stop()
            e.server.close()
        }
        return doomed
    }

    /// Stops the instances matching `filter`; returns their keys.
    @discardableResult
    func stop(where filter: (InstanceKey) -> Bool) async -> [InstanceKey] {
        let keys = entries.keys.filter(filter).sorted { $0.description < $1.description }
        await withTaskGroup(of: Void.self) { group in
            for k in keys {
                if let e = entries.removeValue(forKey: k) { group.addTask { await e.server.stop(); e.server.close() } }
            }
        }
        return keys
    }

    /// The idle reaper: one loop among the manager's jobs, from the first instance until close.
    private func ensureReaper() {
        guard !reaperRunning, !closed else { return }
        reaperRunning = jobs.spawn { [weak self] in
            while !Task.isCancelled {
                guard let self else { return }
                let interval = await self.interval()
                try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                guard !Task.isCancelled else { return }
                await self.reap()
            }
        }
    }
    private func interval() -> Double { InstancePolicy.checkInterval(entries.values.map(\.usage.idleTimeout)) }

    /// Stops every instance (the proxy stops).
    func shutdown() async {
        await stop { _ in true }
    }

    /// No more instances; ends the lifetime of any left (the reaper ends with the manager's jobs).
    func close() {
        closed = true
        for e in entries.values { e.server.close() }
    }
}
