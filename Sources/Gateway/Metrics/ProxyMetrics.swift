import CoreMetrics
import Foundation
import NIOConcurrencyHelpers
import Prometheus
import ProxyCore
import Upstream

/// The name and HELP text of every metric (docs/metrics.md lists them with their labels).
public enum MetricName {
    public static let toolCalls = "mcpproxy_tool_calls_total"
    public static let toolCallDuration = "mcpproxy_tool_call_duration_seconds"
    public static let mcpRequests = "mcpproxy_mcp_requests_total"
    public static let sessions = "mcpproxy_sessions_active"
    public static let upstreamServers = "mcpproxy_upstream_servers"
    public static let upstreamRestarts = "mcpproxy_upstream_restarts_total"
    public static let quarantined = "mcpproxy_servers_quarantined"
    public static let awaitingApproval = "mcpproxy_servers_awaiting_approval"
    public static let toolsHeld = "mcpproxy_tools_held"
    public static let scannerFindings = "mcpproxy_scanner_findings_total"
    public static let authFailures = "mcpproxy_auth_failures_total"
    public static let serverMemory = "mcpproxy_server_memory_bytes"
    public static let serverPids = "mcpproxy_server_pids"
    public static let serverCPU = "mcpproxy_server_cpu_seconds_total"
    public static let buildInfo = "mcpproxy_build_info"
    public static let monitorEvents = "mcpproxy_monitor_events_total"
    public static let heldByMonitor = "mcpproxy_servers_held_by_monitor"
    public static let egressDenied = "mcpproxy_egress_denied_total"

    /// Each name's HELP line. A registry refuses two help texts for one name, so this table is
    /// the only place they are written.
    static let help: [String: String] = [
        toolCalls: "Tool calls by server, tool and outcome (ok, error, refused, timeout).",
        toolCallDuration: "Time from forwarding a tool call to its answer, per server (calls that reached an upstream).",
        mcpRequests: "MCP requests received, by method (unknown methods as other).",
        sessions: "Open MCP sessions of the HTTP endpoint.",
        upstreamServers: "Configured upstream servers by lifecycle state.",
        upstreamRestarts: "Restarts of each upstream server (after a crash, a failed health check, or a person's restart).",
        quarantined: "Servers quarantined: started and inspected, tools hidden until a person approves them.",
        awaitingApproval: "Servers added over MCP that await a person's approval to start.",
        toolsHeld: "Tools of non-quarantined servers held for review (new, changed, blocked or being evaluated).",
        scannerFindings: "Findings reported by tool scans, by severity (each scan of a tool list counts its findings).",
        authFailures: "Requests refused for their credential, by endpoint and reason.",
        serverMemory: "Memory of a server: its cgroup's usage (sandbox), or the resident set of its process (isolation none).",
        serverPids: "Processes and threads in a sandboxed server's cgroup.",
        serverCPU: "CPU time used by a server: its cgroup (sandbox) or its process (isolation none).",
        buildInfo: "Always 1; the version label names the running mcpproxy.",
        monitorEvents: "Runtime monitor rules that fired, by server, rule and action (event or hold).",
        heldByMonitor: "Servers held by the runtime monitor (held_by_monitor): stopped until a person releases them.",
        egressDenied: "Connections refused by the egress proxy, by server and reason (host_not_allowed, port_not_allowed, forbidden_address, unresolvable, bad_request).",
    ]

    /// Latency buckets, seconds: from a fast local call to the default call timeout (120 s).
    static let durationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
        .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120),
    ]
}

/// A swift-metrics factory over one Prometheus registry that also gives each metric its HELP
/// text (the stock `PrometheusMetricsFactory` registers none). Removal goes through the stock
/// factory, which unregisters the series.
struct RegistryMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    let base: PrometheusMetricsFactory

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        self.base = PrometheusMetricsFactory(registry: registry)
    }

    func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: MetricName.help[label] ?? "")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }
    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        if aggregate { return base.makeRecorder(label: label, dimensions: dimensions, aggregate: true) }
        return registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }
    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: MetricName.durationBuckets)
    }
    func destroyCounter(_ handler: any CounterHandler) { base.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { base.destroyFloatingPointCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { base.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { base.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { base.destroyTimer(handler) }
}

/// The proxy's metrics: counters updated on the request path, gauges filled in when `/metrics`
/// is scraped (server states, sessions, quarantine, process stats), all in one Prometheus
/// registry that belongs to this object.
///
/// Each runtime holds its own registry and passes its factory explicitly instead of bootstrapping
/// the process-wide `MetricsSystem`: that bootstrap may run once per process, tests start several
/// runtimes in one process (each must count only its own calls), and no dependency of the proxy
/// emits metrics through the global system that `/metrics` would need.
///
/// Hot path: a call takes one lock and one dictionary lookup to find its pre-created counters
/// (created on the first call of each server and tool); a request method is a lookup in an
/// immutable dictionary. Nothing is formatted per call.
public final class ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: RegistryMetricsFactory

    private let methods: [String: CoreMetrics.Counter]
    private let otherMethod: CoreMetrics.Counter
    /// By `endpoint * reasons + reason`.
    private let authFailures: [CoreMetrics.Counter]
    private let findings: [String: CoreMetrics.Counter]
    private let calls: NIOLockedValueBox<CallTable>
    private let scrape = NIOLockedValueBox(ScrapeState())
    /// By server label and reason, created on the first denial of each.
    private let egress = NIOLockedValueBox([String: CoreMetrics.Counter]())

    // Gauges set at scrape time.
    private let sessionsGauge: CoreMetrics.Gauge
    private let stateGauges: [(ServerState, CoreMetrics.Gauge)]
    private let quarantinedGauge: CoreMetrics.Gauge
    private let awaitingGauge: CoreMetrics.Gauge
    private let heldGauge: CoreMetrics.Gauge
    private let heldByMonitorGauge: CoreMetrics.Gauge
    /// By server label, rule and action; bounded by the server label budget times 8.
    private let monitorCounters = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])

    /// The states `mcpproxy_upstream_servers` reports (each always present, 0 when none).
    static let states: [ServerState] = [.disabled, .starting, .ready, .unresponsive, .restarting, .failed, .stopped]

    struct CallSeries {
        var counters: [CoreMetrics.Counter]  // by CallOutcome.rawValue
        var latency: CoreMetrics.Timer
    }
    struct CallKey: Hashable {
        var server: String
        var tool: String
    }
    struct CallTable {
        var budget: MetricLabelBudget
        /// By the raw server and tool name (tool "" when not in the catalogue); only configured
        /// servers and catalogue tools are cached, so callers' input cannot grow it.
        var series: [CallKey: CallSeries] = [:]
        var other: CallSeries
        /// Per configured server (bounded by the config, not by callers' input).
        var totals: [String: [CallOutcome: Int]] = [:]
    }
    struct ServerSeries {
        var restarts: CoreMetrics.Counter
        /// Present only while the server's process stats can be read.
        var cpu: CoreMetrics.FloatingPointCounter?
        var memory: CoreMetrics.Gauge?
        var pids: CoreMetrics.Gauge?
        var lastRestarts = 0
        var lastCPU = 0.0
    }
    struct ScrapeState {
        var servers: [String: ServerSeries] = [:]
    }

    public init(budget: MetricLabelBudget = MetricLabelBudget()) {
        registry = PrometheusCollectorRegistry()
        let factory = RegistryMetricsFactory(registry: registry)
        self.factory = factory
        var m: [String: CoreMetrics.Counter] = [:]
        for method in MetricLabelBudget.knownMethods {
            m[method] = CoreMetrics.Counter(label: MetricName.mcpRequests, dimensions: [("method", method)], factory: factory)
        }
        methods = m
        otherMethod = CoreMetrics.Counter(label: MetricName.mcpRequests, dimensions: [("method", MetricLabelBudget.other)], factory: factory)
        authFailures = AuthEndpoint.allCases.flatMap { e in
            AuthFailureReason.allCases.map { r in
                CoreMetrics.Counter(label: MetricName.authFailures, dimensions: [("endpoint", e.label), ("reason", r.label)], factory: factory)
            }
        }
        findings = Dictionary(uniqueKeysWithValues: ["hard", "soft"].map {
            ($0, CoreMetrics.Counter(label: MetricName.scannerFindings, dimensions: [("severity", $0)], factory: factory))
        })
        let other = Self.makeSeries(server: MetricLabelBudget.other, tool: MetricLabelBudget.other, factory: factory)
        calls = NIOLockedValueBox(CallTable(budget: budget, other: other))
        sessionsGauge = CoreMetrics.Gauge(label: MetricName.sessions, factory: factory)
        stateGauges = Self.states.map { ($0, CoreMetrics.Gauge(label: MetricName.upstreamServers, dimensions: [("state", $0.rawValue)], factory: factory)) }
        quarantinedGauge = CoreMetrics.Gauge(label: MetricName.quarantined, factory: factory)
        awaitingGauge = CoreMetrics.Gauge(label: MetricName.awaitingApproval, factory: factory)
        heldGauge = CoreMetrics.Gauge(label: MetricName.toolsHeld, factory: factory)
        heldByMonitorGauge = CoreMetrics.Gauge(label: MetricName.heldByMonitor, factory: factory)
        heldByMonitorGauge.record(0)
        CoreMetrics.Gauge(label: MetricName.buildInfo, dimensions: [("version", ProxyVersion.current)], factory: factory).record(1)
        for g in [sessionsGauge, quarantinedGauge, awaitingGauge, heldGauge] { g.record(0) }
        for (_, g) in stateGauges { g.record(0) }
    }

    static func makeSeries(server: String, tool: String, factory: MetricsFactory) -> CallSeries {
        CallSeries(
            counters: CallOutcome.allCases.map {
                CoreMetrics.Counter(label: MetricName.toolCalls, dimensions: [("server", server), ("tool", tool), ("outcome", $0.label)], factory: factory)
            },
            latency: CoreMetrics.Timer(label: MetricName.toolCallDuration, dimensions: [("server", server)], factory: factory))
    }

    // MARK: request path

    /// Counts one MCP request (not notifications or responses).
    @inline(__always)
    public func request(method: String) {
        (methods[method] ?? otherMethod).increment()
    }

    /// Counts one tool call. `configured`: `server` is a server of the config; `inCatalogue`:
    /// `tool` is one of its catalogue tools. `nanoseconds`: how long the upstream took (nil for
    /// calls that were never forwarded).
    public func toolCall(server: String, tool: String, configured: Bool, inCatalogue: Bool,
                         outcome: CallOutcome, nanoseconds: UInt64? = nil) {
        let series = calls.withLockedValue { t -> CallSeries in
            guard configured else { return t.other }
            t.totals[server, default: [:]][outcome, default: 0] += 1
            let key = CallKey(server: server, tool: inCatalogue ? tool : "")
            if let s = t.series[key] { return s }
            let sl = t.budget.server(server, configured: true)
            let tl = t.budget.tool(tool, serverLabel: sl, inCatalogue: inCatalogue)
            let s = sl == MetricLabelBudget.other && tl == MetricLabelBudget.other ? t.other
                : Self.makeSeries(server: sl, tool: tl, factory: factory)
            // The cache holds catalogue names only; past the label budget it stops growing.
            if t.series.count < t.budget.maxToolSeries * 2 { t.series[key] = s }
            return s
        }
        series.counters[outcome.rawValue].increment()
        if let nanoseconds { series.latency.recordNanoseconds(nanoseconds) }
    }

    /// Counts a runtime monitor rule that fired.
    public func monitorEvent(server: String, rule: String, action: String) {
        let factory = self.factory
        let label = calls.withLockedValue { $0.budget.server(server, configured: true) }
        let key = "\(label)\u{0}\(rule)\u{0}\(action)"
        let counter = monitorCounters.withLockedValue { m -> CoreMetrics.Counter in
            if let c = m[key] { return c }
            let c = CoreMetrics.Counter(label: MetricName.monitorEvents, dimensions: [("server", label), ("rule", rule), ("action", action)], factory: factory)
            m[key] = c
            return c
        }
        counter.increment()
    }

    /// Counts a connection the egress proxy refused (`reason`: `EgressPolicy.Denial` raw value).
    public func egressDenied(server: String, reason: String) {
        let factory = self.factory
        let label = calls.withLockedValue { $0.budget.server(server, configured: true) }
        let counter = egress.withLockedValue { table -> CoreMetrics.Counter in
            let key = label + "\u{0}" + reason
            if let c = table[key] { return c }
            let c = CoreMetrics.Counter(label: MetricName.egressDenied, dimensions: [("server", label), ("reason", reason)], factory: factory)
            table[key] = c
            return c
        }
        counter.increment()
    }

    /// Counts a refused credential.
    public func authFailure(_ endpoint: AuthEndpoint, _ reason: AuthFailureReason) {
        authFailures[endpoint.rawValue * AuthFailureReason.allCases.count + reason.rawValue].increment()
    }

    /// Counts the findings of one scan, by severity (`hard`, `soft`).
    public func scanFindings(_ bySeverity: [String: Int]) {
        for (severity, n) in bySeverity where n > 0 { findings[severity]?.increment(by: n) }
    }

    // MARK: scrape

    /// What a scrape reads about one server.
    public struct ServerSample: Sendable {
        public var name: String
        public var restarts: Int
        public var process: ProcessSample
        public init(name: String, restarts: Int, process: ProcessSample) {
            self.name = name
            self.restarts = restarts
            self.process = process
        }
    }

    /// Fills the gauges from the current state and returns the registry in the Prometheus text
    /// format.
    public func render(manager: ServerManager, sessions: Int) async -> [UInt8] {
        let catalog = manager.catalog
        let servers = await manager.allServers()
        var samples: [ServerSample] = []
        var stateCounts: [ServerState: Int] = [:]
        for s in servers {
            stateCounts[s.state, default: 0] += 1
            let snap = await s.snapshot()
            samples.append(ServerSample(name: s.name, restarts: snap.restarts, process: await Self.processSample(s, snap)))
        }
        var quarantinedServers = Set<String>()
        for key in catalog.refusals.keys where key.hasSuffix(":*") { quarantinedServers.insert(String(key.dropLast(2))) }
        var held = 0
        for key in catalog.refusals.keys where !key.hasSuffix(":*") {
            guard let colon = key.firstIndex(of: ":") else { continue }
            if !quarantinedServers.contains(String(key[..<colon])) { held += 1 }
        }
        heldByMonitorGauge.record(manager.monitorHolds.count)
        update(samples: samples, configured: catalog.serverNames, states: stateCounts, sessions: sessions,
               quarantined: quarantinedServers.count, awaiting: manager.pendingNames.count, held: held)
        return registry.emitToBuffer()
    }

    /// What the kernel says about a running server's processes (empty when it is not running).
    public static func processSample(_ s: UpstreamServer, _ snap: ServerSnapshot) async -> ProcessSample {
        guard snap.state == .ready || snap.state == .unresponsive else { return ProcessSample() }
        switch await s.resources() {
        case .cgroup(let dirs): return ProcessStats.cgroup(dirs)
        case .process(let pid): return ProcessStats.process(pid: pid)
        case .unknown: return ProcessSample()
        }
    }

    /// Calls per configured server since the proxy started, by outcome (for `mcpproxy status`).
    public func callTotals() -> [String: [CallOutcome: Int]] {
        calls.withLockedValue { $0.totals }
    }

    /// Applies one scrape's readings (separate from `render` so it is unit-tested without servers).
    public func update(samples: [ServerSample], configured: Set<String>, states: [ServerState: Int], sessions: Int,
                       quarantined: Int, awaiting: Int, held: Int) {
        sessionsGauge.record(sessions)
        for (state, g) in stateGauges { g.record(states[state] ?? 0) }
        quarantinedGauge.record(quarantined)
        awaitingGauge.record(awaiting)
        heldGauge.record(held)
        let factory = self.factory
        scrape.withLockedValue { st in
            for sample in samples {
                let label = calls.withLockedValue { $0.budget.server(sample.name, configured: configured.contains(sample.name)) }
                guard label != MetricLabelBudget.other else { continue }
                var series = st.servers[label] ?? ServerSeries(
                    restarts: CoreMetrics.Counter(label: MetricName.upstreamRestarts, dimensions: [("server", label)], factory: factory))
                // Counters only go up: a server object made anew (a config change) starts again from
                // zero, and its new count is added; the same for a new cgroup's CPU time.
                let dr = sample.restarts >= series.lastRestarts ? sample.restarts - series.lastRestarts : sample.restarts
                if dr > 0 { series.restarts.increment(by: dr) }
                series.lastRestarts = sample.restarts
                let dims = [("server", label)]
                if let cpu = sample.process.cpuSeconds {
                    let counter = series.cpu ?? CoreMetrics.FloatingPointCounter(label: MetricName.serverCPU, dimensions: dims, factory: factory)
                    let dc = cpu >= series.lastCPU ? cpu - series.lastCPU : cpu
                    if dc > 0 { counter.increment(by: dc) }
                    series.lastCPU = cpu
                    series.cpu = counter
                }
                // Memory and pids are shown only while known (a stopped server has none).
                if let mem = sample.process.memoryBytes {
                    let g = series.memory ?? CoreMetrics.Gauge(label: MetricName.serverMemory, dimensions: dims, factory: factory)
                    g.record(mem)
                    series.memory = g
                } else if let g = series.memory { g.destroy(); series.memory = nil }
                if let pids = sample.process.pids {
                    let g = series.pids ?? CoreMetrics.Gauge(label: MetricName.serverPids, dimensions: dims, factory: factory)
                    g.record(pids)
                    series.pids = g
                } else if let g = series.pids { g.destroy(); series.pids = nil }
                st.servers[label] = series
            }
            // Servers gone from the config: their series go too, and their labels are freed.
            let gone = st.servers.keys.filter { !configured.contains($0) }
            for name in gone {
                guard let s = st.servers.removeValue(forKey: name) else { continue }
                s.restarts.destroy()
                s.cpu?.destroy()
                s.memory?.destroy()
                s.pids?.destroy()
            }
            if !gone.isEmpty { forget(servers: Set(gone)) }
        }
    }

    /// Unregisters the call series of servers that left the config.
    func forget(servers gone: Set<String>) {
        let dropped = calls.withLockedValue { t -> [CallSeries] in
            var out: [CallSeries] = []
            var seen = Set<ObjectIdentifier>()
            for (key, s) in t.series where gone.contains(key.server) {
                t.series.removeValue(forKey: key)
                let id = ObjectIdentifier(s.counters[0])
                if seen.insert(id).inserted { out.append(s) }
            }
            for name in gone { t.budget.release(server: name); t.totals.removeValue(forKey: name) }
            return out
        }
        for s in dropped {
            s.counters.forEach { $0.destroy() }
            s.latency.destroy()
        }
    }

    /// The registry's current text (for tests).
    public func text() -> String { registry.emitToString() }
}
