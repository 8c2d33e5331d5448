import Foundation

/// `monitor` (global) and `mcpServers[].monitor` (per server, over the global one).
extension Walker {
    /// Parses a `monitor` object over `base`: keys given replace the base's, the rest stay.
    /// `global`: the top-level section (which alone takes `interval` and `events_kept`).
    mutating func monitor(_ v: Any, _ path: String, base: MonitorConfig, global: Bool) -> MonitorConfig {
        var m = base
        guard let o = object(v, path) else { return m }
        unknownKeys(o, global ? MonitorConfig.keys : MonitorConfig.serverKeys, path)
        if let x = o["enabled"], let b = bool(x, "\(path).enabled") { m.enabled = b }
        if global, let x = o["interval"], let d = duration(x, "\(path).interval") {
            if d < 0.1 { error("\(path).interval", "must be at least 100ms") } else { m.interval = d }
        }
        if let x = o["action"], let a = monitorAction(x, "\(path).action") { m.action = a }
        if let x = o["memory"] { m.memory = thresholdRule(x, "\(path).memory", base: m.memory) }
        if let x = o["pids"] { m.pids = thresholdRule(x, "\(path).pids", base: m.pids) }
        if let x = o["cpu"] { m.cpu = thresholdRule(x, "\(path).cpu", base: m.cpu) }
        if let x = o["crash_loop"] { m.crashLoop = windowRule(x, "\(path).crash_loop", base: m.crashLoop, countKey: "restarts") }
        if let x = o["egress_denied"] { m.egressDenied = windowRule(x, "\(path).egress_denied", base: m.egressDenied, countKey: "denials") }
        if global, let x = o["events_kept"], let n = int(x, "\(path).events_kept", min: 1) {
            if n > 100_000 { error("\(path).events_kept", "at most 100000") } else { m.eventsKept = n }
        }
        return m
    }

    mutating func monitorAction(_ v: Any, _ path: String) -> MonitorAction? {
        guard let s = string(v, path) else { return nil }
        if let a = MonitorAction(rawValue: s) { return a }
        error(path, "expected \"event\" or \"hold\", found \"\(s)\"")
        return nil
    }

    /// A rule given as `false` is off; as an object, its keys replace the base's.
    mutating func thresholdRule(_ v: Any, _ path: String, base: MonitorThresholdRule) -> MonitorThresholdRule {
        var r = base
        if let n = v as? NSNumber, CFGetTypeIDIsBool(n) { r.enabled = n.boolValue; return r }
        guard let o = object(v, path) else { return r }
        unknownKeys(o, MonitorConfig.thresholdKeys, path)
        if let x = o["enabled"], let b = bool(x, "\(path).enabled") { r.enabled = b }
        if let x = o["share"] {
            if let n = x as? NSNumber, !CFGetTypeIDIsBool(n), n.doubleValue > 0, n.doubleValue <= 1 { r.share = n.doubleValue }
            else { error("\(path).share", "expected a fraction of the limit, more than 0 and at most 1 (for example 0.9), found \(describe(x))") }
        }
        if let x = o["for"], let d = duration(x, "\(path).for") { r.duration = d }
        if let x = o["action"], let a = monitorAction(x, "\(path).action") { r.action = a }
        return r
    }

    /// A window rule (`crash_loop`, `egress_denied`): `false` is off; an object's keys replace
    /// the base's.
    mutating func windowRule(_ v: Any, _ path: String, base: MonitorWindowRule, countKey: String) -> MonitorWindowRule {
        var r = base
        if let n = v as? NSNumber, CFGetTypeIDIsBool(n) { r.enabled = n.boolValue; return r }
        guard let o = object(v, path) else { return r }
        unknownKeys(o, MonitorConfig.windowKeys(countKey), path)
        if let x = o["enabled"], let b = bool(x, "\(path).enabled") { r.enabled = b }
        if let x = o[countKey], let n = int(x, "\(path).\(countKey)", min: 1) { r.count = n }
        if let x = o["window"], let d = duration(x, "\(path).window") {
            if d <= 0 { error("\(path).window", "must be more than 0s") } else { r.window = d }
        }
        if let x = o["action"], let a = monitorAction(x, "\(path).action") { r.action = a }
        return r
    }
}
