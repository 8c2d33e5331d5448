import Foundation
import ProxyCore
import Testing
@testable import MCPSecurity

/// A held-out set (HeldOut/, 20 poisoned and 20 benign tool definitions written from public
/// tool-poisoning write-ups: Invariant Labs' tool poisoning and WhatsApp exfiltration, Trail of
/// Bits' line jumping, CyberArk's full-schema poisoning). It is never used to tune rules: it
/// measures how the scanner generalizes, mostly to plain-language instructions without tags or
/// trigger phrases. The floors below are the measured figures, so a change can only keep or
/// raise them (docs/security.md, "Measured on the corpus").
@Suite("Scanner held-out set")
struct HeldOutTests {
    static func load(_ file: String) throws -> [CorpusEntry] {
        try CorpusEntry.load(file, subdirectory: "HeldOut")
    }

    @Test("held-out recall and false positives are reported and do not regress")
    func heldOut() throws {
        let poisoned = try Self.load("poisoned"), benign = try Self.load("benign")
        #expect(poisoned.count == 20 && benign.count == 20)
        let caught = poisoned.filter { $0.scan().contains { $0.severity == .hard } }
        let flagged = benign.filter { $0.scan().contains { $0.severity == .hard } }
        print("scanner held-out: \(caught.count)/\(poisoned.count) poisoned hard-flagged, \(flagged.count)/\(benign.count) benign hard-flagged")
        for e in poisoned where !caught.contains(where: { $0.id == e.id }) { print("  missed: \(e.id) (\(e.note))") }
        for e in flagged { print("  false positive: \(e.id) (\(e.note))") }
        #expect(flagged.isEmpty)
        #expect(caught.count >= Self.recallFloor)
    }

    // Measured 2026-12-02 before any rule change: 7/20, 0/20 false positives. Measured 2026-12-07
    // after the intent rules (docs/security.md, "Held-out set"): 16/20, 0/20 false positives.
    static let recallFloor = 16
}
