import Foundation
import ProxyCore

/// `mcpproxy status`: one row per server from two readings of `GET /api/v1/servers` taken
/// `elapsed` seconds apart. Counters become rates over that interval; a server that restarted in
/// between (its counters went down) shows no rate rather than a negative one. Pure, so the
/// arithmetic and the layout are unit-tested.
public struct StatusView: Sendable {
    public struct Row: Sendable, Equatable {
        public var name: String
        public var state: String
        public var approval: String
        public var isolation: String
        public var callsPerSecond: Double?
        public var errors: Int
        public var refused: Int
        /// Share of one core over the interval, in percent.
        public var cpuPercent: Double?
        public var memoryBytes: Double?
        public var pids: Int?
        /// Held by the runtime monitor: "rule: reason".
        public var hold: String? = nil
    }

    public var rows: [Row]

    public init(previous: JSONValue?, current: JSONValue, elapsed: Double) {
        var before: [String: JSONValue] = [:]
        for s in previous?["servers"]?.arrayValue ?? [] {
            if let n = s["name"]?.stringValue { before[n] = s }
        }
        rows = (current["servers"]?.arrayValue ?? []).compactMap { s in
            guard let name = s["name"]?.stringValue else { return nil }
            let stats = s["stats"]
            func count(_ v: JSONValue?, _ outcome: String) -> Double? { v?["stats"]?["calls"]?[outcome]?.numberValue }
            func total(_ v: JSONValue?) -> Double? {
                let parts = ["ok", "error", "refused", "timeout"].compactMap { count(v, $0) }
                return parts.isEmpty ? nil : parts.reduce(0, +)
            }
            func rate(_ now: Double?, _ then: Double?) -> Double? {
                guard let now, let then, elapsed > 0, now >= then else { return nil }
                return (now - then) / elapsed
            }
            let old = before[name]
            let approval: String
            if s["state"]?.stringValue == "awaiting_approval" { approval = "awaiting" }
            else if s["quarantined"]?.boolValue == true { approval = "quarantined" }
            else { approval = "approved" }
            let cpu = rate(stats?["cpu_seconds"]?.numberValue, old?["stats"]?["cpu_seconds"]?.numberValue)
            return Row(
                name: name, state: s["state"]?.stringValue ?? "?", approval: approval,
                isolation: s["isolation"]?["mode"]?.stringValue ?? "-",
                callsPerSecond: old == nil ? nil : rate(total(s), total(old)),
                errors: Int((count(s, "error") ?? 0) + (count(s, "timeout") ?? 0)),
                refused: Int(count(s, "refused") ?? 0),
                cpuPercent: cpu.map { $0 * 100 },
                memoryBytes: stats?["memory_bytes"]?.numberValue,
                pids: stats?["pids"]?.numberValue.map { Int($0) },
                hold: s["monitor_hold"].map { "\($0["rule"]?.stringValue ?? "?"): \($0["reason"]?.stringValue ?? "")" })
        }
    }

    /// The table as text: fixed columns, `-` where a value is not known.
    public func render() -> String {
        let header = ["SERVER", "STATE", "APPROVAL", "ISOLATION", "CALLS/S", "ERRORS", "REFUSED", "CPU%", "MEMORY", "PIDS"]
        let body = rows.map { r in
            [r.name, r.state, r.approval, r.isolation,
             r.callsPerSecond.map { String(format: "%.1f", $0) } ?? "-",
             String(r.errors), String(r.refused),
             r.cpuPercent.map { String(format: "%.1f", $0) } ?? "-",
             r.memoryBytes.map(Self.bytes) ?? "-",
             r.pids.map(String.init) ?? "-"]
        }
        let table = [header] + body
        let widths = header.indices.map { i in table.map { $0[i].count }.max() ?? 0 }
        let lines = table.map { line in
            line.enumerated().map { i, cell in
                i == line.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        // Each held server says why, and how a person releases it.
        let holds = rows.compactMap { r in
            r.hold.map { "\(r.name) is held by the runtime monitor (\($0)); release: mcpproxy upstream release \(r.name)" }
        }
        return (lines + holds).joined(separator: "\n")
    }

    static func bytes(_ b: Double) -> String {
        if b >= 1_073_741_824 { return String(format: "%.1f GiB", b / Double(1 << 30)) }
        if b >= 1_048_576 { return String(format: "%.1f MiB", b / Double(1 << 20)) }
        if b >= 1024 { return String(format: "%.0f KiB", b / Double(1 << 10)) }
        return String(format: "%.0f B", b)
    }

    /// The rows as JSON (`mcpproxy status --json`).
    public func json() -> JSONValue {
        .array(rows.map { r in
            var o: [String: JSONValue] = [
                "name": .string(r.name), "state": .string(r.state), "approval": .string(r.approval),
                "isolation": .string(r.isolation), "errors": .number(Double(r.errors)), "refused": .number(Double(r.refused)),
            ]
            o["calls_per_second"] = r.callsPerSecond.map { .number($0) } ?? .null
            o["cpu_percent"] = r.cpuPercent.map { .number($0) } ?? .null
            o["memory_bytes"] = r.memoryBytes.map { .number($0) } ?? .null
            o["pids"] = r.pids.map { .number(Double($0)) } ?? .null
            if let h = r.hold { o["monitor_hold"] = .string(h) }
            return .object(o)
        })
    }
}
