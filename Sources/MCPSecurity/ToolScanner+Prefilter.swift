import NIOConcurrencyHelpers

/// A necessary condition for a regular expression to match, checked before running it: the
/// literal strings of which every match must contain at least one. Derived from the pattern's
/// source at init, so it cannot drift from the pattern.
///
/// Why by hand: the scanner runs ~100 ICU regular expressions over every distinct text, and with
/// 10,000 tools that was 82 % of the time from spawn to a judged catalogue (docs/benchmarks.md).
/// Most patterns are keyed on words (`\b(ignore|disregard|...)\s+...`) that a benign text does
/// not contain; a substring search rules them out for a fraction of the cost. No kept package
/// (Foundation, swift-algorithms) derives required literals from a regex.
///
/// Soundness: the derivation returns "any text may match" for everything it does not model
/// (character classes, `.`, anchors, lookarounds, inline flags, `\p`, back references), and the
/// check runs only on ASCII text, where ICU's case-insensitive matching of an ASCII literal is
/// plain ASCII case folding. `PrefilterTests` checks, over both corpora and every sentence of
/// them, that a text the gate rules out is never matched by the pattern.
struct LiteralGate: Sendable {
    /// At least one of these occurs in any match (lower-cased unless `caseSensitive`).
    let needles: [[UInt8]]
    let caseSensitive: Bool
    /// The needles by first byte (indices into `needles`): one pass over the text looks only at
    /// needles that can start at each position, instead of one pass per needle.
    let byFirst: [[Int]]

    /// The gate of `pattern`, or nil when every text may match (or the source is beyond the
    /// derivation).
    init?(pattern: String, caseSensitive: Bool) {
        var p = RegexLiterals(Array(pattern.unicodeScalars), caseSensitive: caseSensitive)
        guard let g = p.alternation(), p.atEnd, case .oneOf(let set) = g, !set.isEmpty, !set.contains([]) else { return nil }
        let needles = set.sorted { $0.count < $1.count || ($0.count == $1.count && $0.lexicographicallyPrecedes($1)) }
        var byFirst = [[Int]](repeating: [], count: 256)
        for (k, n) in needles.enumerated() { byFirst[Int(n[0])].append(k) }
        self.needles = needles
        self.byFirst = byFirst
        self.caseSensitive = caseSensitive
    }

    /// False only when no match is possible. Non-ASCII text always passes.
    func mayMatch(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { mayMatch(bytes: $0) }
    }

    func mayMatch(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = bytes.count
        var i = 0
        while i < n {
            let raw = bytes[i]
            if raw >= 0x80 { return true }
            let c = caseSensitive ? raw : Self.lower(raw)
            for k in byFirst[Int(c)] {
                let needle = needles[k]
                if needle.count > n - i { break }  // sorted by length: the rest are longer
                var j = 1
                while j < needle.count {
                    let d = caseSensitive ? bytes[i + j] : Self.lower(bytes[i + j])
                    if d != needle[j] { break }
                    j += 1
                }
                if j == needle.count { return true }
            }
            i += 1
        }
        return false
    }

    @inline(__always) static func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }
}

/// The derivation: a recursive-descent reading of the subset of ICU regex syntax the scanner
/// uses. `alternation()` returns nil on anything it does not understand (the pattern then runs
/// without a gate).
struct RegexLiterals {
    enum Literals: Equatable {
        /// No constraint: any text may match.
        case any
        /// Every match contains one of these.
        case oneOf(Set<[UInt8]>)

        /// Of two necessary conditions of one concatenation, the more selective: the one whose
        /// shortest needle is longest, then the one with fewer needles.
        static func better(_ a: Literals, _ b: Literals) -> Literals {
            guard case .oneOf(let x) = a else { return b }
            guard case .oneOf(let y) = b else { return a }
            let mx = x.map(\.count).min() ?? 0, my = y.map(\.count).min() ?? 0
            if mx != my { return mx > my ? a : b }
            return x.count <= y.count ? a : b
        }
    }

    let s: [Unicode.Scalar]
    let caseSensitive: Bool
    var i = 0

    init(_ s: [Unicode.Scalar], caseSensitive: Bool) {
        self.s = s
        self.caseSensitive = caseSensitive
    }

    var atEnd: Bool { i >= s.count }
    func peek(_ k: Int = 0) -> Unicode.Scalar? { i + k < s.count ? s[i + k] : nil }

    /// `a|b|...`: a match contains a needle of whichever branch matched.
    mutating func alternation() -> Literals? {
        var branches: [Literals] = []
        while true {
            guard let b = concatenation() else { return nil }
            branches.append(b)
            guard peek() == "|" else { break }
            i += 1
        }
        var all = Set<[UInt8]>()
        for b in branches {
            guard case .oneOf(let set) = b else { return .any }
            all.formUnion(set)
        }
        return .oneOf(all)
    }

    enum Atom {
        case literal(UInt8)
        case group(Literals)
        /// A class, `.`, an anchor, a lookaround, a group with flags: no literal known.
        case opaque
    }

    /// A sequence: every required element's needles are needles of the whole; runs of plain
    /// characters form one needle.
    mutating func concatenation() -> Literals? {
        var best = Literals.any
        var run: [UInt8] = []
        func flush() {
            if !run.isEmpty { best = Literals.better(best, .oneOf([run])) }
            run = []
        }
        while let c = peek(), c != "|", c != ")" {
            guard let atom = atom() else { return nil }
            guard let q = quantifier() else { return nil }
            switch atom {
            case .literal(let b):
                if let q {
                    // "ab+" still contains "ab", but "ab+c" need not contain "abc": end the run.
                    if q.min >= 1 { run.append(b) }
                    flush()
                } else {
                    run.append(b)
                }
            case .group(let g):
                flush()
                if q == nil || q!.min >= 1 { best = Literals.better(best, g) }
            case .opaque:
                flush()
            }
        }
        flush()
        return best
    }

    /// One atom, or nil when the syntax is not understood.
    mutating func atom() -> Atom? {
        guard let c = peek() else { return nil }
        i += 1
        switch c {
        case "(":
            var plain = true
            if peek() == "?" {
                // (?:...) is a plain group; lookarounds and inline flags are opaque.
                if peek(1) == ":" { i += 2 } else {
                    plain = false
                    i += 1
                    while let f = peek(), f != ":", f != ")", !(f == "=" || f == "!") { i += 1 }
                    guard let f = peek(), f != ")" else { return nil }  // (?i) alone: not modelled
                    i += 1
                }
            }
            guard let inner = alternation(), peek() == ")" else { return nil }
            i += 1
            return plain ? .group(inner) : .opaque
        case "[":
            // A set: skip to its closing bracket; nested sets are beyond the derivation.
            if peek() == "^" { i += 1 }
            if peek() == "]" { i += 1 }
            while let d = peek(), d != "]" {
                if d == "[" { return nil }
                i += d == "\\" ? 2 : 1
            }
            guard peek() == "]" else { return nil }
            i += 1
            return .opaque
        case "\\":
            guard let e = peek() else { return nil }
            i += 1
            if e.properties.isAlphabetic || e.properties.numericType != nil {
                // \s \w \d \b ... are classes or zero-width; \p, \x, \u, \Q, \N and back
                // references are not modelled.
                return "sSwWdDbBnrtfvAzZG".unicodeScalars.contains(e) ? .opaque : nil
            }
            return e.isASCII ? literal(UInt8(e.value)) : .opaque
        case ".", "^", "$":
            return .opaque
        case ")", "|", "*", "+", "?", "{":
            return nil
        default:
            return c.isASCII ? literal(UInt8(c.value)) : .opaque
        }
    }

    func literal(_ b: UInt8) -> Atom {
        .literal(caseSensitive ? b : LiteralGate.lower(b))
    }

    /// The quantifier after an atom: nil (none) wrapped in .some; .none when malformed.
    mutating func quantifier() -> (min: Int, max: Int?)?? {
        var q: (min: Int, max: Int?)
        switch peek() {
        case "?": q = (0, 1); i += 1
        case "*": q = (0, nil); i += 1
        case "+": q = (1, nil); i += 1
        case "{":
            i += 1
            var digits = ""
            while let d = peek(), d.properties.numericType != nil { digits.unicodeScalars.append(d); i += 1 }
            guard let m = Int(digits) else { return .none }
            var upper: Int? = m
            if peek() == "," {
                i += 1
                var more = ""
                while let d = peek(), d.properties.numericType != nil { more.unicodeScalars.append(d); i += 1 }
                upper = more.isEmpty ? nil : Int(more)
            }
            guard peek() == "}" else { return .none }
            i += 1
            q = (m, upper)
        default:
            return .some(nil)
        }
        // Lazy or possessive forms change how, not whether, it matches.
        if peek() == "?" || peek() == "+" { i += 1 }
        return .some(q)
    }
}

/// The gate of a pattern made of character classes (encoded runs, account numbers, phone
/// numbers), which the literal derivation cannot gate: every match contains a run of at least
/// `length` characters from `allowed`, stated next to the pattern it belongs to. The differential
/// test checks these like the derived ones. ASCII text only; any other text passes.
struct RunGate: Sendable {
    let allowed: [Bool]
    let length: Int

    init(_ characters: String, atLeast length: Int) {
        var allowed = [Bool](repeating: false, count: 128)
        let scalars = Array(characters.unicodeScalars)
        var k = 0
        while k < scalars.count {
            // "a-z" is a range; a "-" first or last is itself.
            if k + 2 < scalars.count, scalars[k + 1] == "-" {
                for v in scalars[k].value...scalars[k + 2].value where v < 128 { allowed[Int(v)] = true }
                k += 3
            } else {
                if scalars[k].value < 128 { allowed[Int(scalars[k].value)] = true }
                k += 1
            }
        }
        self.allowed = allowed
        self.length = length
    }

    static let digits = RunGate("0-9", atLeast: 1)
    static let alphanumeric15 = RunGate("A-Za-z0-9", atLeast: 15)
    static let base64 = RunGate("A-Za-z0-9+/_-", atLeast: 20)
    static let hex = RunGate("0-9A-Fa-f", atLeast: 24)

    func mayMatch(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            var run = 0
            for b in bytes {
                if b >= 0x80 { return true }
                if allowed[Int(b)] { run += 1; if run >= length { return true } } else { run = 0 }
            }
            return false
        }
    }
}
