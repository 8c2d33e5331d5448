import Foundation
import ProxyCore
import Testing
@testable import MCPSecurity

/// The scanner's literal prefilter: what it derives from a pattern, and that it never rules out
/// a text the pattern matches.
@Suite("Scanner prefilter")
struct PrefilterTests {
    static func needles(_ p: String, caseSensitive: Bool = false) -> [String]? {
        LiteralGate(pattern: p, caseSensitive: caseSensitive)?.needles.map { String(decoding: $0, as: UTF8.self) }.sorted()
    }

    @Test("derivation: alternations, runs, quantifiers, groups, escapes")
    func derivation() {
        #expect(Self.needles(#"\b(ignore|disregard)\s+all\b"#) == ["disregard", "ignore"])
        #expect(Self.needles(#"ab+c"#) == ["ab"])             // "abbc" has no "abc"
        #expect(Self.needles(#"colou?r"#) == ["colo"])        // the optional "u" ends the run
        #expect(Self.needles(#"(a|b.*)"#) == ["a", "b"])
        #expect(Self.needles(#"(?<!x)foo"#) == ["foo"])       // lookbehinds are opaque
        #expect(Self.needles(#"(?-i:[Vv]alues?)\s+of\b"#) == ["of"])  // inline flags are opaque
        #expect(Self.needles(#"\$HOME/\.ssh"#) == ["$home/.ssh"])
        #expect(Self.needles(#"\$HOME"#, caseSensitive: true) == ["$HOME"])
        #expect(Self.needles(#"(^|\n)\s*#{2,}\s*(system|instructions?)\b"#) == ["instruction", "system"])
        #expect(Self.needles(#"(?:\\x[0-9A-Fa-f]{2}){8,}"#) == ["\\x"])
        #expect(Self.needles(#"(pre-?)?(approved|authori[sz]ed)"#) == ["approved", "authori"])
        #expect(Self.needles(#"\bno\s+matter\s+what\b"#) == ["matter"])
        // Nothing required, or syntax the derivation does not model: no gate at all.
        for p in [#"x?"#, #"[abc]+"#, #"a|\d+"#, #"(a)*"#, #"\p{L}+x"#, #"(a)\1"#, #"(?i)abc"#, #"[[a-z]&&[^b]]x"#, #"(ab"#, #"a{2"#] {
            #expect(Self.needles(p) == nil, "\(p)")
        }
    }

    @Test("run gates: a run of the allowed characters, long enough")
    func runGates() {
        #expect(RunGate.base64.mayMatch("token aGVsbG8gd29ybGQgaGVsbG8gd29y end"))
        #expect(!RunGate.base64.mayMatch("short aGVsbG8gd29ybGQ runs only"))
        #expect(RunGate.hex.mayMatch("deadbeefdeadbeefdeadbeef"))
        #expect(!RunGate.hex.mayMatch("deadbeefdeadbeefdeadbee"))
        #expect(RunGate.digits.mayMatch("call 5"))
        #expect(!RunGate.digits.mayMatch("no digits here"))
        #expect(RunGate.alphanumeric15.mayMatch("GB82WEST12345698765432"))
        #expect(RunGate.digits.mayMatch("é"))  // non-ASCII: the regex decides
    }

    @Test("checks: case folding on ASCII, case-sensitive needles, non-ASCII text always passes")
    func checks() throws {
        let g = try #require(LiteralGate(pattern: #"\b(ignore|disregard)\s+all\b"#, caseSensitive: false))
        #expect(g.mayMatch("Please IGNORE all that"))
        #expect(g.mayMatch("disregarD"))
        #expect(!g.mayMatch("List the repositories of an organization."))
        #expect(!g.mayMatch(""))
        #expect(g.mayMatch("ﬁle ignore"))    // non-ASCII: the regex decides
        #expect(g.mayMatch("no match here é"))
        let cs = try #require(LiteralGate(pattern: #"\bAWS_SECRET\b"#, caseSensitive: true))
        #expect(cs.mayMatch("export AWS_SECRET"))
        #expect(!cs.mayMatch("export aws_secret"))
    }

    /// Texts of both corpora: every field of every tool, each sentence of it, and upper- and
    /// lower-cased copies.
    static func texts() throws -> [String] {
        var entries: [CorpusEntry] = []
        for dir in ["Corpus", "HeldOut"] {
            entries += try CorpusEntry.load("poisoned", subdirectory: dir) + CorpusEntry.load("benign", subdirectory: dir)
        }
        var out: [String] = []
        for e in entries {
            // Every pattern the scanner has is created by now (scanning touches every lexicon).
            _ = e.scan()
            var fields = [e.tool.name, e.tool.description]
            func walk(_ v: JSONValue) {
                switch v {
                case .string(let s): fields.append(s)
                case .array(let a): a.forEach(walk)
                case .object(let o): o.values.forEach(walk)
                default: break
                }
            }
            walk(e.tool.inputSchema)
            for f in fields {
                let t = ScannedText(f)
                out.append(f)
                out.append(f.uppercased())
                out.append(f.lowercased())
                out += t.sentences.map { String(t.clean[$0]) }
            }
        }
        return out
    }

    @Test("differential: a text the gate rules out is never matched, over both corpora")
    func neverRulesOutAMatch() throws {
        let texts = try Self.texts()
        let patterns = Pattern.registry.withLockedValue { $0 }
        #expect(patterns.count > 60, "the scanner's patterns were not all created")
        var ruledOut = 0, pairs = 0, gated = 0
        for p in patterns {
            guard p.gate != nil || p.run != nil else { continue }
            gated += 1
            for t in texts {
                pairs += 1
                let ns = NSRange(t.startIndex..<t.endIndex, in: t)
                let matched = p.regex.firstMatch(in: t, options: [], range: ns) != nil
                if !p.mayMatch(t) {
                    ruledOut += 1
                    #expect(!matched, "gate of \(p.source) ruled out a matching text: \(t.prefix(200))")
                }
            }
        }
        print("prefilter: \(gated) of \(patterns.count) patterns gated; \(ruledOut) of \(pairs) pattern-text pairs ruled out")
        // The gate must earn its keep: most patterns are gated and most pairs ruled out.
        #expect(gated == patterns.count, "\(gated) of \(patterns.count) patterns gated")
        #expect(ruledOut * 2 >= pairs, "\(ruledOut) of \(pairs) pattern-text pairs ruled out")
    }
}
