import Foundation
import NIOConcurrencyHelpers

/// A compiled regular expression; `NSRegularExpression` is immutable after creation and safe to
/// share between threads, and every other property is an immutable `let`. A class: the scanner
/// passes patterns around by the hundred per text, and a struct of four references cost four
/// retains and releases per copy (11 % of a 10,000-tool scan).
final class Pattern: @unchecked Sendable {
    let regex: NSRegularExpression
    /// Literals every match contains (ToolScanner+Prefilter.swift): a text without any of them
    /// is not handed to the regular expression. Nil when every text may match.
    let gate: LiteralGate?
    /// For patterns of character classes only: the run every match contains.
    let run: RunGate?
    let source: String

    init(_ pattern: String, caseSensitive: Bool = false, run: RunGate? = nil) {
        var options: NSRegularExpression.Options = [.useUnicodeWordBoundaries]
        if !caseSensitive { options.insert(.caseInsensitive) }
        // The patterns are constants of this file: a failure is a programming error.
        regex = try! NSRegularExpression(pattern: pattern, options: options)
        gate = LiteralGate(pattern: pattern, caseSensitive: caseSensitive)
        self.run = run
        source = pattern
        Pattern.registry.withLockedValue { $0.append(self) }
    }

    /// Every pattern created so far (for the prefilter's differential test).
    static let registry = NIOLockedValueBox<[Pattern]>([])

    /// False when the prefilter rules `text` out (no match is possible).
    func mayMatch(_ text: String) -> Bool {
        if let gate, !gate.mayMatch(text) { return false }
        if let run, !run.mayMatch(text) { return false }
        return true
    }

    /// Ranges of every match in `text`.
    func matches(in text: String) -> [Range<String.Index>] {
        if !mayMatch(text) { return [] }
        let ns = NSRange(text.startIndex..<text.endIndex, in: text)
        return regex.matches(in: text, options: [], range: ns).compactMap { Range($0.range, in: text) }
    }

    /// The first match in `text`, if any.
    func firstMatch(in text: String) -> Range<String.Index>? {
        if !mayMatch(text) { return nil }
        let ns = NSRange(text.startIndex..<text.endIndex, in: text)
        return regex.firstMatch(in: text, options: [], range: ns).flatMap { Range($0.range, in: text) }
    }

    func matches(_ text: Substring) -> Bool { firstMatch(in: String(text)) != nil }

    /// The first match inside `range` of `text`, as if the range were the whole text (anchors
    /// and lookarounds do not see past it). Costs O(range), not O(text).
    func firstMatch(in text: String, range: Range<String.Index>) -> Range<String.Index>? {
        let sub = String(text[range])
        guard let r = firstMatch(in: sub) else { return nil }
        let lo = text.index(range.lowerBound, offsetBy: sub.distance(from: sub.startIndex, to: r.lowerBound))
        let hi = text.index(lo, offsetBy: sub.distance(from: r.lowerBound, to: r.upperBound))
        return lo..<hi
    }
}

/// One field's text, with invisible characters removed for phrase matching and a map back to
/// the original scalar offsets (so a span always points into the text the server sent).
struct ScannedText {
    let original: [Unicode.Scalar]
    /// The text without invisible/format characters: attackers split words with them
    /// ("ig\u{200B}nore") to dodge phrase rules.
    let clean: String
    /// For each scalar of `clean`, its offset in `original`.
    let map: [Int]
    /// Sentence ranges of `clean` (see `ScannedText.sentences(of:)`), computed once.
    let sentences: [Range<String.Index>]
    /// The last index of `clean` converted to a scalar offset: findings come mostly in text
    /// order, so `span(of:)` walks on from there instead of from the start (linear overall).
    private let offsets = OffsetCache()

    init(_ text: String) {
        original = Array(text.unicodeScalars)
        var scalars = String.UnicodeScalarView()
        var map: [Int] = []
        for (i, u) in original.enumerated() where !UnicodeRules.isInvisible(u) {
            scalars.append(u)
            map.append(i)
        }
        clean = String(scalars)
        self.map = map
        sentences = ScannedText.sentences(of: clean)
    }

    final class OffsetCache: @unchecked Sendable {  // @unchecked: one scan's cache, used by the thread running that scan only
        var index: String.Index?
        var offset = 0
    }

    /// The scalar offset in `clean` of an index.
    func scalarOffset(_ i: String.Index) -> Int {
        let u = clean.unicodeScalars
        var from = u.startIndex, base = 0
        if let last = offsets.index, last <= i { from = last; base = offsets.offset }
        let n = base + u.distance(from: from, to: i)
        offsets.index = i
        offsets.offset = n
        return n
    }

    /// The span in the original text of a range of `clean`.
    func span(of range: Range<String.Index>) -> Finding.Span {
        let start = scalarOffset(range.lowerBound)
        let end = start + clean.unicodeScalars.distance(from: range.lowerBound, to: range.upperBound)
        guard !map.isEmpty else { return .init(start: 0, end: 0) }
        let s = start < map.count ? map[start] : original.count
        let e = end > 0 && end - 1 < map.count ? map[end - 1] + 1 : s
        return .init(start: s, end: max(s, e))
    }

    /// The original text of a span, made readable.
    func excerpt(_ span: Finding.Span, context: Int = 0) -> String {
        let lo = max(0, span.start - context), hi = min(original.count, span.end + context)
        return ScannedText.visible(original[lo..<hi])
    }

    /// Renders scalars with invisible ones shown as `<U+XXXX>` and tag characters decoded, cut to
    /// 200 scalars.
    static func visible<S: Sequence>(_ scalars: S) -> String where S.Element == Unicode.Scalar {
        var out = ""
        var count = 0
        for u in scalars {
            if count >= 200 { out += "…"; break }
            if (0xE0020...0xE007E).contains(u.value), let ascii = Unicode.Scalar(u.value - 0xE0000) {
                out += "⟨tag:\(Character(ascii))⟩"
            } else if UnicodeRules.isInvisible(u) || UnicodeRules.isControl(u) {
                out += String(format: "<U+%04X>", u.value)
            } else {
                out.unicodeScalars.append(u)
            }
            count += 1
        }
        return out
    }

    /// Sentence ranges of `clean`: a sentence ends at `.`, `!` or `?` followed by white space, or
    /// at a line break. Dots inside tokens (paths, addresses) do not end a sentence.
    /// The sentence that contains an index of `clean` (binary search).
    func sentence(containing i: String.Index) -> Range<String.Index>? {
        var lo = 0, hi = sentences.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sentences[mid].upperBound <= i { lo = mid + 1 } else { hi = mid }
        }
        return lo < sentences.count && sentences[lo].contains(i) ? sentences[lo] : nil
    }

    static func sentences(of clean: String) -> [Range<String.Index>] {
        var out: [Range<String.Index>] = []
        var start = clean.startIndex
        var i = clean.startIndex
        while i < clean.endIndex {
            let c = clean[i]
            let next = clean.index(after: i)
            var boundary = false
            var end = next
            if c == "\n" {
                boundary = true
                end = i
            } else if c == "." || c == "!" || c == "?" {
                boundary = next == clean.endIndex || clean[next].isWhitespace
            }
            if boundary {
                if start < end { out.append(start..<end) }
                start = next
            }
            i = next
        }
        if start < clean.endIndex { out.append(start..<clean.endIndex) }
        return out
    }
}

/// Classification of Unicode scalars that hide or reorder text.
enum UnicodeRules {
    static func isTag(_ u: Unicode.Scalar) -> Bool { (0xE0000...0xE007F).contains(u.value) }

    static func isBidi(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C: return true
        default: return false
        }
    }

    static func isZeroWidth(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x200B, 0x200C, 0x200D, 0x2060...0x2064, 0xFEFF, 0x180E, 0x3164, 0x115F, 0x1160, 0xFFA0, 0x034F,
             0x17B4, 0x17B5:
            return true
        default: return false
        }
    }

    /// Control characters other than tab, line feed and carriage return (ESC starts terminal
    /// escape sequences that can hide text in a terminal).
    static func isControl(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x09, 0x0A, 0x0D: return false
        case 0x00...0x1F, 0x7F, 0x80...0x9F: return true
        default: return false
        }
    }

    static func isPrivateUse(_ u: Unicode.Scalar) -> Bool {
        (0xE000...0xF8FF).contains(u.value) || (0xF0000...0x10FFFF).contains(u.value)
    }

    /// Scalars a reader does not see.
    static func isInvisible(_ u: Unicode.Scalar) -> Bool {
        isTag(u) || isBidi(u) || isZeroWidth(u) || u.value == 0x00AD
    }

    /// Zero-width joiners are legitimate inside emoji sequences and in scripts that need them
    /// (Persian, Indic): allowed when both neighbours are non-ASCII and visible.
    static func isLegitimateJoiner(_ scalars: [Unicode.Scalar], at i: Int) -> Bool {
        let u = scalars[i]
        guard u.value == 0x200D || u.value == 0x200C else { return false }
        guard i > 0, i + 1 < scalars.count else { return false }
        let before = scalars[i - 1], after = scalars[i + 1]
        func ok(_ s: Unicode.Scalar) -> Bool { s.value > 0x7F && !isInvisible(s) && !isControl(s) }
        return ok(before) && (ok(after) || after.value == 0xFE0F)
    }
}

/// Matches of patterns over one field's clean text, each pattern run once per field and queried
/// per sentence: a field of n characters with s sentences costs one pass per pattern, not s.
/// Only matches that lie wholly inside the queried sentence count, as if the sentence had been
/// matched on its own. Patterns used here mark sentence starts with `(?<![^.!?\n]\s)` style
/// guards instead of `^` (see `IntentLexicon.sentenceStart`).
final class FieldMatches {
    let text: String
    private var cache: [ObjectIdentifier: [Range<String.Index>]] = [:]

    init(_ text: String) { self.text = text }

    func all(_ p: Pattern) -> [Range<String.Index>] {
        let key = ObjectIdentifier(p.regex)
        if let c = cache[key] { return c }
        let m = p.matches(in: text)
        cache[key] = m
        return m
    }

    /// Matches of `p` inside `r`, in order.
    func matches(_ p: Pattern, in r: Range<String.Index>) -> [Range<String.Index>] {
        let m = all(p)
        // First match starting at or after r.lowerBound (binary search; matches are ordered).
        var lo = 0, hi = m.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if m[mid].lowerBound < r.lowerBound { lo = mid + 1 } else { hi = mid }
        }
        var out: [Range<String.Index>] = []
        while lo < m.count, m[lo].lowerBound < r.upperBound {
            if m[lo].upperBound <= r.upperBound { out.append(m[lo]) }
            lo += 1
        }
        return out
    }

    func first(_ p: Pattern, in r: Range<String.Index>) -> Range<String.Index>? {
        matches(p, in: r).first
    }

    func has(_ p: Pattern, in r: Range<String.Index>) -> Bool { first(p, in: r) != nil }
}
