import Foundation
import ProxyCore

/// One reading of a server, what the monitor's rules judge. Resource values are nil where the
/// kernel cannot say (a server not running, an HTTP server, a limit that is not set).
public struct MonitorSample: Sendable, Equatable {
    /// Seconds on a clock that only moves forward (the driver uses the monotonic clock).
    public var at: Double
    /// The server's process (or container) runs: resource rules apply only then.
    public var running: Bool
    public var memoryBytes: Double?
    public var memoryLimitBytes: Double?
    public var pids: Double?
    public var pidsLimit: Double?
    /// CPU time used so far by the server's cgroup or process, seconds.
    public var cpuSeconds: Double?
    /// The CPU limit in cores (nil: none; the CPU rule then judges against one core).
    public var cpuLimitCores: Double?
    /// A call was in flight at the sample, or one finished since the last sample.
    public var busy: Bool
    /// Restarts after a crash or a failed start since the server object was made (only grows
    /// for one server object; the driver makes new rules for a new object).
    public var crashRestarts: Int
    /// Refused egress attempts of the server since the monitor began (only grows), and the
    /// last one in words ("host:port (reason)").
    public var egressDenials: Int
    public var lastEgressDenial: String?

    public init(at: Double, running: Bool, memoryBytes: Double? = nil, memoryLimitBytes: Double? = nil, pids: Double? = nil,
                pidsLimit: Double? = nil, cpuSeconds: Double? = nil, cpuLimitCores: Double? = nil, busy: Bool = false,
                crashRestarts: Int = 0, egressDenials: Int = 0, lastEgressDenial: String? = nil) {
        self.at = at
        self.running = running
        self.memoryBytes = memoryBytes
        self.memoryLimitBytes = memoryLimitBytes
        self.pids = pids
        self.pidsLimit = pidsLimit
        self.cpuSeconds = cpuSeconds
        self.cpuLimitCores = cpuLimitCores
        self.busy = busy
        self.crashRestarts = crashRestarts
        self.egressDenials = egressDenials
        self.lastEgressDenial = lastEgressDenial
    }
}

/// What a firing rule reports (before the driver numbers and timestamps it).
public struct MonitorFinding: Sendable, Equatable {
    public var rule: MonitorRuleKind
    public var action: MonitorAction
    /// In words: what was measured against what limit, for how long.
    public var reason: String
    public init(rule: MonitorRuleKind, action: MonitorAction, reason: String) {
        self.rule = rule
        self.action = action
        self.reason = reason
    }
}

/// The monitor's rules for one server: samples in, findings out. A value with no I/O and no
/// clock of its own, so every rule is unit-tested with made-up samples.
///
/// Each resource rule fires once when its condition has held on every sample for its `for`
/// seconds, and is armed again only after a sample where the condition is false (a server that
/// stays over a limit is reported once, not every interval). A window rule (crash loop, denied
/// egress) fires when its count of events falls within `window` seconds, then counts afresh.
public struct MonitorRules: Sendable, Equatable {
    public var config: MonitorConfig
    /// When each condition was first seen true in the current streak (nil: false last time).
    private var since: [MonitorRuleKind: Double] = [:]
    /// Rules that fired in the current streak (re-armed when the condition clears).
    private var fired: Set<MonitorRuleKind> = []
    private var lastCPU: (at: Double, seconds: Double)?
    private var restarts: WindowCounter
    private var denials: WindowCounter

    /// - Parameters:
    ///   - restartsBaseline: the server's crash restarts when monitoring began (0 for a server
    ///     object made since).
    ///   - denialsBaseline: the server's refused egress attempts counted before (by an earlier
    ///     object of the same name).
    public init(config: MonitorConfig, restartsBaseline: Int = 0, denialsBaseline: Int = 0) {
        self.config = config
        self.restarts = WindowCounter(last: restartsBaseline)
        self.denials = WindowCounter(last: denialsBaseline)
    }

    public static func == (a: MonitorRules, b: MonitorRules) -> Bool {
        a.config == b.config && a.since == b.since && a.fired == b.fired && a.lastCPU?.at == b.lastCPU?.at
            && a.lastCPU?.seconds == b.lastCPU?.seconds && a.restarts == b.restarts && a.denials == b.denials
    }

    /// Judges one sample; returns the rules that fire now.
    public mutating func evaluate(_ s: MonitorSample) -> [MonitorFinding] {
        guard config.enabled else {
            // Events while off are not counted when the monitor is switched on again.
            reset()
            restarts.last = s.crashRestarts
            denials.last = s.egressDenials
            return []
        }
        var out: [MonitorFinding] = []
        let cl = config.crashLoop
        if let (n, span) = restarts.feed(total: s.crashRestarts, at: s.at, rule: cl) {
            out.append(MonitorFinding(rule: .crashLoop, action: config.action(of: .crashLoop),
                                      reason: "\(n) restarts after crashes or failed starts within \(Self.number(span.rounded()))s (rule crash_loop: \(cl.count) restarts within \(Self.number(cl.window))s)"))
        }
        let ed = config.egressDenied
        if let (n, span) = denials.feed(total: s.egressDenials, at: s.at, rule: ed) {
            let last = s.lastEgressDenial.map { ", the last \($0)" } ?? ""
            out.append(MonitorFinding(rule: .egressDenied, action: config.action(of: .egressDenied),
                                      reason: "\(n) refused egress attempts within \(Self.number(span.rounded()))s\(last) (rule egress_denied: \(ed.count) denials within \(Self.number(ed.window))s)"))
        }
        guard s.running else {
            // A new process gets a new cgroup: streaks and the CPU baseline start again.
            since.removeAll()
            fired.removeAll()
            lastCPU = nil
            return out
        }
        // Memory above a share of its limit.
        let mem = config.memory
        var memCond: (Bool, String)? = nil
        if mem.enabled, let used = s.memoryBytes, let limit = s.memoryLimitBytes, limit > 0 {
            memCond = (used >= mem.share * limit,
                       "memory \(Self.bytes(used)) is \(Self.percent(used / limit)) of its limit \(Self.bytes(limit))")
        }
        if let f = judge(.memory, memCond, rule: mem, at: s.at) { out.append(f) }
        // Processes at (a share of) the pids limit.
        let pr = config.pids
        var pidsCond: (Bool, String)? = nil
        if pr.enabled, let n = s.pids, let limit = s.pidsLimit, limit > 0 {
            pidsCond = (n >= (pr.share * limit).rounded(.down), "\(Int(n)) processes and threads of its limit \(Int(limit))")
        }
        if let f = judge(.pids, pidsCond, rule: pr, at: s.at) { out.append(f) }
        // CPU pegged while idle.
        let cr = config.cpu
        var cpuCond: (Bool, String)? = nil
        if let cpu = s.cpuSeconds {
            if cr.enabled, let last = lastCPU, s.at > last.at, cpu >= last.seconds {
                let cores = (cpu - last.seconds) / (s.at - last.at)
                let limit = s.cpuLimitCores ?? 1
                let what = s.cpuLimitCores == nil ? "one core" : "its limit of \(Self.number(limit)) CPUs"
                cpuCond = (cores >= cr.share * limit && !s.busy,
                           "CPU use \(Self.number(cores)) cores is \(Self.percent(cores / limit)) of \(what) with no call in flight")
            }
            lastCPU = (s.at, cpu)
        } else {
            lastCPU = nil
        }
        if let f = judge(.cpu, cpuCond, rule: cr, at: s.at) { out.append(f) }
        return out
    }

    /// One threshold rule: `cond` nil means unknown (the streak ends, as for false).
    private mutating func judge(_ kind: MonitorRuleKind, _ cond: (Bool, String)?, rule: MonitorThresholdRule, at: Double) -> MonitorFinding? {
        guard let (holds, what) = cond, holds else {
            since[kind] = nil
            fired.remove(kind)
            return nil
        }
        let start = since[kind] ?? at
        since[kind] = start
        let held = at - start
        guard held >= rule.duration, !fired.contains(kind) else { return nil }
        fired.insert(kind)
        let share = kind == .cpu ? "" : " share \(Self.number(rule.share)),"
        return MonitorFinding(rule: kind, action: config.action(of: kind),
                              reason: "\(what) for \(Self.number(held.rounded()))s (rule \(kind.rawValue):\(share) for \(Self.number(rule.duration))s)")
    }

    private mutating func reset() {
        since.removeAll()
        fired.removeAll()
        lastCPU = nil
        restarts.times.removeAll()
        denials.times.removeAll()
    }

    /// Counts events of an ever-growing total in a sliding window.
    struct WindowCounter: Sendable, Equatable {
        /// The total at the last sample.
        var last: Int
        /// When each event in the window was seen.
        var times: [Double] = []

        /// Takes the total at `at`; returns (events, seconds from the first to now) when the rule
        /// fires, and then counts afresh.
        mutating func feed(total: Int, at: Double, rule: MonitorWindowRule) -> (Int, Double)? {
            let added = total - last
            last = total
            guard rule.enabled else { times.removeAll(); return nil }
            // A flood adds at most what fires the rule (the count, not the flood, is reported).
            if added > 0 { times += Array(repeating: at, count: min(added, rule.count)) }
            times.removeAll { at - $0 > rule.window }
            guard times.count >= rule.count else { return nil }
            defer { times.removeAll() }
            return (times.count, at - (times.first ?? at))
        }
    }

    static func bytes(_ b: Double) -> String {
        let gib = 1073741824.0, mib = 1048576.0
        if b >= gib { return "\(number((b / gib * 10).rounded() / 10)) GiB" }
        if b >= mib { return "\(number((b / mib * 10).rounded() / 10)) MiB" }
        return "\(number((b / 1024).rounded())) KiB"
    }
    static func percent(_ f: Double) -> String { "\(Int((f * 100).rounded()))%" }
    static func number(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(format: "%.2f", d)
    }
}
