import Foundation
@testable import Gateway
import ProxyCore
import Testing

/// `mcpproxy status` rows: rates from two readings, and nothing invented where a value is unknown.
@Suite("StatusView")
struct StatusViewTests {
    static func reading(_ servers: [JSONValue]) -> JSONValue { ["servers": .array(servers)] }
    static func server(_ name: String, state: String = "ready", mode: String = "sandbox", quarantined: Bool = false,
                       ok: Double = 0, error: Double = 0, refused: Double = 0, timeout: Double = 0,
                       cpu: Double? = nil, memory: Double? = nil, pids: Double? = nil) -> JSONValue {
        var stats: [String: JSONValue] = ["calls": ["ok": .number(ok), "error": .number(error), "refused": .number(refused), "timeout": .number(timeout)]]
        if let cpu { stats["cpu_seconds"] = .number(cpu) }
        if let memory { stats["memory_bytes"] = .number(memory) }
        if let pids { stats["pids"] = .number(pids) }
        return ["name": .string(name), "state": .string(state), "quarantined": .bool(quarantined),
                "isolation": ["mode": .string(mode)], "stats": .object(stats)]
    }

    @Test func ratesAreCounterDifferencesOverTheInterval() {
        let before = Self.reading([Self.server("a", ok: 10, error: 1, cpu: 2.0)])
        let after = Self.reading([Self.server("a", ok: 30, error: 2, refused: 3, timeout: 1, cpu: 2.5, memory: 3 * 1048576, pids: 4)])
        let row = StatusView(previous: before, current: after, elapsed: 2).rows[0]
        #expect(row.callsPerSecond == 12.5)  // (30+2+3+1 - (10+1)) / 2
        #expect(row.errors == 3)           // error + timeout since start
        #expect(row.refused == 3)
        #expect(row.cpuPercent == 25)
        #expect(row.memoryBytes == 3_145_728.0)
        #expect(row.pids == 4)
        #expect(row.approval == "approved")
    }

    @Test func unknownValuesStayUnknown() {
        // New server (no earlier reading), a restart (counters went down), docker (no process stats).
        let before = Self.reading([Self.server("b", ok: 50, cpu: 9)])
        let after = Self.reading([Self.server("a", mode: "docker", ok: 5), Self.server("b", ok: 1, cpu: 0.1),
                                  Self.server("p", state: "awaiting_approval"), Self.server("q", quarantined: true)])
        let rows = StatusView(previous: before, current: after, elapsed: 1).rows
        #expect(rows.map(\.name) == ["a", "b", "p", "q"])
        #expect(rows[0].callsPerSecond == nil && rows[0].cpuPercent == nil && rows[0].memoryBytes == nil)
        #expect(rows[1].callsPerSecond == nil && rows[1].cpuPercent == nil)
        #expect(rows[2].approval == "awaiting" && rows[3].approval == "quarantined")
        let text = StatusView(previous: before, current: after, elapsed: 1).render()
        let lines = text.split(separator: "\n")
        #expect(lines.count == 5)
        #expect(lines[0].hasPrefix("SERVER"))
        #expect(lines[1].contains("docker") && lines[1].hasSuffix("-"))
        // Columns line up: every row has its STATE at the header's offset.
        let stateColumn = lines[0].range(of: "STATE")!.lowerBound.utf16Offset(in: lines[0])
        for line in lines.dropFirst() {
            #expect(line.count > stateColumn)
            #expect(line[line.index(line.startIndex, offsetBy: stateColumn - 1)] == " ")
        }
        let json = StatusView(previous: before, current: after, elapsed: 1).json()
        #expect(json.arrayValue?[0]["calls_per_second"] == .null)
        #expect(json.arrayValue?[1]["pids"] == .null)
    }

    @Test func sizesAreHumanReadable() {
        #expect(StatusView.bytes(512) == "512 B")
        #expect(StatusView.bytes(2048) == "2 KiB")
        #expect(StatusView.bytes(5.5 * 1048576) == "5.5 MiB")
        #expect(StatusView.bytes(3 * 1073741824) == "3.0 GiB")
    }
}
