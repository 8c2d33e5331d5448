import Foundation
import Logging
import MCPSecurity
import NIOConcurrencyHelpers
import ProxyCore
import ServiceLifecycle
import Upstream

/// A rule that fired for a server: what `GET /api/v1/events` lists.
public struct MonitorEvent: Sendable, Equatable {
    /// Increasing from 1 within one run of the proxy.
    public var id: Int
    /// Seconds since 1970.
    public var at: Double
    public var server: String
    public var rule: MonitorRuleKind
    public var action: MonitorAction
    public var reason: String

    public var json: JSONValue {
        ["id": .number(Double(id)), "at": .number((at * 1000).rounded() / 1000), "type": "monitor_rule",
         "server": .string(server), "rule": .string(rule.rawValue), "action": .string(action.rawValue), "reason": .string(reason)]
    }
}

/// The recent monitor events, newest last, at most `capacity` (older ones are dropped).
public final class MonitorEventLog: Sendable {
    private struct State {
        var events: [MonitorEvent] = []
        var nextID = 1
        var capacity = 500
    }
    private let state = NIOLockedValueBox(State())
    public init() {}

    /// Records a finding as an event and returns it.
    public func append(server: String, _ f: MonitorFinding, at: Double = Date().timeIntervalSince1970) -> MonitorEvent {
        state.withLockedValue { s in
            let e = MonitorEvent(id: s.nextID, at: at, server: server, rule: f.rule, action: f.action, reason: f.reason)
            s.nextID += 1
            s.events.append(e)
            if s.events.count > s.capacity { s.events.removeFirst(s.events.count - s.capacity) }
            return e
        }
    }

    public func setCapacity(_ n: Int) {
        state.withLockedValue { s in
            s.capacity = max(1, n)
            if s.events.count > s.capacity { s.events.removeFirst(s.events.count - s.capacity) }
        }
    }

    /// Newest first: at most `limit`, only `server`'s when given, only ids above `after`.
    public func recent(limit: Int = 100, server: String? = nil, after: Int = 0) -> [MonitorEvent] {
        state.withLockedValue { s in
            Array(s.events.reversed().lazy.filter { ($0.id > after) && (server == nil || $0.server == server) }.prefix(limit))
        }
    }
}

/// The runtime monitor: every `monitor.interval` seconds it samples each running server through
/// the same readings as `/metrics` and `mcpproxy status` (`ProxyMetrics.processSample`: the
/// server's cgroup for sandbox and docker, its process for isolation none), feeds them to that
/// server's `MonitorRules`, and acts on what fires: a log line, an event in
/// `GET /api/v1/events`, a notification to the MCP sessions that may use the server, a metric,
/// and for `action: "hold"` the server goes to `held_by_monitor` (`ServerManager.hold`).
/// Refused egress attempts arrive as a stream from the egress proxy and are counted per server
/// between samples.
public struct RuntimeMonitor: Service {
    let manager: ServerManager
    let log: Logger
    /// Called with each event (the MCP handler turns it into a notification).
    let notify: @Sendable (MonitorEvent) -> Void
    let denials: AsyncStream<EgressDenial>?
    let tally = EgressTally()

    public init(manager: ServerManager, logger: Logger, denials: AsyncStream<EgressDenial>? = nil,
                notify: @escaping @Sendable (MonitorEvent) -> Void = { _ in }) {
        self.manager = manager
        self.log = logger
        self.denials = denials
        self.notify = notify
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                if let denials {
                    group.addTask { [tally] in for await d in denials { tally.add(d) } }
                }
                var state = MonitorState()
                while !Task.isCancelled {
                    let config = await manager.currentConfig
                    manager.monitorEvents.setCapacity(config.monitor.eventsKept)
                    await tick(&state, config: config)
                    let interval = max(0.1, config.monitor.interval)
                    try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                }
                group.cancelAll()
            }
        }
    }

    /// Refused egress attempts per server since start, and the last one in words.
    final class EgressTally: Sendable {
        private let counts = NIOLockedValueBox<[String: (Int, String)]>([:])
        func add(_ d: EgressDenial) {
            let what = "\(d.host.isEmpty ? "an unreadable request" : "\(d.host):\(d.port)") (\(d.reason.rawValue))"
            counts.withLockedValue { $0[d.server] = (($0[d.server]?.0 ?? 0) + 1, what) }
        }
        func get(_ server: String) -> (count: Int, last: String?) {
            counts.withLockedValue { $0[server].map { ($0.0, $0.1) } ?? (0, nil) }
        }
    }

    /// Per server object: its rules and the call count seen at the last sample.
    struct MonitorState {
        var rules: [ObjectIdentifier: MonitorRules] = [:]
        var calls: [String: Int] = [:]
    }

    func tick(_ state: inout MonitorState, config: ProxyConfig) async {
        let servers = await manager.allServers()
        let totals = manager.metrics.callTotals()
        var seen = Set<ObjectIdentifier>()
        for s in servers {
            let id = ObjectIdentifier(s)
            seen.insert(id)
            guard manager.monitorHold(s.name) == nil, let sc = config.server(named: s.name) else { continue }
            let mc = sc.monitor ?? config.monitor
            let denied = tally.get(s.name)
            var rules = state.rules[id] ?? MonitorRules(config: mc, denialsBaseline: denied.count)
            rules.config = mc
            let snap = await s.snapshot()
            let running = snap.state == .ready || snap.state == .unresponsive
            let p = running ? await ProxyMetrics.processSample(s, snap) : ProcessSample()
            let calls = (totals[s.name] ?? [:]).values.reduce(0, +)
            let busy = s.callsInFlight > 0 || calls != (state.calls[s.name] ?? calls)
            state.calls[s.name] = calls
            let sample = MonitorSample(at: ProcessInfo.processInfo.systemUptime, running: running,
                                       memoryBytes: p.memoryBytes, memoryLimitBytes: p.memoryLimitBytes,
                                       pids: p.pids, pidsLimit: p.pidsLimit, cpuSeconds: p.cpuSeconds, cpuLimitCores: p.cpuLimitCores,
                                       busy: busy, crashRestarts: snap.crashRestarts,
                                       egressDenials: denied.count, lastEgressDenial: denied.last)
            let findings = rules.evaluate(sample)
            state.rules[id] = rules
            for f in findings { await fire(server: s.name, f) }
        }
        for id in state.rules.keys where !seen.contains(id) { state.rules.removeValue(forKey: id) }
    }

    func fire(server: String, _ f: MonitorFinding) async {
        let e = manager.monitorEvents.append(server: server, f)
        log.warning("monitor: server \(server): rule \(f.rule.rawValue) fired (\(f.action.rawValue)): \(f.reason)")
        manager.metrics.monitorEvent(server: server, rule: f.rule.rawValue, action: f.action.rawValue)
        notify(e)
        if f.action == .hold {
            await manager.hold(MonitorHold(server: server, rule: f.rule.rawValue, reason: f.reason, since: e.at, eventID: e.id))
        }
    }
}

extension MCPHandler {
    /// Tells the MCP sessions that may use `e.server` that a monitor rule fired, as an MCP log
    /// message (`notifications/message`, level warning, logger `mcpproxy.monitor`) on their
    /// event streams; sessions outside the server's scope never see its name.
    public func monitorNotice(_ e: MonitorEvent) {
        let note = JSONRPC.notification(method: "notifications/message", params: [
            "level": "warning", "logger": "mcpproxy.monitor", "data": e.json,
        ])
        for f in broadcasters.withLockedValue({ $0 }) { f(e.server, note) }
    }
}
