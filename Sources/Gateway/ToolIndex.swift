import Foundation
import ProxyCore

/// A tool as clients see it through the proxy.
public struct CatalogTool: Sendable {
    public var server: String
    public var tool: ToolDefinition
    /// `server:tool`
    public var qualifiedName: String { "\(server):\(tool.name)" }
    /// `server__tool` (direct routing mode)
    public var directName: String { "\(server)__\(tool.name)" }
}

/// BM25 (Okapi, k1 = 1.2, b = 0.75) over each tool's name, server name, description and
/// parameter names/descriptions. Names are weighted up by repeating their tokens.
///
/// An inverted index: each term's postings hold the documents that contain it with their BM25
/// weight precomputed at build time, so a query costs the postings of its terms (not the whole
/// catalogue) plus a top-k selection of the documents they touch (no sort of every hit).
/// Memory is one posting (16 bytes) and one term count (8 bytes) per distinct term of a tool.
public struct ToolIndex: Sendable {
    public struct Hit: Sendable {
        public var tool: CatalogTool
        public var score: Double
    }
    /// A term of a document and how often it occurs there.
    struct TermCount: Sendable {
        var term: Int32
        var count: Int32
    }
    /// One document of a term's postings, with the term's BM25 weight in it.
    struct Posting: Sendable {
        var doc: Int32
        var weight: Float64
    }
    private var docs: [CatalogTool] = []
    /// `docs[i].qualifiedName`, computed once (ties are broken by name).
    private var names: [String] = []
    /// Term counts and token count of each document (kept so a rebuild can reuse them).
    private var docTerms: [[TermCount]] = []
    private var docLengths: [Int32] = []
    /// Term ids; carried over to indexes built by `reusing` so reused term counts stay valid.
    private var vocabulary: [String: Int32] = [:]
    /// Postings by term id.
    private var postings: [[Posting]] = []
    private var avgLength: Double = 1
    let k1 = 1.2
    let b = 0.75

    /// Builds the index; documents of `previous` whose tool is unchanged are reused rather than
    /// tokenized again (the catalog is rebuilt whenever any server's tools change: with hundreds
    /// of servers, re-tokenizing every tool each time dominated start-up).
    public init(tools: [CatalogTool], reusing previous: ToolIndex? = nil) {
        var old: [String: Int] = [:]
        // A vocabulary that grew far beyond the live terms (tools came and went) starts afresh.
        if let previous, previous.vocabulary.count <= 2 * max(1024, previous.postings.lazy.filter { !$0.isEmpty }.count) {
            vocabulary = previous.vocabulary
            old.reserveCapacity(previous.docs.count)
            for (i, n) in previous.names.enumerated() { old[n] = i }
        }
        docs = tools
        names = tools.map(\.qualifiedName)
        docTerms.reserveCapacity(tools.count)
        docLengths.reserveCapacity(tools.count)
        var counts: [Int32: Int32] = [:]
        var vocabulary = self.vocabulary
        for (i, t) in tools.enumerated() {
            if let previous, let j = old[names[i]], previous.docs[j].tool.raw == t.tool.raw {
                docTerms.append(previous.docTerms[j])
                docLengths.append(previous.docLengths[j])
                continue
            }
            counts.removeAll(keepingCapacity: true)
            var length: Int32 = 0
            Self.forEachToken(of: t) { tok in
                let id: Int32
                if let known = vocabulary[tok] { id = known } else {
                    id = Int32(vocabulary.count)
                    vocabulary[tok] = id
                }
                counts[id, default: 0] += 1
                length += 1
            }
            docTerms.append(counts.map { TermCount(term: $0.key, count: $0.value) }.sorted { $0.term < $1.term })
            docLengths.append(length)
        }
        self.vocabulary = vocabulary
        let n = Double(tools.count)
        avgLength = tools.isEmpty ? 1 : Double(docLengths.reduce(0) { $0 + Int($1) }) / n
        var df = [Int32](repeating: 0, count: vocabulary.count)
        for terms in docTerms { for tc in terms { df[Int(tc.term)] += 1 } }
        postings = df.map { d in
            var p: [Posting] = []
            p.reserveCapacity(Int(d))
            return p
        }
        for (doc, terms) in docTerms.enumerated() {
            let norm = k1 * (1 - b + b * Double(docLengths[doc]) / avgLength)
            for tc in terms {
                let d = Double(df[Int(tc.term)])
                let idf = log(1 + (n - d + 0.5) / (d + 0.5))
                let tf = Double(tc.count)
                postings[Int(tc.term)].append(Posting(doc: Int32(doc), weight: idf * (tf * (k1 + 1)) / (tf + norm)))
            }
        }
    }

    public var count: Int { docs.count }

    /// The tokens of a tool's document, in `document(for:)` order, without building the array.
    static func forEachToken(of t: CatalogTool, _ body: (String) -> Void) {
        for tok in document(for: t) { body(tok) }
    }

    static func document(for t: CatalogTool) -> [String] {
        var tokens: [String] = []
        let nameTokens = tokenize(t.tool.name)
        tokens += nameTokens + nameTokens + nameTokens  // names matter most
        tokens += tokenize(t.server) + tokenize(t.server)
        tokens += tokenize(t.tool.description)
        if let props = t.tool.inputSchema["properties"]?.objectValue {
            for (k, v) in props {
                tokens += tokenize(k) + tokenize(k)
                tokens += tokenize(v["description"]?.stringValue ?? "")
            }
        }
        return tokens
    }

    /// Lower-cased alphanumeric tokens; camelCase and snake_case split; plural "s" folded.
    public static func tokenize(_ text: String) -> [String] {
        tokenizeASCII(text) ?? tokenizeUnicode(text)
    }

    static func tokenizeUnicode(_ text: String) -> [String] {
        var out: [String] = []
        var current = ""
        var prevLower = false
        func flush() {
            if !current.isEmpty {
                var t = current.lowercased()
                if t.count > 3, t.hasSuffix("s"), !t.hasSuffix("ss") { t.removeLast() }
                out.append(t)
            }
            current = ""
        }
        for ch in text {
            if ch.isLetter || ch.isNumber {
                if ch.isUppercase, prevLower { flush() }
                current.append(ch)
                prevLower = ch.isLowercase || ch.isNumber
            } else {
                flush()
                prevLower = false
            }
        }
        flush()
        return out
    }

    /// `tokenize` for ASCII text (nearly every tool description), on bytes: the same tokens,
    /// without a Unicode property lookup per character. Nil when the text is not ASCII.
    static func tokenizeASCII(_ text: String) -> [String]? {
        var text = text
        return text.withUTF8 { p -> [String]? in
            var out: [String] = []
            var current: [UInt8] = []
            var prevLower = false
            func flush() {
                guard !current.isEmpty else { return }
                if current.count > 3, current.last == UInt8(ascii: "s"), current[current.count - 2] != UInt8(ascii: "s") {
                    current.removeLast()
                }
                out.append(String(decoding: current, as: UTF8.self))
                current.removeAll(keepingCapacity: true)
            }
            for c in p {
                if c >= 0x80 { return nil }
                let upper = c >= 0x41 && c <= 0x5A
                let lower = c >= 0x61 && c <= 0x7A
                let digit = c >= 0x30 && c <= 0x39
                if upper || lower || digit {
                    if upper, prevLower { flush() }
                    current.append(upper ? c + 0x20 : c)
                    prevLower = lower || digit
                } else {
                    flush()
                    prevLower = false
                }
            }
            flush()
            return out
        }
    }

    /// The best `limit` tools for `query`, best first; ties broken by name. `include` filters
    /// candidates before ranking (a caller's scope), so a filtered search still returns `limit`.
    public func search(_ query: String, limit: Int, where include: ((CatalogTool) -> Bool)? = nil) -> [Hit] {
        var terms: [Int32] = []
        for tok in Self.tokenize(query) {
            if let id = vocabulary[tok], !postings[Int(id)].isEmpty, !terms.contains(id) { terms.append(id) }
        }
        guard !terms.isEmpty, !docs.isEmpty, limit > 0 else { return [] }
        // Accumulate the scores of the documents the query's postings touch (every weight is > 0).
        var score = [Double](repeating: 0, count: docs.count)
        var touched: [Int32] = []
        for id in terms {
            for p in postings[Int(id)] {
                let d = Int(p.doc)
                if score[d] == 0 { touched.append(p.doc) }
                score[d] += p.weight
            }
        }
        // Top-k: the best `limit` so far, best first; a candidate no better than the last is
        // dropped with one comparison.
        func better(_ a: Int, _ b: Int) -> Bool {
            score[a] != score[b] ? score[a] > score[b] : names[a] < names[b]
        }
        var best: [Int] = []
        best.reserveCapacity(min(limit, touched.count) + 1)
        for t in touched {
            let d = Int(t)
            if best.count == limit, !better(d, best[best.count - 1]) { continue }
            if let include, !include(docs[d]) { continue }
            var lo = 0, hi = best.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if better(best[mid], d) { lo = mid + 1 } else { hi = mid }
            }
            best.insert(d, at: lo)
            if best.count > limit { best.removeLast() }
        }
        return best.map { Hit(tool: docs[$0], score: score[$0]) }
    }

    /// Names closest to `name` (edit distance on the qualified name), for "did you mean" errors.
    public static func closest(to name: String, among names: [String], limit: Int = 3) -> [String] {
        let target = Array(name.lowercased())
        let scored = names.map { ($0, editDistance(target, Array($0.lowercased()))) }
        return scored.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.prefix(limit).map(\.0)
    }

    static func editDistance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count)
        var cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            cur[0] = i
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }
}

/// The intent a caller declares with `call_tool_read` / `_write` / `_destructive`.
public enum CallIntent: String, Sendable {
    case any, read, write, destructive

    /// Nil when the intent covers what the tool needs (`IntentLevel.required(by:)`, with the MCP
    /// spec's annotation defaults), else why it does not. Read needs `readOnlyHint: true`; write
    /// needs read-only or `destructiveHint: false`; destructive and plain calls accept any tool.
    public func conflict(with tool: ToolDefinition) -> String? {
        let needed = IntentLevel.required(by: tool)
        switch self {
        case .any, .destructive: return nil
        case .read:
            if needed == .read { return nil }
            if tool.destructiveHint == true { return "the tool is annotated destructive (destructiveHint: true); use call_tool_destructive" }
            return "the tool is not annotated read-only (readOnlyHint is not true); use call_tool_write or call_tool_destructive"
        case .write:
            if needed <= .write { return nil }
            if tool.destructiveHint == true { return "the tool is annotated destructive (destructiveHint: true); use call_tool_destructive" }
            return "the tool does not say it is non-destructive (no destructiveHint: false; MCP's default is destructive); use call_tool_destructive"
        }
    }
}
