import Foundation
import Testing
@testable import Gateway
import ProxyCore

@Suite struct ToolIndexTests {
    func tool(_ server: String, _ name: String, _ description: String, params: [String: String] = [:]) -> CatalogTool {
        var props: [String: JSONValue] = [:]
        for (k, d) in params { props[k] = ["type": "string", "description": .string(d)] }
        return CatalogTool(server: server, tool: ToolDefinition(name: name, description: description,
                                                               inputSchema: ["type": "object", "properties": .object(props)]))
    }

    var catalog: [CatalogTool] {
        [
            tool("time", "get_current_time", "Get the current time in a specific timezone", params: ["timezone": "IANA timezone name"]),
            tool("time", "convert_time", "Convert time between timezones", params: ["source_timezone": "", "time": "", "target_timezone": ""]),
            tool("git", "git_status", "Shows the working tree status", params: ["repo_path": "Path to the repository"]),
            tool("git", "git_commit", "Records changes to the repository", params: ["message": "Commit message"]),
            tool("fetch", "fetch", "Fetches a URL from the internet and extracts its contents as markdown", params: ["url": "URL to fetch"]),
            tool("files", "read_file", "Read the complete contents of a file from the file system", params: ["path": "file path"]),
            tool("files", "write_file", "Create a new file or overwrite an existing file", params: ["path": "", "content": ""]),
        ]
    }

    @Test(arguments: [
        ("current time timezone", "time:get_current_time"),
        ("convert between timezones", "time:convert_time"),
        ("commit changes", "git:git_commit"),
        ("repository status", "git:git_status"),
        ("download a web page url", "fetch:fetch"),
        ("read a file", "files:read_file"),
        ("overwrite file content", "files:write_file"),
    ])
    func bestHit(query: String, expected: String) {
        let hits = ToolIndex(tools: catalog).search(query, limit: 3)
        #expect(hits.first?.tool.qualifiedName == expected, "\(hits.map { ($0.tool.qualifiedName, $0.score) })")
    }

    @Test func scoresDescendAndLimitHolds() {
        let hits = ToolIndex(tools: catalog).search("file time git", limit: 4)
        #expect(hits.count == 4)
        #expect(zip(hits, hits.dropFirst()).allSatisfy { $0.score >= $1.score })
    }

    @Test func noMatchAndEmptyQuery() {
        let index = ToolIndex(tools: catalog)
        #expect(index.search("zebra", limit: 5).isEmpty)
        #expect(index.search("  ", limit: 5).isEmpty)
        #expect(ToolIndex(tools: []).search("time", limit: 5).isEmpty)
    }

    @Test func rareTermsOutweighCommonOnes() {
        // "contents" appears in two tools, "markdown" only in one.
        let hits = ToolIndex(tools: catalog).search("contents markdown", limit: 1)
        #expect(hits.first?.tool.qualifiedName == "fetch:fetch")
    }

    /// The ASCII fast path gives exactly the tokens of the Unicode path, on random ASCII text
    /// (letters of both cases, digits, separators, runs of "s").
    @Test func asciiTokenizerMatchesUnicodeTokenizer() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("aAbBsSzZ09_- .:/sssSSxYq\t\n\"{}")
        for _ in 0..<3000 {
            let s = String((0..<Int.random(in: 0...40, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
            #expect(ToolIndex.tokenizeASCII(s) == ToolIndex.tokenizeUnicode(s), "\(s.debugDescription)")
        }
        #expect(ToolIndex.tokenizeASCII("café") == nil)
        #expect(ToolIndex.tokenize("Café Crèmes") == ToolIndex.tokenizeUnicode("Café Crèmes"))
    }

    /// Reusing an index's documents gives the same ranking as building from scratch, and a tool
    /// whose definition changed is indexed anew.
    @Test func indexReuseMatchesAFreshBuild() {
        let a = [tool("s", "read_file", "Read a file"), tool("s", "write_file", "Write a file"), tool("t", "search", "Search the web")]
        let old = ToolIndex(tools: a)
        let b = [a[0], tool("s", "write_file", "Upload a picture to the cloud"), a[2], tool("u", "fetch", "Fetch a URL")]
        let reused = ToolIndex(tools: b, reusing: old)
        let fresh = ToolIndex(tools: b)
        for q in ["file", "picture cloud", "web", "url fetch", "write"] {
            #expect(reused.search(q, limit: 5).map(\.tool.qualifiedName) == fresh.search(q, limit: 5).map(\.tool.qualifiedName), "\(q)")
            #expect(reused.search(q, limit: 5).map(\.score) == fresh.search(q, limit: 5).map(\.score), "\(q)")
        }
    }

    /// BM25 computed the plain way (every document scored, everything sorted): the inverted
    /// index with precomputed weights and top-k selection must rank exactly like it.
    static func bruteForce(_ tools: [CatalogTool], _ query: String, limit: Int,
                           where include: ((CatalogTool) -> Bool)? = nil) -> [(String, Double)] {
        let docs = tools.map { t -> (CatalogTool, [String: Int], Int) in
            let toks = ToolIndex.document(for: t)
            return (t, Dictionary(toks.map { ($0, 1) }, uniquingKeysWith: +), toks.count)
        }
        var df: [String: Int] = [:]
        for d in docs { for k in d.1.keys { df[k, default: 0] += 1 } }
        let n = Double(docs.count), avg = Double(docs.map(\.2).reduce(0, +)) / max(1, n)
        var out: [(String, Double)] = []
        for d in docs {
            if let include, !include(d.0) { continue }
            var s = 0.0
            for term in Set(ToolIndex.tokenize(query)) {
                guard let f = d.1[term].map(Double.init) else { continue }
                let idf = log(1 + (n - Double(df[term]!) + 0.5) / (Double(df[term]!) + 0.5))
                s += idf * (f * 2.2) / (f + 1.2 * (0.25 + 0.75 * Double(d.2) / avg))
            }
            if s > 0 { out.append((d.0.qualifiedName, s)) }
        }
        out.sort { abs($0.1 - $1.1) > 1e-9 ? $0.1 > $1.1 : $0.0 < $1.0 }
        return Array(out.prefix(limit))
    }

    @Test func invertedIndexRanksLikeBruteForceBM25() {
        var rng = SystemRandomNumberGenerator()
        let words = ["file", "read", "write", "repo", "commit", "time", "zone", "url", "fetch", "page", "issue", "pull",
                     "request", "list", "delete", "user", "channel", "message", "query", "table"]
        func text(_ k: Int) -> String { (0..<k).map { _ in words.randomElement(using: &rng)! }.joined(separator: " ") }
        for round in 0..<20 {
            let tools = (0..<Int.random(in: 1...120, using: &rng)).map { i in
                tool("s\(i % 4)", "t\(i)_\(words.randomElement(using: &rng)!)", text(Int.random(in: 0...12, using: &rng)),
                     params: [words.randomElement(using: &rng)!: text(Int.random(in: 0...5, using: &rng))])
            }
            let index = ToolIndex(tools: tools)
            for _ in 0..<10 {
                let q = text(Int.random(in: 1...4, using: &rng)), limit = Int.random(in: 1...15, using: &rng)
                let include: ((CatalogTool) -> Bool)? = round % 2 == 0 ? nil : { $0.server != "s1" }
                let got = index.search(q, limit: limit, where: include)
                let want = Self.bruteForce(tools, q, limit: limit, where: include)
                #expect(got.count == want.count, "\(q)")
                for (g, w) in zip(got, want) {
                    #expect(abs(g.score - w.1) < 1e-9, "\(q): \(g.tool.qualifiedName) \(g.score) vs \(w)")
                }
                // Names agree except where scores tie within rounding (summation order).
                let gotNames = got.map(\.tool.qualifiedName), wantNames = want.map(\.0)
                if gotNames != wantNames {
                    #expect(zip(got, want).allSatisfy { abs($0.score - $1.1) < 1e-9 }, "\(q): \(gotNames) vs \(wantNames)")
                }
            }
        }
    }

    @Test func tokenizerSplitsCases() {
        #expect(ToolIndex.tokenize("getCurrentTime repo_path HTTPServer v2") == ["get", "current", "time", "repo", "path", "httpserver", "v2"])
        #expect(ToolIndex.tokenize("files") == ["file"])
    }

    @Test func closestNames() {
        let names = catalog.map(\.qualifiedName)
        #expect(ToolIndex.closest(to: "time:get_curent_time", among: names, limit: 1) == ["time:get_current_time"])
        #expect(ToolIndex.closest(to: "git:comit", among: names, limit: 2).first == "git:git_commit")
    }
}

@Suite struct CallIntentTests {
    func tool(readOnly: Bool?, destructive: Bool?) -> ToolDefinition {
        var ann: [String: JSONValue] = [:]
        if let readOnly { ann["readOnlyHint"] = .bool(readOnly) }
        if let destructive { ann["destructiveHint"] = .bool(destructive) }
        return ToolDefinition(name: "t", description: "", inputSchema: ["type": "object"], annotations: ann.isEmpty ? nil : .object(ann))
    }

    // (intent, readOnlyHint, destructiveHint, allowed)
    @Test(arguments: [
        (CallIntent.read, true, nil, true), (.read, true, false, true), (.read, nil, nil, false), (.read, false, nil, false),
        (.read, nil, true, false), (.read, false, false, false),
        // MCP's defaults: readOnlyHint false, destructiveHint true; so an unannotated tool (or one
        // with only readOnlyHint: false) needs call_tool_destructive.
        (.write, nil, nil, false), (.write, false, nil, false), (.write, nil, false, true), (.write, false, false, true), (.write, true, nil, true), (.write, nil, true, false), (.write, false, true, false),
        (.destructive, nil, true, true), (.destructive, true, nil, true), (.destructive, nil, nil, true),
        (.any, nil, true, true), (.any, true, false, true),
    ] as [(CallIntent, Bool?, Bool?, Bool)])
    func intentTable(intent: CallIntent, readOnly: Bool?, destructive: Bool?, allowed: Bool) {
        let conflict = intent.conflict(with: tool(readOnly: readOnly, destructive: destructive))
        #expect((conflict == nil) == allowed, "\(intent) ro=\(String(describing: readOnly)) d=\(String(describing: destructive)): \(conflict ?? "allowed")")
    }
}
