import Foundation
import ProxyCore


/// The in-process tool-definition scanner: pure and deterministic (same input, same findings, in
/// the same order). It reads every text a model will see about a tool (name, description, schema
/// keys and strings, annotation title) and looks for the published tool-poisoning patterns:
/// hidden Unicode, injected instructions, references to secrets, encoded payloads and
/// cross-server shadowing. docs/security.md lists the rules, what they catch and what they miss.
public struct ToolScanner: Sendable {
    public init() {}

    /// The scanner's name in reports.
    public static let name = "builtin"

    /// Scans one server's tools. `otherServers` maps every other server to its tool names, for
    /// the shadowing rules.
    ///
    /// A field's findings depend only on its text, on whether it is a parameter's text, and on
    /// `otherServers`; so each distinct text of the list is scanned once (catalogues repeat the
    /// same parameter descriptions and schema strings in thousands of tools), the distinct texts
    /// in parallel over the cores, and every tool then gets the findings of its fields in field
    /// order: the same findings, in the same order, as `scan(tool:)` tool by tool
    /// (ScannerDifferentialTests).
    public func scan(server: String, tools: [ToolDefinition], otherServers: [String: [String]]) -> ScanReport {
        var others: [(server: String, tool: String)] = []
        for (s, names) in otherServers.sorted(by: { $0.key < $1.key }) where s != server {
            for n in names.sorted() { others.append((s, n)) }
        }
        // 1. Every tool's fields, as indexes into the distinct (text, parameter) pairs.
        struct Key: Hashable {
            var text: String
            var parameter: Bool
        }
        var keys: [(key: Key, field: String)] = []
        var keyIndex: [Key: Int] = [:]
        var toolFields: [[(field: String, key: Int)]] = []
        toolFields.reserveCapacity(tools.count)
        for tool in tools {
            var list: [(field: String, key: Int)] = []
            for (field, text) in ToolScanner.fields(of: tool) where !text.isEmpty {
                let key = Key(text: text, parameter: ToolContext.isParameterText(field))
                if let i = keyIndex[key] {
                    list.append((field, i))
                } else {
                    keyIndex[key] = keys.count
                    list.append((field, keys.count))
                    keys.append((key, field))
                }
            }
            toolFields.append(list)
        }
        keyIndex = [:]
        let distinct = keys, otherTools = others
        // 2. Each distinct text scanned once, alone (as the first field that had it), in parallel.
        var byKey = [[Finding]](repeating: [], count: keys.count)
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let chunks = keys.count < 64 || cores == 1 ? 1 : min(cores * 8, keys.count / 8)
        let size = (keys.count + chunks - 1) / max(1, chunks)
        byKey.withUnsafeMutableBufferPointer { out in
            let out = UnsafeSendableBuffer(out)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                for k in min(distinct.count, c * size)..<min(distinct.count, (c + 1) * size) {
                    var ctx = ToolContext(tool: "", others: otherTools)
                    ctx.scanField(distinct[k].field, distinct[k].key.text)
                    out.buffer[k] = ctx.findings
                }
            }
        }
        // 3. Each tool: its fields' findings, then its parameter names, as `scan(tool:)` does.
        var findings: [Finding] = []
        for (tool, fields) in zip(tools, toolFields) {
            var ctx = ToolContext(tool: tool.name, others: others)
            for (field, k) in fields {
                for var f in byKey[k] {
                    f.tool = tool.name
                    f.field = field
                    ctx.findings.append(f)
                }
            }
            findings += ToolScanner.finish(tool, &ctx)
        }
        return ScanReport(server: server, findings: findings)
    }

    /// Scans one tool.
    public func scan(tool: ToolDefinition, otherServerTools: [(server: String, tool: String)] = []) -> [Finding] {
        var ctx = ToolContext(tool: tool.name, others: otherServerTools)
        for (field, text) in ToolScanner.fields(of: tool) {
            ctx.scanField(field, text)
        }
        return ToolScanner.finish(tool, &ctx)
    }

    /// After the fields: the parameter-name rule, then one finding per rule, field and span, in
    /// a stable order.
    static func finish(_ tool: ToolDefinition, _ ctx: inout ToolContext) -> [Finding] {
        var names: [(String, String)] = []
        ToolScanner.propertyNames(tool.inputSchema, path: "inputSchema", into: &names)
        for (path, name) in names { ctx.scanParameterName(path, name) }
        ctx.finishTool()
        var seen = Set<String>()
        return ctx.findings.filter {
            seen.insert("\($0.ruleID)|\($0.field)|\($0.span.start)|\($0.span.end)").inserted
        }
    }

    /// Every text of a tool a model sees, with its field path, in a stable order.
    static func fields(of tool: ToolDefinition) -> [(String, String)] {
        var out: [(String, String)] = [("name", tool.name), ("description", tool.description)]
        collect(tool.inputSchema, path: "inputSchema", into: &out)
        if let o = tool.outputSchema { collect(o, path: "outputSchema", into: &out) }
        if let title = tool.annotations?["title"]?.stringValue { out.append(("annotations.title", title)) }
        if let title = tool.raw["title"]?.stringValue { out.append(("title", title)) }
        return out
    }

    static func collect(_ value: JSONValue, path: String, into out: inout [(String, String)]) {
        switch value {
        case .string(let s): out.append((path, s))
        case .array(let a): for (i, v) in a.enumerated() { collect(v, path: "\(path)[\(i)]", into: &out) }
        case .object(let o):
            for k in o.keys.sorted() {
                // Keys are text the model reads too (property names); scan them as their own field.
                if k.unicodeScalars.contains(where: { $0.value > 0x7E || $0.value < 0x20 }) || k.count > 40 {
                    out.append(("\(path).\(k)#key", k))
                }
                collect(o[k]!, path: "\(path).\(k)", into: &out)
            }
        default: break
        }
    }
}

/// Lets `DispatchQueue.concurrentPerform` iterations write disjoint slots of one buffer.
struct UnsafeSendableBuffer<T>: @unchecked Sendable {  // @unchecked: each iteration writes its own slot; the buffer is read after all of them
    let buffer: UnsafeMutableBufferPointer<T>
    init(_ buffer: UnsafeMutableBufferPointer<T>) { self.buffer = buffer }
}

/// Per-tool scanning state: rules that need several fields (a secret path in the description and
/// an instruction in a parameter) are decided in `finishTool`.
struct ToolContext {
    let tool: String
    let others: [(server: String, tool: String)]
    var findings: [Finding] = []

    init(tool: String, others: [(server: String, tool: String)]) {
        self.tool = tool
        self.others = others
    }

    mutating func add(_ rule: Rule, _ field: String, _ text: ScannedText, _ span: Finding.Span, excerpt: String? = nil) {
        findings.append(Finding(ruleID: rule.id, severity: rule.severity, tool: tool, field: field, span: span,
                                excerpt: excerpt ?? text.excerpt(span), message: rule.message))
    }

    mutating func scanField(_ field: String, _ raw: String) {
        guard !raw.isEmpty else { return }
        let text = ScannedText(raw)
        scanUnicode(field, text)
        scanPhrases(field, text, in: text.clean, decodedFrom: nil)
        let matches = FieldMatches(text.clean)
        scanSentences(field, text, matches)
        scanIntent(field, text, matches)
        scanEncoded(field, text)
    }

    mutating func finishTool() {}

    // MARK: Hidden Unicode

    mutating func scanUnicode(_ field: String, _ text: ScannedText) {
        let s = text.original
        var i = 0
        while i < s.count {
            let u = s[i]
            let rule = Rule.unicodeRule(for: u, in: s, at: i)
            guard let rule else { i += 1; continue }
            // One finding per run of the same kind.
            var j = i + 1
            while j < s.count, Rule.unicodeRule(for: s[j], in: s, at: j)?.id == rule.id { j += 1 }
            let span = Finding.Span(start: i, end: j)
            var excerpt = text.excerpt(span, context: 20)
            if rule.id == Rule.tagCharacters.id {
                let hidden = String(String.UnicodeScalarView(s[i..<j].compactMap {
                    (0xE0020...0xE007E).contains($0.value) ? Unicode.Scalar($0.value - 0xE0000) : nil
                }))
                excerpt = "hidden text: \"\(hidden.prefix(200))\""
            }
            add(rule, field, text, span, excerpt: excerpt)
            i = j
        }
    }

    // MARK: Phrases

    /// Single-pattern rules over `haystack` (the clean text, or text decoded from an encoded run).
    /// For decoded text the finding is reported as `encoded.payload` at `decodedFrom`.
    mutating func scanPhrases(_ field: String, _ text: ScannedText, in haystack: String, decodedFrom: Finding.Span?) {
        var chosen: [Range<String.Index>]?  // "... the user gives" in the haystack, computed when needed
        for rule in Rule.phraseRules {
            for pattern in rule.patterns {
                for r in pattern.matches(in: haystack) {
                    // Handing the conversation to recipients the user chose is the user's request
                    // ("Forward the entire conversation to the recipients you give").
                    if decodedFrom == nil, rule.id == Rule.conversation.id, let sentence = text.sentence(containing: r.lowerBound) {
                        if chosen == nil { chosen = IntentLexicon.userChosen.matches(in: haystack) }
                        if chosen!.contains(where: { sentence.contains($0.lowerBound) }) { continue }
                    }
                    if let decodedFrom {
                        add(.encodedPayload, field, text, decodedFrom,
                            excerpt: "decodes to: \(ScannedText.visible(haystack.unicodeScalars.prefix(160))) [\(rule.id)]")
                        return
                    }
                    add(rule, field, text, text.span(of: r))
                }
            }
        }
    }

    // MARK: Co-occurrence within a sentence

    mutating func scanSentences(_ field: String, _ text: ScannedText, _ matches: FieldMatches) {
        let clean = text.clean
        // Other servers' tool names that occur in this field at all (one search per name per field).
        // Tokens keep "-", "." and "_" so names like "fs.read_file" stay whole.
        var tokens = Set<Substring>()
        for t in clean.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") }) {
            tokens.insert(t)
            var trimmed = t
            while let last = trimmed.last, last == "." || last == "-" { trimmed = trimmed.dropLast() }
            tokens.insert(trimmed)
        }
        let mentioned = others.filter { tokens.contains(Substring($0.tool)) && ToolContext.isDistinctive($0.tool) }
        let m = matches
        let mentions = mentioned.map { ($0, ToolContext.wordRanges(of: $0.tool, in: clean)) }
        for range in text.sentences {
            // Patterns with gaps (".{0,40}") are matched on the sentence alone, and only when
            // their cheap gate matched; the rest come from the per-field cache.
            func inSentence(_ p: Pattern) -> Range<String.Index>? {
                p.firstMatch(in: clean, range: range)
            }

            // Secrets: a sensitive path or a dump of the environment, plus an instruction to read or
            // hand it over.
            if let s = m.first(Lexicon.sensitive, in: range) {
                let directed = (m.has(Lexicon.readOrTransfer, in: range) && m.has(Lexicon.directive, in: range))
                    || m.has(Lexicon.contentsOf, in: range)
                    || (m.has(Lexicon.transfer, in: range) && m.has(Lexicon.intoParameter, in: range))
                add(directed ? .secretExfiltration : .sensitivePath, field, text, text.span(of: s))
            }

            // Redirection: an instruction to send or copy data to a literal address.
            let addresses = m.matches(Lexicon.address, in: range).filter { !Lexicon.isDocumentationAddress(String(clean[$0])) }
            let insists = m.has(Lexicon.insistence, in: range)
            let destination = addresses.first ?? m.first(Lexicon.paymentDestination, in: range)
            if let a = destination, m.has(Lexicon.redirectVerb, in: range) && insists {
                add(.exfilRedirect, field, text, text.span(of: a))
            } else if insists || destination != nil, m.has(Lexicon.changeVerb, in: range), let c = inSentence(Lexicon.changeRecipient) {
                // "change the recipient/IBAN/wallet to ..." with insistence or a literal destination.
                add(.exfilRedirect, field, text, text.span(of: destination ?? c))
            }

            // Shadowing: naming another server's tool, or rewriting how other tools behave.
            for ((server, _), ranges) in mentions {
                for r in ranges where r.lowerBound >= range.lowerBound && r.upperBound <= range.upperBound {
                    let hard = m.has(Lexicon.behaviour, in: range)
                    add(hard ? .shadowingCrossServer : .mentionsOtherServerTool, field, text, text.span(of: r),
                        excerpt: "\(text.excerpt(text.span(of: r), context: 60)) (tool of server \"\(server)\")")
                }
            }
            if let r = m.first(Lexicon.otherTools, in: range) {
                // A hook on other tools ("after any other tool ...") overrides their behaviour when
                // it also hands something over or insists; "call this after any other tool that
                // changes files" is an ordering hint.
                let hooked = m.has(Lexicon.hookOnOthers, in: range)
                    && (m.has(IntentLexicon.handOver, in: range) || m.has(Lexicon.directive, in: range))
                if hooked || inSentence(Lexicon.sideEffect) != nil {
                    add(.behaviourOverride, field, text, text.span(of: r))
                } else if m.has(Lexicon.preference, in: range) {
                    add(.toolPreference, field, text, text.span(of: r))
                }
            }
        }
    }

    /// Whole-word occurrences of `word` in `text` (case-sensitive; a word character is a letter,
    /// digit or underscore). Plain substring search: this runs for every other server's tool in
    /// every sentence, so no regular expression is compiled here.
    static func wordRanges(of word: String, in text: String) -> [Range<String.Index>] {
        var out: [Range<String.Index>] = []
        var from = text.startIndex
        func isWordChar(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" }
        while from < text.endIndex, let r = text.range(of: word, range: from..<text.endIndex) {
            let beforeOK = r.lowerBound == text.startIndex || !isWordChar(text[text.index(before: r.lowerBound)])
            let afterOK = r.upperBound == text.endIndex || !isWordChar(text[r.upperBound])
            if beforeOK && afterOK { out.append(r) }
            from = r.upperBound
        }
        return out
    }

    /// A tool name distinctive enough that a mention is a reference to it, not an English word.
    static func isDistinctive(_ name: String) -> Bool {
        guard name.count >= 4 else { return false }
        if name.contains("_") || name.contains("-") || name.contains(".") { return true }
        if name.contains(where: { $0.isNumber }) { return true }
        let chars = Array(name)
        return chars.dropFirst().contains(where: { $0.isUppercase }) && chars.contains(where: { $0.isLowercase })
    }

    // MARK: Encoded payloads

    mutating func scanEncoded(_ field: String, _ text: ScannedText) {
        let clean = text.clean
        for r in Lexicon.base64Run.matches(in: clean) + Lexicon.hexRun.matches(in: clean) + Lexicon.escapedHex.matches(in: clean) {
            let token = String(clean[r])
            guard let decoded = Decoder.decode(token), decoded.count >= 8 else { continue }
            let span = text.span(of: r)
            if Decoder.looksMalicious(decoded) {
                add(.encodedPayload, field, text, span,
                    excerpt: "decodes to: \(ScannedText.visible(decoded.unicodeScalars.prefix(160)))")
                continue
            }
            let before = findings.count
            scanPhrases(field, text, in: decoded, decodedFrom: span)
            if findings.count == before, Decoder.isWordyText(decoded) {
                add(.encodedText, field, text, span,
                    excerpt: "decodes to: \(ScannedText.visible(decoded.unicodeScalars.prefix(160)))")
            }
        }
    }
}

/// Decoding of base64 and hex runs found in descriptions.
enum Decoder {
    static func decode(_ token: String) -> String? {
        if token.hasPrefix("\\x") {
            let hex = token.replacingOccurrences(of: "\\x", with: "")
            return printable(hexBytes(hex))
        }
        let isHex = token.count % 2 == 0 && token.allSatisfy { $0.isHexDigit }
        if isHex, let s = printable(hexBytes(token)) { return s }
        var b64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        b64 = b64.trimmingCharacters(in: CharacterSet(charactersIn: "="))
        while b64.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64) else { return nil }
        return printable([UInt8](data))
    }

    static func hexBytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var it = hex.makeIterator()
        while let a = it.next(), let b = it.next() {
            guard let v = UInt8(String([a, b]), radix: 16) else { return [] }
            out.append(v)
        }
        return out
    }

    /// The bytes as text when they are mostly printable UTF-8 (binary blobs are not payloads a
    /// model can be told to run).
    static func printable(_ bytes: [UInt8]) -> String? {
        guard !bytes.isEmpty, let s = String(bytes: bytes, encoding: .utf8) else { return nil }
        let good = s.unicodeScalars.filter { ($0.value >= 0x20 && $0.value != 0x7F) || $0 == "\n" || $0 == "\t" || $0 == "\r" }.count
        return Double(good) / Double(max(1, s.unicodeScalars.count)) >= 0.95 ? s : nil
    }

    /// Shell pipelines, download-and-run, network addresses or secret paths in decoded text.
    static func looksMalicious(_ s: String) -> Bool {
        if Lexicon.shellish.firstMatch(in: s) != nil { return true }
        if Lexicon.address.matches(in: s).contains(where: { !Lexicon.isDocumentationAddress(String(s[$0])) }) { return true }
        if Lexicon.sensitive.firstMatch(in: s) != nil { return true }
        return false
    }

    /// Decoded text that reads like words (a sentence hidden in base64 is worth a warning).
    static func isWordyText(_ s: String) -> Bool {
        let words = s.split(whereSeparator: { $0 == " " }).filter { $0.count >= 2 && $0.allSatisfy { $0.isLetter || $0.isPunctuation } }
        return words.count >= 4
    }
}
