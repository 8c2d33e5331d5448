import Foundation
import ProxyCore
import Testing
@testable import MCPSecurity

/// One labelled corpus entry (Corpus/poisoned.json, Corpus/benign.json).
struct CorpusEntry {
    var id: String
    var poisoned: Bool
    var family: String
    var note: String
    var server: String
    var tool: ToolDefinition
    var otherServers: [String: [String]]

    static func load(_ file: String, subdirectory: String = "Corpus") throws -> [CorpusEntry] {
        let url = try #require(Bundle.module.url(forResource: file, withExtension: "json", subdirectory: subdirectory))
        let root = try JSONValue.parse(try Data(contentsOf: url))
        return try #require(root.arrayValue).map { e in
            var others: [String: [String]] = [:]
            for (k, v) in e["other_servers"]?.objectValue ?? [:] { others[k] = v.arrayValue?.compactMap(\.stringValue) ?? [] }
            return CorpusEntry(id: e["id"]?.stringValue ?? "?", poisoned: e["label"]?.stringValue == "poisoned",
                               family: e["family"]?.stringValue ?? "", note: e["note"]?.stringValue ?? "",
                               server: e["server"]?.stringValue ?? "srv", tool: ToolDefinition(json: e["tool"]!)!,
                               otherServers: others)
        }
    }

    /// Findings the scanner reports for this entry.
    func scan() -> [Finding] {
        ToolScanner().scan(server: server, tools: [tool], otherServers: otherServers).findings
    }
}

@Suite("Scanner corpus")
struct CorpusTests {
    @Test("corpus is large enough and labelled")
    func corpusSize() throws {
        let poisoned = try CorpusEntry.load("poisoned"), benign = try CorpusEntry.load("benign")
        #expect(poisoned.count >= 60)
        #expect(benign.count >= 60)
        #expect(poisoned.allSatisfy { $0.poisoned })
        #expect(benign.allSatisfy { !$0.poisoned })
        #expect(Set((poisoned + benign).map(\.id)).count == poisoned.count + benign.count)
        // Every rule family of the issue is represented.
        let families = Set(poisoned.map(\.family))
        for f in ["hidden-unicode", "secret-exfil", "encoded", "shadowing", "override", "concealment", "redirect"] {
            #expect(families.contains(f), "no poisoned entry of family \(f)")
        }
    }

    /// Detection means at least one hard finding (what blocks approval); soft findings are
    /// warnings and do not count either way. Printed for the report; asserted against the targets.
    @Test("recall >= 0.9 and false-positive rate <= 0.05")
    func recallAndFalsePositives() throws {
        let poisoned = try CorpusEntry.load("poisoned"), benign = try CorpusEntry.load("benign")
        var missed: [String] = [], falsePositives: [String] = []
        var softOnBenign = 0
        for e in poisoned where !e.scan().contains(where: { $0.severity == .hard }) {
            missed.append("\(e.id) (\(e.note))")
        }
        for e in benign {
            let f = e.scan()
            if let hard = f.first(where: { $0.severity == .hard }) {
                falsePositives.append("\(e.id): \(hard.ruleID) \"\(hard.excerpt)\"")
            } else if !f.isEmpty {
                softOnBenign += 1
            }
        }
        let recall = Double(poisoned.count - missed.count) / Double(poisoned.count)
        let fpr = Double(falsePositives.count) / Double(benign.count)
        print(String(format: "scanner corpus: %d poisoned, %d benign; recall %.3f (%d missed), false-positive rate %.3f (%d), benign with soft warnings only: %d",
                     poisoned.count, benign.count, recall, missed.count, fpr, falsePositives.count, softOnBenign))
        for m in missed { print("  missed: \(m)") }
        for f in falsePositives { print("  false positive: \(f)") }
        #expect(recall >= 0.9)
        #expect(fpr <= 0.05)
    }

    @Test("the scanner is deterministic")
    func deterministic() throws {
        let all = try CorpusEntry.load("poisoned") + CorpusEntry.load("benign")
        for e in all { #expect(e.scan() == e.scan()) }
    }
}
