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
public struct ToolIndex: Sendable {
    public struct Hit: Sendable {
        public var tool: CatalogTool
        public var score: Double
    }
    private var docs: [(tool: CatalogTool, tf: [String: Int], length: Int)] = []
    private var df: [String: Int] = [:]
    private var avgLength: Double = 1
    let k1 = 1.2
    let b = 0.75

    /// Builds the index; documents of `previous` whose tool is unchanged are reused rather than
    /// tokenized again (the catalog is rebuilt whenever any server's tools change: with hundreds
    /// of servers, re-tokenizing every tool each time dominated start-up).
    public init(tools: [CatalogTool], reusing previous: ToolIndex? = nil) {
        var old: [String: (tool: CatalogTool, tf: [String: Int], length: Int)] = [:]
        if let previous {
            old.reserveCapacity(previous.docs.count)
            for d in previous.docs { old[d.tool.qualifiedName] = d }
        }
        docs.reserveCapacity(tools.count)
        for t in tools {
            let tf: [String: Int], length: Int
            if let o = old[t.qualifiedName], o.tool.tool.raw == t.tool.raw {
                (tf, length) = (o.tf, o.length)
            } else {
                let tokens = Self.document(for: t)
                var counts: [String: Int] = [:]
                for tok in tokens { counts[tok, default: 0] += 1 }
                (tf, length) = (counts, tokens.count)
            }
            for tok in tf.keys { df[tok, default: 0] += 1 }
            docs.append((t, tf, length))
        }
        avgLength = docs.isEmpty ? 1 : Double(docs.map(\.length).reduce(0, +)) / Double(docs.count)
    }

    public var count: Int { docs.count }

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
        let terms = Set(Self.tokenize(query))
        guard !terms.isEmpty, !docs.isEmpty else { return [] }
        let n = Double(docs.count)
        var hits: [Hit] = []
        for d in docs {
            if let include, !include(d.tool) { continue }
            var score = 0.0
            for term in terms {
                guard let f = d.tf[term] else { continue }
                let idf = log(1 + (n - Double(df[term]!) + 0.5) / (Double(df[term]!) + 0.5))
                let tf = Double(f)
                score += idf * (tf * (k1 + 1)) / (tf + k1 * (1 - b + b * Double(d.length) / avgLength))
            }
            if score > 0 { hits.append(Hit(tool: d.tool, score: score)) }
        }
        hits.sort { $0.score != $1.score ? $0.score > $1.score : $0.tool.qualifiedName < $1.tool.qualifiedName }
        return Array(hits.prefix(max(0, limit)))
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
