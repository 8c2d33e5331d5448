import Foundation

/// What a firing monitor rule does (`monitor.action`, or a rule's own `action`).
public enum MonitorAction: String, Sendable, Equatable, CaseIterable {
    /// Record an event (log line, `GET /api/v1/events`, metric) and leave the server running.
    case event
    /// Record the event and put the server in `held_by_monitor`: stopped, its tools refused,
    /// until a person releases it.
    case hold
}

/// The rules of the runtime monitor (docs/monitoring.md).
public enum MonitorRuleKind: String, Sendable, Equatable, CaseIterable, Codable {
    /// Memory above `share` of the server's memory limit for `for` seconds.
    case memory
    /// Processes and threads at (`share` of) the server's pids limit for `for` seconds.
    case pids
    /// CPU use above `share` of the server's CPU limit (one core without a limit) for `for`
    /// seconds while no call is in flight on it.
    case cpu
    /// `restarts` restarts within `window` seconds.
    case crashLoop = "crash_loop"
    /// `denials` refused egress attempts (docs/egress.md) within `window` seconds.
    case egressDenied = "egress_denied"
}

/// One resource rule: `{enabled, share, for, action}`.
public struct MonitorThresholdRule: Sendable, Equatable {
    public var enabled: Bool
    /// Fraction of the limit (0 < share ≤ 1).
    public var share: Double
    /// Seconds the condition must hold, sample after sample, before the rule fires.
    public var duration: Double
    /// nil: the monitor's `action`.
    public var action: MonitorAction?
    public init(enabled: Bool = true, share: Double, duration: Double, action: MonitorAction? = nil) {
        self.enabled = enabled
        self.share = share
        self.duration = duration
        self.action = action
    }
}

/// A rule that counts events in a sliding window: `{enabled, COUNT, window, action}`, where COUNT is
/// `restarts` for `crash_loop` and `denials` for `egress_denied`.
public struct MonitorWindowRule: Sendable, Equatable {
    public var enabled: Bool
    /// Events within `window` that fire the rule.
    public var count: Int
    /// Seconds.
    public var window: Double
    public var action: MonitorAction?
    public init(enabled: Bool = true, count: Int, window: Double, action: MonitorAction? = nil) {
        self.enabled = enabled
        self.count = count
        self.window = window
        self.action = action
    }
}

/// `monitor`: the runtime monitor's sampling and rules. Global, and per server (`mcpServers[].monitor`,
/// whose keys override the global ones for that server).
public struct MonitorConfig: Sendable, Equatable {
    /// Off: nothing is sampled and no rule fires.
    public var enabled: Bool = true
    /// Seconds between samples (`interval`).
    public var interval: Double = 5
    /// What a firing rule does unless the rule says otherwise.
    public var action: MonitorAction = .event
    public var memory = MonitorThresholdRule(share: 0.9, duration: 30)
    public var pids = MonitorThresholdRule(share: 1.0, duration: 0)
    public var cpu = MonitorThresholdRule(share: 0.95, duration: 60)
    public var crashLoop = MonitorWindowRule(count: 5, window: 600)
    /// A server that keeps asking for destinations its allowlist does not name is probing.
    public var egressDenied = MonitorWindowRule(count: 10, window: 60)
    /// How many recent events `GET /api/v1/events` keeps (global only).
    public var eventsKept: Int = 500

    public init() {}

    /// The action of `kind` (its own, else the monitor's).
    public func action(of kind: MonitorRuleKind) -> MonitorAction {
        switch kind {
        case .memory: return memory.action ?? action
        case .pids: return pids.action ?? action
        case .cpu: return cpu.action ?? action
        case .crashLoop: return crashLoop.action ?? action
        case .egressDenied: return egressDenied.action ?? action
        }
    }

    /// Keys of `monitor` (global); a server's `monitor` takes all but `interval` and `events_kept`.
    public static let keys: Set<String> = ["enabled", "interval", "action", "memory", "pids", "cpu", "crash_loop", "egress_denied", "events_kept"]
    public static let serverKeys: Set<String> = ["enabled", "action", "memory", "pids", "cpu", "crash_loop", "egress_denied"]
    public static let thresholdKeys: Set<String> = ["enabled", "share", "for", "action"]
    /// The keys of a window rule whose count is called `countKey`.
    public static func windowKeys(_ countKey: String) -> Set<String> { ["enabled", countKey, "window", "action"] }
}
