import Foundation
import ProxyCore
import Testing
@testable import MCPSecurity

/// `ToolScanner.scan(server:…)` scans each distinct field text of a list once, in parallel, and
/// hands the findings to every field with that text. It must find exactly what scanning every
/// tool on its own, field by field, finds: same findings, same order.
@Suite("Scanner: scan of distinct texts in parallel = tool-by-tool scan")
struct ScannerDifferentialTests {
    /// Every corpus tool (poisoned and benign, both corpora), each several times under other
    /// names and with its texts moved into other fields, so texts are shared across tools
    /// and across parameter/non-parameter fields.
    static func catalogue() throws -> [ToolDefinition] {
        let entries = try CorpusEntry.load("poisoned") + CorpusEntry.load("benign")
            + CorpusEntry.load("poisoned", subdirectory: "HeldOut") + CorpusEntry.load("benign", subdirectory: "HeldOut")
        var out: [ToolDefinition] = []
        for (i, e) in entries.enumerated() {
            out.append(e.tool)
            var renamed = e.tool
            renamed.name = "copy_\(i)_\(e.tool.name)"
            out.append(renamed)
            // The description as a parameter's description, and a parameter's text as a description.
            let moved = ToolDefinition(name: "moved_\(i)", description: entries[(i + 1) % entries.count].tool.description,
                                       inputSchema: ["type": "object", "properties": ["note": ["type": "string", "description": .string(e.tool.description)]]])
            out.append(moved)
        }
        return out
    }

    @Test func parallelMemoizedScanEqualsToolByToolScan() throws {
        let tools = try Self.catalogue()
        let others = ["mail": ["send_email", "list_inbox"], "fs": ["read_file", "write_file"]]
        let scanner = ToolScanner()
        let report = scanner.scan(server: "srv", tools: tools, otherServers: others)
        var othersList: [(server: String, tool: String)] = []
        for (s, names) in others.sorted(by: { $0.key < $1.key }) { for n in names.sorted() { othersList.append((s, n)) } }
        var expected: [Finding] = []
        for t in tools { expected += scanner.scan(tool: t, otherServerTools: othersList) }
        #expect(report.findings.count == expected.count)
        #expect(report.findings == expected)
        #expect(report.findings.contains { $0.severity == .hard })
    }

    /// Small lists take the one-chunk path; it must agree too.
    @Test func smallListsAgree() throws {
        let tools = Array(try Self.catalogue().prefix(40))
        let scanner = ToolScanner()
        var expected: [Finding] = []
        for t in tools { expected += scanner.scan(tool: t) }
        #expect(scanner.scan(server: "srv", tools: tools, otherServers: [:]).findings == expected)
    }
}
