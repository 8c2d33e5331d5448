import Foundation
import Testing
import ProxyCore
@testable import Gateway

/// The runtime monitor's rules as a value: samples in, findings out.
@Suite struct MonitorRulesTests {
    static let mib = 1_048_576.0

    func config(_ edit: (inout MonitorConfig) -> Void = { _ in }) -> MonitorConfig {
        var c = MonitorConfig()
        edit(&c)
        return c
    }

    func mem(_ at: Double, _ used: Double, limit: Double = 100 * mib, running: Bool = true) -> MonitorSample {
        MonitorSample(at: at, running: running, memoryBytes: used, memoryLimitBytes: limit)
    }

    // MARK: memory

    @Test func memoryFiresAfterItsDurationOnly() {
        var r = MonitorRules(config: config { $0.memory.duration = 10 })
        #expect(r.evaluate(mem(0, 95 * Self.mib)).isEmpty)
        #expect(r.evaluate(mem(5, 95 * Self.mib)).isEmpty)
        let f = r.evaluate(mem(10, 96 * Self.mib))
        #expect(f.map(\.rule) == [.memory])
        #expect(f.first?.action == .event)
        #expect(f.first?.reason.contains("96 MiB is 96% of its limit 100 MiB for 10s") == true, "\(f)")
        #expect(f.first?.reason.contains("rule memory: share 0.90, for 10s") == true, "\(f)")
    }

    @Test func memoryFiresOncePerStreakAndReArms() {
        var r = MonitorRules(config: config { $0.memory.duration = 0 })
        #expect(r.evaluate(mem(0, 95 * Self.mib)).count == 1)
        #expect(r.evaluate(mem(1, 99 * Self.mib)).isEmpty)    // still over: not again
        #expect(r.evaluate(mem(2, 10 * Self.mib)).isEmpty)    // clears
        #expect(r.evaluate(mem(3, 95 * Self.mib)).count == 1) // a new streak fires again
    }

    @Test func aDipBelowTheShareRestartsTheStreak() {
        var r = MonitorRules(config: config { $0.memory.duration = 10 })
        _ = r.evaluate(mem(0, 95 * Self.mib))
        _ = r.evaluate(mem(6, 50 * Self.mib))
        #expect(r.evaluate(mem(12, 95 * Self.mib)).isEmpty)   // only 0 s of the new streak
        #expect(r.evaluate(mem(21, 95 * Self.mib)).isEmpty)
        #expect(r.evaluate(mem(22, 95 * Self.mib)).count == 1)
    }

    @Test(arguments: [0.5, 0.8, 1.0])
    func memoryShareIsTheThreshold(_ share: Double) {
        var r = MonitorRules(config: config { $0.memory.share = share; $0.memory.duration = 0 })
        #expect(r.evaluate(mem(0, share * 100 * Self.mib - 1)).isEmpty)
        #expect(r.evaluate(mem(1, share * 100 * Self.mib)).map(\.rule) == [.memory])
    }

    @Test func noLimitOrNoReadingNeverFires() {
        var r = MonitorRules(config: config { $0.memory.duration = 0 })
        #expect(r.evaluate(MonitorSample(at: 0, running: true, memoryBytes: 1e12)).isEmpty)  // no limit
        #expect(r.evaluate(MonitorSample(at: 1, running: true, memoryLimitBytes: 1)).isEmpty) // no reading
        #expect(r.evaluate(mem(2, 1e12, limit: 0)).isEmpty)
    }

    @Test func notRunningEndsStreaks() {
        var r = MonitorRules(config: config { $0.memory.duration = 5 })
        _ = r.evaluate(mem(0, 95 * Self.mib))
        _ = r.evaluate(mem(3, 0, running: false))
        #expect(r.evaluate(mem(6, 95 * Self.mib)).isEmpty)   // the streak began again at 6
        #expect(r.evaluate(mem(11, 95 * Self.mib)).count == 1)
    }

    // MARK: pids

    @Test func pidsAtTheLimitFires() {
        var r = MonitorRules(config: config())
        #expect(r.evaluate(MonitorSample(at: 0, running: true, pids: 31, pidsLimit: 32)).isEmpty)
        let f = r.evaluate(MonitorSample(at: 1, running: true, pids: 32, pidsLimit: 32))
        #expect(f.map(\.rule) == [.pids])
        #expect(f.first?.reason.contains("32 processes and threads of its limit 32") == true, "\(f)")
    }

    @Test func pidsShareAndDuration() {
        var r = MonitorRules(config: config { $0.pids.share = 0.5; $0.pids.duration = 2 })
        #expect(r.evaluate(MonitorSample(at: 0, running: true, pids: 50, pidsLimit: 100)).isEmpty)
        #expect(r.evaluate(MonitorSample(at: 2, running: true, pids: 60, pidsLimit: 100)).map(\.rule) == [.pids])
    }

    // MARK: cpu

    func cpu(_ at: Double, _ seconds: Double, busy: Bool = false, limit: Double? = nil) -> MonitorSample {
        MonitorSample(at: at, running: true, cpuSeconds: seconds, cpuLimitCores: limit, busy: busy)
    }

    @Test func cpuPeggedWhileIdleFires() {
        var r = MonitorRules(config: config { $0.cpu.duration = 4 })
        #expect(r.evaluate(cpu(0, 0)).isEmpty)          // a baseline only
        #expect(r.evaluate(cpu(2, 1.98)).isEmpty)       // 0.99 cores: streak starts
        #expect(r.evaluate(cpu(4, 3.96)).isEmpty)
        let f = r.evaluate(cpu(6, 5.94))
        #expect(f.map(\.rule) == [.cpu])
        #expect(f.first?.reason.contains("of one core with no call in flight") == true, "\(f)")
    }

    @Test func cpuWhileACallIsInFlightDoesNotCount() {
        var r = MonitorRules(config: config { $0.cpu.duration = 0 })
        _ = r.evaluate(cpu(0, 0))
        #expect(r.evaluate(cpu(1, 1, busy: true)).isEmpty)
        #expect(r.evaluate(cpu(2, 2, busy: true)).isEmpty)
        #expect(r.evaluate(cpu(3, 3)).map(\.rule) == [.cpu])
    }

    @Test func cpuIsJudgedAgainstItsLimit() {
        var r = MonitorRules(config: config { $0.cpu.duration = 0 })
        _ = r.evaluate(cpu(0, 0, limit: 0.5))
        let f = r.evaluate(cpu(1, 0.5, limit: 0.5))
        #expect(f.map(\.rule) == [.cpu])
        #expect(f.first?.reason.contains("its limit of 0.50 CPUs") == true, "\(f)")
        var two = MonitorRules(config: config { $0.cpu.duration = 0 })
        _ = two.evaluate(cpu(0, 0, limit: 2))
        #expect(two.evaluate(cpu(1, 1, limit: 2)).isEmpty)  // one core of two
    }

    @Test func cpuCounterGoingBackwardsIsANewBaseline() {
        var r = MonitorRules(config: config { $0.cpu.duration = 0 })
        _ = r.evaluate(cpu(0, 100))
        #expect(r.evaluate(cpu(1, 0.5)).isEmpty)  // a new cgroup
        #expect(r.evaluate(cpu(2, 1.5)).map(\.rule) == [.cpu])
    }

    // MARK: crash loops

    func restarts(_ at: Double, _ n: Int, running: Bool = false) -> MonitorSample {
        MonitorSample(at: at, running: running, crashRestarts: n)
    }

    @Test func crashLoopCountsRestartsWithinTheWindow() {
        var r = MonitorRules(config: config { $0.crashLoop = MonitorWindowRule(count: 3, window: 10) })
        #expect(r.evaluate(restarts(0, 1)).isEmpty)
        #expect(r.evaluate(restarts(4, 2)).isEmpty)
        let f = r.evaluate(restarts(8, 3))
        #expect(f.map(\.rule) == [.crashLoop])
        #expect(f.first?.reason.contains("3 restarts after crashes or failed starts within 8s") == true, "\(f)")
        // Counting starts afresh.
        #expect(r.evaluate(restarts(9, 4)).isEmpty)
    }

    @Test func restartsSpreadOutDoNotFire() {
        var r = MonitorRules(config: config { $0.crashLoop = MonitorWindowRule(count: 3, window: 10) })
        #expect(r.evaluate(restarts(0, 1)).isEmpty)
        #expect(r.evaluate(restarts(11, 2)).isEmpty)
        #expect(r.evaluate(restarts(22, 3)).isEmpty)
    }

    @Test func severalRestartsBetweenSamplesCount() {
        var r = MonitorRules(config: config { $0.crashLoop = MonitorWindowRule(count: 3, window: 10) })
        #expect(r.evaluate(restarts(5, 3)).map(\.rule) == [.crashLoop])
    }

    @Test func theBaselineIsNotCounted() {
        var r = MonitorRules(config: config { $0.crashLoop = MonitorWindowRule(count: 2, window: 10) }, restartsBaseline: 7)
        #expect(r.evaluate(restarts(0, 8)).isEmpty)
        #expect(r.evaluate(restarts(1, 9)).map(\.rule) == [.crashLoop])
    }

    // MARK: denied egress

    func denials(_ at: Double, _ n: Int, last: String? = "other.example:443 (host_not_allowed)") -> MonitorSample {
        MonitorSample(at: at, running: true, egressDenials: n, lastEgressDenial: last)
    }

    @Test func deniedEgressCountsWithinTheWindowAndNamesTheLast() {
        var r = MonitorRules(config: config { $0.egressDenied = MonitorWindowRule(count: 5, window: 10) })
        #expect(r.evaluate(denials(0, 2)).isEmpty)
        #expect(r.evaluate(denials(3, 4)).isEmpty)
        let f = r.evaluate(denials(6, 5))
        #expect(f.map(\.rule) == [.egressDenied])
        #expect(f.first?.action == .event)
        #expect(f.first?.reason == "5 refused egress attempts within 6s, the last other.example:443 (host_not_allowed) (rule egress_denied: 5 denials within 10s)")
        // Counting starts afresh; old denials leave the window.
        #expect(r.evaluate(denials(7, 9)).isEmpty)
        #expect(r.evaluate(denials(30, 10)).isEmpty)
    }

    @Test func aFloodOfDenialsFiresOnceAndCostsNoMoreThanTheCount() {
        var r = MonitorRules(config: config { $0.egressDenied = MonitorWindowRule(count: 3, window: 10, action: .hold) })
        let f = r.evaluate(denials(1, 1_000_000))
        #expect(f.map(\.rule) == [.egressDenied] && f.first?.action == .hold)
        #expect(f.first?.reason.hasPrefix("3 refused egress attempts within 0s") == true, "\(f)")
        #expect(r.evaluate(denials(2, 1_000_000)).isEmpty)
    }

    @Test func eventsWhileTheMonitorIsOffAreNotCountedLater() {
        var c = config { $0.egressDenied = MonitorWindowRule(count: 2, window: 100); $0.crashLoop = MonitorWindowRule(count: 2, window: 100) }
        c.enabled = false
        var r = MonitorRules(config: c)
        #expect(r.evaluate(MonitorSample(at: 0, running: true, crashRestarts: 5, egressDenials: 50)).isEmpty)
        r.config.enabled = true
        #expect(r.evaluate(MonitorSample(at: 1, running: true, crashRestarts: 5, egressDenials: 50)).isEmpty)
        #expect(r.evaluate(MonitorSample(at: 2, running: true, crashRestarts: 6, egressDenials: 52)).map(\.rule) == [.egressDenied])
    }

    // MARK: actions, switches

    @Test func actionsComeFromTheRuleElseTheMonitor() {
        var c = config { $0.action = .hold; $0.memory.duration = 0; $0.pids.action = .event }
        var r = MonitorRules(config: c)
        let f = r.evaluate(MonitorSample(at: 0, running: true, memoryBytes: 100, memoryLimitBytes: 100, pids: 5, pidsLimit: 5))
        #expect(f.map(\.rule) == [.memory, .pids])
        #expect(f.map(\.action) == [.hold, .event])
        c.action = .event
        #expect(c.action(of: .memory) == .event)
        #expect(c.action(of: .crashLoop) == .event)
    }

    @Test(arguments: MonitorRuleKind.allCases)
    func aDisabledRuleNeverFires(_ kind: MonitorRuleKind) {
        var c = config {
            $0.memory.duration = 0; $0.cpu.duration = 0
            $0.crashLoop = MonitorWindowRule(count: 1, window: 10); $0.egressDenied = MonitorWindowRule(count: 1, window: 10)
        }
        switch kind {
        case .memory: c.memory.enabled = false
        case .pids: c.pids.enabled = false
        case .cpu: c.cpu.enabled = false
        case .crashLoop: c.crashLoop.enabled = false
        case .egressDenied: c.egressDenied.enabled = false
        }
        var r = MonitorRules(config: c)
        _ = r.evaluate(MonitorSample(at: 0, running: true, cpuSeconds: 0))
        let f = r.evaluate(MonitorSample(at: 1, running: true, memoryBytes: 100, memoryLimitBytes: 100, pids: 5, pidsLimit: 5,
                                         cpuSeconds: 1, crashRestarts: 1, egressDenials: 1))
        #expect(!f.map(\.rule).contains(kind))
        #expect(f.count == MonitorRuleKind.allCases.count - 1)
    }

    @Test func aDisabledMonitorFiresNothing() {
        var r = MonitorRules(config: config { $0.enabled = false; $0.memory.duration = 0 })
        #expect(r.evaluate(mem(0, 100 * Self.mib)).isEmpty)
        #expect(r.evaluate(restarts(1, 100)).isEmpty)
    }

    // MARK: the event log

    @Test func eventLogIsABoundedRingNewestFirst() {
        let log = MonitorEventLog()
        log.setCapacity(3)
        for i in 0..<5 {
            _ = log.append(server: i % 2 == 0 ? "a" : "b", MonitorFinding(rule: .memory, action: .event, reason: "r\(i)"), at: Double(i))
        }
        #expect(log.recent().map(\.id) == [5, 4, 3])
        #expect(log.recent(server: "a").map(\.id) == [5, 3])
        #expect(log.recent(limit: 1).map(\.reason) == ["r4"])
        #expect(log.recent(after: 4).map(\.id) == [5])
        #expect(log.recent().first?.json["rule"] == "memory")
    }
}

/// `monitor` in the config file.
@Suite struct MonitorConfigTests {
    func load(_ text: String) throws -> ConfigLoader.Loaded {
        try ConfigLoader.parse(data: Data(text.utf8), file: "test.json")
    }

    @Test func defaults() throws {
        let c = try load(#"{"mcpServers":[]}"#).config.monitor
        #expect(c == MonitorConfig())
        #expect(c.enabled && c.interval == 5 && c.action == .event)
        #expect(c.memory == MonitorThresholdRule(share: 0.9, duration: 30))
        #expect(c.pids == MonitorThresholdRule(share: 1, duration: 0))
        #expect(c.cpu == MonitorThresholdRule(share: 0.95, duration: 60))
        #expect(c.crashLoop == MonitorWindowRule(count: 5, window: 600))
        #expect(c.egressDenied == MonitorWindowRule(count: 10, window: 60))
    }

    @Test func allKeysAndAServerOverride() throws {
        let l = try load(#"""
        {"monitor": {"interval": "200ms", "action": "hold", "events_kept": 50,
                     "memory": {"share": 0.8, "for": "2s"}, "pids": false,
                     "cpu": {"share": 0.5, "for": "1m", "action": "event"},
                     "crash_loop": {"restarts": 3, "window": "30s"},
                     "egress_denied": {"denials": 4, "window": "2m", "action": "hold"}},
         "mcpServers": [{"name": "a", "command": "x"},
                        {"name": "b", "command": "x", "monitor": {"action": "event", "memory": {"for": "9s"}, "crash_loop": false,
                                                                  "egress_denied": {"window": "5s"}}}]}
        """#)
        #expect(l.warnings.isEmpty, "\(l.warnings)")
        let g = l.config.monitor
        #expect(g.interval == 0.2 && g.action == .hold && g.eventsKept == 50)
        #expect(g.memory == MonitorThresholdRule(share: 0.8, duration: 2))
        #expect(!g.pids.enabled)
        #expect(g.cpu == MonitorThresholdRule(share: 0.5, duration: 60, action: .event))
        #expect(g.crashLoop == MonitorWindowRule(count: 3, window: 30))
        #expect(g.egressDenied == MonitorWindowRule(count: 4, window: 120, action: .hold))
        #expect(l.config.server(named: "a")?.monitor == nil)
        let b = try #require(l.config.server(named: "b")?.monitor)
        #expect(b.action == .event)
        #expect(b.memory == MonitorThresholdRule(share: 0.8, duration: 9))  // share from the global
        #expect(!b.crashLoop.enabled)
        #expect(b.egressDenied == MonitorWindowRule(count: 4, window: 5, action: .hold))
        #expect(b.interval == 0.2)
    }

    @Test(arguments: [
        (#"{"monitor":{"interval":"10ms"}}"#, "monitor.interval"),
        (#"{"monitor":{"action":"quarantine"}}"#, "monitor.action"),
        (#"{"monitor":{"memory":{"share":1.5}}}"#, "monitor.memory.share"),
        (#"{"monitor":{"memory":{"share":0}}}"#, "monitor.memory.share"),
        (#"{"monitor":{"cpu":{"for":"soon"}}}"#, "monitor.cpu.for"),
        (#"{"monitor":{"crash_loop":{"restarts":0}}}"#, "monitor.crash_loop.restarts"),
        (#"{"monitor":{"crash_loop":{"window":"0s"}}}"#, "monitor.crash_loop.window"),
        (#"{"monitor":{"egress_denied":{"denials":0}}}"#, "monitor.egress_denied.denials"),
        (#"{"monitor":{"egress_denied":{"window":"-1s"}}}"#, "monitor.egress_denied.window"),
        (#"{"monitor":{"events_kept":0}}"#, "monitor.events_kept"),
        (#"{"monitor":[]}"#, "monitor"),
        (#"{"mcpServers":[{"name":"a","command":"x","monitor":{"pids":{"action":"stop"}}}]}"#, "mcpServers[0].monitor.pids.action"),
    ])
    func invalid(_ text: String, _ path: String) {
        do {
            _ = try load(text)
            Issue.record("accepted \(text)")
        } catch let e as ProxyError {
            #expect(e.code == .invalidConfig)
            #expect(e.message.contains(path), "\(e.message)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func typosGetADidYouMean() throws {
        let l = try load(#"{"monitr": {}, "monitor": {"intervall": "1s", "memory": {"shar": 0.5}, "crash_loop": {"widow": "1s"}}}"#)
        let messages = l.warnings.map(\.message)
        #expect(messages.contains { $0.contains("did you mean \"monitor\"?") }, "\(messages)")
        #expect(messages.contains { $0.contains("did you mean \"interval\"?") }, "\(messages)")
        #expect(messages.contains { $0.contains("did you mean \"share\"?") }, "\(messages)")
        #expect(messages.contains { $0.contains("did you mean \"window\"?") }, "\(messages)")
    }

    @Test func aServerMonitorTakesNoGlobalOnlyKeys() throws {
        let l = try load(#"{"mcpServers":[{"name":"a","command":"x","monitor":{"interval":"1s"}}]}"#)
        #expect(l.warnings.contains { $0.path == "mcpServers[0].monitor.interval" }, "\(l.warnings)")
    }
}
