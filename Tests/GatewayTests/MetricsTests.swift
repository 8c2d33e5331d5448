import Foundation
@testable import Gateway
import ProxyCore
import Testing
import Upstream
#if canImport(Glibc)
import Glibc
#endif

/// Label bounds and counting of the `/metrics` registry (docs/metrics.md).
@Suite("Metrics")
struct MetricsTests {
    /// The sample lines of one metric family from the text format: `name{labels} value`.
    static func samples(_ text: String, _ name: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
            guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
            out[String(line[..<space])] = v
        }
        return out
    }

    // MARK: label budget

    @Test func serverLabelsComeOnlyFromTheConfig() {
        var b = MetricLabelBudget(maxServers: 2)
        #expect(b.server("a", configured: true) == "a")
        #expect(b.server("made-up-by-a-client", configured: false) == "other")
        #expect(b.server("b", configured: true) == "b")
        // The cap: a third configured server is counted as other; known ones keep their label.
        #expect(b.server("c", configured: true) == "other")
        #expect(b.server("a", configured: true) == "a")
        #expect(b.serverCount == 2)
        // A removed server frees its label.
        b.release(server: "a")
        #expect(b.server("c", configured: true) == "c")
    }

    @Test func toolLabelsComeOnlyFromTheCatalogue() {
        var b = MetricLabelBudget(maxToolSeries: 3)
        let s = b.server("srv", configured: true)
        #expect(b.tool("echo", serverLabel: s, inCatalogue: true) == "echo")
        #expect(b.tool("no_such_tool", serverLabel: s, inCatalogue: false) == "other")
        // A tool of an unlabelled server is never labelled.
        #expect(b.tool("echo", serverLabel: "other", inCatalogue: true) == "other")
        #expect(b.tool("add", serverLabel: s, inCatalogue: true) == "add")
        #expect(b.tool("sleep", serverLabel: s, inCatalogue: true) == "sleep")
        #expect(b.tool("crash", serverLabel: s, inCatalogue: true) == "other")
        #expect(b.tool("add", serverLabel: s, inCatalogue: true) == "add")
        #expect(b.toolSeriesCount == 3)
        // Overlong names are counted as other.
        #expect(b.tool(String(repeating: "x", count: 129), serverLabel: s, inCatalogue: true) == "other")
        #expect(b.server(String(repeating: "s", count: 129), configured: true) == "other")
    }

    @Test func methodLabelsAreAFixedList() {
        #expect(MetricLabelBudget.method("tools/call") == "tools/call")
        #expect(MetricLabelBudget.method("initialize") == "initialize")
        #expect(MetricLabelBudget.method("tools/call2") == "other")
        #expect(MetricLabelBudget.method("") == "other")
    }

    // MARK: counting

    @Test func callsAreCountedByServerToolAndOutcome() {
        let m = ProxyMetrics()
        m.toolCall(server: "a", tool: "echo", configured: true, inCatalogue: true, outcome: .ok, nanoseconds: 2_000_000)
        m.toolCall(server: "a", tool: "echo", configured: true, inCatalogue: true, outcome: .ok, nanoseconds: 3_000_000)
        m.toolCall(server: "a", tool: "echo", configured: true, inCatalogue: true, outcome: .timeout, nanoseconds: 9_000_000_000)
        m.toolCall(server: "a", tool: "nope", configured: true, inCatalogue: false, outcome: .refused)
        m.toolCall(server: "ghost", tool: "x", configured: false, inCatalogue: false, outcome: .refused)
        let calls = Self.samples(m.text(), "mcpproxy_tool_calls_total")
        #expect(calls[#"mcpproxy_tool_calls_total{server="a",tool="echo",outcome="ok"}"#] == 2)
        #expect(calls[#"mcpproxy_tool_calls_total{server="a",tool="echo",outcome="timeout"}"#] == 1)
        #expect(calls[#"mcpproxy_tool_calls_total{server="a",tool="echo",outcome="error"}"#] == 0)
        #expect(calls[#"mcpproxy_tool_calls_total{server="a",tool="other",outcome="refused"}"#] == 1)
        #expect(calls[#"mcpproxy_tool_calls_total{server="other",tool="other",outcome="refused"}"#] == 1)
        let hist = Self.samples(m.text(), "mcpproxy_tool_call_duration_seconds_count")
        #expect(hist[#"mcpproxy_tool_call_duration_seconds_count{server="a"}"#] == 3)
    }

    /// A client inventing server and tool names cannot create series: everything it makes up
    /// lands in the one `other` series.
    @Test func callerInputCannotGrowTheSeries() {
        let m = ProxyMetrics(budget: MetricLabelBudget(maxServers: 4, maxToolSeries: 10))
        for i in 0..<2000 {
            m.toolCall(server: "s\(i)", tool: "t\(i)", configured: false, inCatalogue: false, outcome: .refused)
            m.toolCall(server: "a", tool: "t\(i)", configured: true, inCatalogue: false, outcome: .refused)
            m.toolCall(server: "a", tool: "t\(i)", configured: true, inCatalogue: true, outcome: .ok)
            m.request(method: "x/\(i)")
        }
        let calls = Self.samples(m.text(), "mcpproxy_tool_calls_total")
        // 10 labelled tools of "a" plus a/other and other/other, each with four outcomes.
        #expect(calls.count == (10 + 2) * CallOutcome.allCases.count, "\(calls.count) series")
        #expect(calls[#"mcpproxy_tool_calls_total{server="other",tool="other",outcome="refused"}"#] == 2000)
        #expect(calls[#"mcpproxy_tool_calls_total{server="a",tool="other",outcome="refused"}"#] == 2000)
        #expect(calls[#"mcpproxy_tool_calls_total{server="a",tool="other",outcome="ok"}"#] == 1990)
        let methods = Self.samples(m.text(), "mcpproxy_mcp_requests_total")
        #expect(methods.count == MetricLabelBudget.knownMethods.count + 1)
        #expect(methods[#"mcpproxy_mcp_requests_total{method="other"}"#] == 2000)
    }

    @Test func authFailuresAndFindingsAreCounted() {
        let m = ProxyMetrics()
        m.authFailure(.mcp, .missing)
        m.authFailure(.metrics, .forbidden)
        m.authFailure(.metrics, .forbidden)
        m.scanFindings(["hard": 2, "soft": 1])
        m.scanFindings(["hard": 1])
        let text = m.text()
        let auth = Self.samples(text, "mcpproxy_auth_failures_total")
        #expect(auth.count == AuthEndpoint.allCases.count * AuthFailureReason.allCases.count)
        #expect(auth[#"mcpproxy_auth_failures_total{endpoint="mcp",reason="missing"}"#] == 1)
        #expect(auth[#"mcpproxy_auth_failures_total{endpoint="metrics",reason="forbidden"}"#] == 2)
        let f = Self.samples(text, "mcpproxy_scanner_findings_total")
        #expect(f[#"mcpproxy_scanner_findings_total{severity="hard"}"#] == 3)
        #expect(f[#"mcpproxy_scanner_findings_total{severity="soft"}"#] == 1)
        #expect(text.contains("# HELP mcpproxy_auth_failures_total "))
        #expect(text.contains("# TYPE mcpproxy_tool_calls_total counter"))
    }

    /// Several runtimes in one process (as in tests) each count only their own calls, and
    /// nothing traps: no process-wide bootstrap is involved.
    @Test func registriesAreIndependent() {
        let a = ProxyMetrics(), b = ProxyMetrics()
        a.toolCall(server: "s", tool: "t", configured: true, inCatalogue: true, outcome: .ok)
        let key = #"mcpproxy_tool_calls_total{server="s",tool="t",outcome="ok"}"#
        #expect(Self.samples(a.text(), "mcpproxy_tool_calls_total")[key] == 1)
        #expect(Self.samples(b.text(), "mcpproxy_tool_calls_total")[key] == nil)
    }

    @Test func scrapeGaugesRestartsAndRemovedServers() {
        let m = ProxyMetrics()
        m.toolCall(server: "a", tool: "echo", configured: true, inCatalogue: true, outcome: .ok, nanoseconds: 1000)
        func sample(_ name: String, restarts: Int, cpu: Double?, mem: Double?) -> ProxyMetrics.ServerSample {
            .init(name: name, restarts: restarts, process: ProcessSample(memoryBytes: mem, pids: mem.map { _ in 3 }, cpuSeconds: cpu))
        }
        m.update(samples: [sample("a", restarts: 2, cpu: 1.5, mem: 1000), sample("b", restarts: 0, cpu: nil, mem: nil)],
                 configured: ["a", "b"], states: [.ready: 1, .failed: 1], sessions: 4, quarantined: 1, awaiting: 2, held: 3)
        var text = m.text()
        #expect(Self.samples(text, "mcpproxy_upstream_restarts_total")[#"mcpproxy_upstream_restarts_total{server="a"}"#] == 2)
        #expect(Self.samples(text, "mcpproxy_server_memory_bytes") == [#"mcpproxy_server_memory_bytes{server="a"}"#: 1000])
        #expect(Self.samples(text, "mcpproxy_server_pids") == [#"mcpproxy_server_pids{server="a"}"#: 3])
        #expect(Self.samples(text, "mcpproxy_server_cpu_seconds_total")[#"mcpproxy_server_cpu_seconds_total{server="a"}"#] == 1.5)
        let states = Self.samples(text, "mcpproxy_upstream_servers")
        #expect(states.count == 7)
        #expect(states[#"mcpproxy_upstream_servers{state="ready"}"#] == 1)
        #expect(states[#"mcpproxy_upstream_servers{state="failed"}"#] == 1)
        #expect(states[#"mcpproxy_upstream_servers{state="stopped"}"#] == 0)
        #expect(Self.samples(text, "mcpproxy_sessions_active") == ["mcpproxy_sessions_active": 4])
        #expect(Self.samples(text, "mcpproxy_servers_quarantined") == ["mcpproxy_servers_quarantined": 1])
        #expect(Self.samples(text, "mcpproxy_servers_awaiting_approval") == ["mcpproxy_servers_awaiting_approval": 2])
        #expect(Self.samples(text, "mcpproxy_tools_held") == ["mcpproxy_tools_held": 3])

        // A new server object (config change) restarts its count at 0: the counter still only
        // goes up. CPU of a new cgroup likewise.
        m.update(samples: [sample("a", restarts: 1, cpu: 0.5, mem: nil)], configured: ["a"], states: [:], sessions: 0,
                 quarantined: 0, awaiting: 0, held: 0)
        text = m.text()
        #expect(Self.samples(text, "mcpproxy_upstream_restarts_total")[#"mcpproxy_upstream_restarts_total{server="a"}"#] == 3)
        #expect(Self.samples(text, "mcpproxy_server_cpu_seconds_total")[#"mcpproxy_server_cpu_seconds_total{server="a"}"#] == 2.0)
        // Memory unknown now: the series is gone rather than stale. b left the config: all its
        // series are gone.
        #expect(Self.samples(text, "mcpproxy_server_memory_bytes").isEmpty)
        #expect(Self.samples(text, "mcpproxy_upstream_restarts_total")[#"mcpproxy_upstream_restarts_total{server="b"}"#] == nil)

        // a leaves too: its call series and latency histogram go with it.
        m.update(samples: [], configured: [], states: [:], sessions: 0, quarantined: 0, awaiting: 0, held: 0)
        text = m.text()
        #expect(!text.contains(#"server="a""#), "\(text)")
    }

    /// Concurrent callers lose no count (the hot path is one lock and a lookup); the cost per
    /// call is printed, never asserted.
    @Test func concurrentCallsAreAllCounted() async {
        let m = ProxyMetrics()
        let tasks = 8, perTask = 25_000
        let start = DispatchTime.now().uptimeNanoseconds
        await withTaskGroup(of: Void.self) { g in
            for t in 0..<tasks {
                g.addTask {
                    let tool = "t\(t % 4)"
                    for _ in 0..<perTask {
                        m.request(method: "tools/call")
                        m.toolCall(server: "a", tool: tool, configured: true, inCatalogue: true, outcome: .ok, nanoseconds: 1000)
                    }
                }
            }
        }
        let ns = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(tasks * perTask)
        print("metrics: \(Int(ns)) ns per counted call (request + tool call + latency), \(tasks) tasks")
        let calls = Self.samples(m.text(), "mcpproxy_tool_calls_total")
        for t in 0..<4 {
            #expect(calls["mcpproxy_tool_calls_total{server=\"a\",tool=\"t\(t)\",outcome=\"ok\"}"] == Double(2 * perTask))
        }
        #expect(Self.samples(m.text(), "mcpproxy_mcp_requests_total")[#"mcpproxy_mcp_requests_total{method="tools/call"}"#] == Double(tasks * perTask))
    }

    // MARK: process stats

    @Test func procStatIsParsed() {
        // The command name may hold spaces and parentheses.
        let line = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 123456789 500 18446744073709551615"
        let s = ProcessStats.parseStat(line, ticksPerSecond: 100, pageSize: 4096)
        #expect(s.cpuSeconds == 3.0)
        #expect(s.memoryBytes == Double(500 * 4096))
        let me = ProcessStats.process(pid: getpid())
        #expect((me.memoryBytes ?? 0) > 1_000_000)
        #expect(me.cpuSeconds != nil)
        #expect(ProcessStats.process(pid: 0x7fff_fff0) == ProcessSample())
    }

    @Test func cgroupFilesAreRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mcpx-cg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "1048576\n".write(toFile: dir + "/memory.current", atomically: true, encoding: .utf8)
        try "7\n".write(toFile: dir + "/pids.current", atomically: true, encoding: .utf8)
        try "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n".write(toFile: dir + "/cpu.stat", atomically: true, encoding: .utf8)
        #expect(ProcessStats.cgroup([dir]) == ProcessSample(memoryBytes: 1_048_576, pids: 7, cpuSeconds: 2.5))
    }

    @Test func cgroupLimitsAreRead() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mcpx-cg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // v2
        try "1048576\n".write(toFile: dir + "/memory.current", atomically: true, encoding: .utf8)
        try "2097152\n".write(toFile: dir + "/memory.max", atomically: true, encoding: .utf8)
        try "32\n".write(toFile: dir + "/pids.max", atomically: true, encoding: .utf8)
        try "50000 100000\n".write(toFile: dir + "/cpu.max", atomically: true, encoding: .utf8)
        var s = ProcessStats.cgroup([dir])
        #expect(s.memoryLimitBytes == 2_097_152 && s.pidsLimit == 32 && s.cpuLimitCores == 0.5)
        try "max\n".write(toFile: dir + "/memory.max", atomically: true, encoding: .utf8)
        try "max\n".write(toFile: dir + "/pids.max", atomically: true, encoding: .utf8)
        try "max 100000\n".write(toFile: dir + "/cpu.max", atomically: true, encoding: .utf8)
        s = ProcessStats.cgroup([dir])
        #expect(s.memoryLimitBytes == nil && s.pidsLimit == nil && s.cpuLimitCores == nil)
        // v1: "unlimited" is a page-rounded 2^63; no quota is -1.
        let v1 = dir + "/v1"
        try FileManager.default.createDirectory(atPath: v1, withIntermediateDirectories: true)
        try "9223372036854771712\n".write(toFile: v1 + "/memory.limit_in_bytes", atomically: true, encoding: .utf8)
        try "-1\n".write(toFile: v1 + "/cpu.cfs_quota_us", atomically: true, encoding: .utf8)
        try "100000\n".write(toFile: v1 + "/cpu.cfs_period_us", atomically: true, encoding: .utf8)
        s = ProcessStats.cgroup([v1])
        #expect(s.memoryLimitBytes == nil && s.cpuLimitCores == nil)
        try "268435456\n".write(toFile: v1 + "/memory.limit_in_bytes", atomically: true, encoding: .utf8)
        try "150000\n".write(toFile: v1 + "/cpu.cfs_quota_us", atomically: true, encoding: .utf8)
        s = ProcessStats.cgroup([v1])
        #expect(s.memoryLimitBytes == 268_435_456 && s.cpuLimitCores == 1.5)
    }

    // MARK: config

    @Test func metricsListenMustBeLoopbackAndNotTheMainPort() throws {
        let ok = try ConfigLoader.parse(data: Data(#"{"listen": "127.0.0.1:8080", "metrics_listen": "127.0.0.1:9464"}"#.utf8))
        #expect(ok.config.metricsListen == "127.0.0.1:9464")
        for (value, expected) in [("0.0.0.0:9464", "not a loopback address"), ("192.0.2.1:9464", "not a loopback address"),
                                  ("127.0.0.1:8080", "main listener"), ("nonsense", "HOST:PORT")] {
            do {
                _ = try ConfigLoader.parse(data: Data(#"{"listen": "127.0.0.1:8080", "metrics_listen": "\#(value)"}"#.utf8))
                Issue.record("\(value) was accepted")
            } catch let e as ProxyError {
                #expect(e.message.contains("metrics_listen"), "\(e.message)")
                #expect(e.message.contains(expected), "\(e.message)")
            }
        }
        let typo = try ConfigLoader.parse(data: Data(#"{"metric_listen": "127.0.0.1:9464"}"#.utf8))
        #expect(typo.warnings.first?.message.contains("did you mean \"metrics_listen\"?") == true)
    }
}
