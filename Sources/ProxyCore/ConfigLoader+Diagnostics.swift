import Foundation

/// Config mistakes that hide: typos of known keys, keys given twice, and JSON syntax errors
/// without a position people can find (docs/configuration.md, "Problems").
extension ConfigLoader {
    /// Line and column (1-based) of byte `offset` in `bytes`.
    static func lineColumn(_ bytes: [UInt8], _ offset: Int) -> (line: Int, column: Int) {
        var line = 1, col = 1
        for b in bytes[0..<min(max(0, offset), bytes.count)] { if b == 0x0A { line += 1; col = 1 } else { col += 1 } }
        return (line, col)
    }

    /// The byte offset a JSON parser's message names ("... around character 42", "at offset 42",
    /// "index 42"), when it names one.
    static func offsetInMessage(_ text: String) -> Int? {
        for marker in ["character ", "offset ", "index ", "position "] {
            guard let r = text.range(of: marker, options: .backwards) else { continue }
            let digits = text[r.upperBound...].prefix(while: { $0.isNumber })
            if let n = Int(digits) { return n }
        }
        return nil
    }

    /// Every key that appears more than once in one object, with its JSON path and the line of
    /// each occurrence. A strict parser keeps the last one without a word; we refuse instead,
    /// since which one the user meant is unknowable.
    static func duplicateKeys(_ bytes: [UInt8]) -> [(path: String, lines: [Int])] {
        var out: [(String, [Int])] = []
        bytes.withUnsafeBufferPointer { b in
            func walk(_ range: Range<Int>, _ path: String, depth: Int) {
                guard depth < 64 else { return }
                let start = JSONSpan.skipSpace(b, range.lowerBound, range.upperBound)
                guard start < range.upperBound else { return }
                if b[start] == UInt8(ascii: "{"), let members = JSONSpan.members(b, range) {
                    var seen: [String: [Int]] = [:]   // key -> byte offsets (lines only for duplicates)
                    for m in members {
                        seen[m.key, default: []].append(m.value.lowerBound)
                        walk(m.value, path.isEmpty ? m.key : "\(path).\(m.key)", depth: depth + 1)
                    }
                    for (k, offsets) in seen where offsets.count > 1 {
                        out.append((path.isEmpty ? k : "\(path).\(k)", offsets.map { lineColumn(bytes, $0).line }))
                    }
                } else if b[start] == UInt8(ascii: "["), let elements = JSONSpan.elements(b, range) {
                    for (i, e) in elements.enumerated() { walk(e, "\(path)[\(i)]", depth: depth + 1) }
                }
            }
            walk(0..<b.count, "", depth: 0)
        }
        return out.sorted { $0.0 < $1.0 }
    }

    /// Sections whose misspelling would leave servers less confined than the user wrote.
    static let confinementSections: Set<String> = ["docker_isolation", "sandbox", "isolation", "egress"]

    /// True for a JSON path inside an isolation section (`docker_isolation`, `sandbox`, a
    /// server's `isolation`), where any typo changes confinement.
    static func isConfinementPath(_ path: String) -> Bool {
        path.split(separator: ".").contains { part in
            let name = part.split(separator: "[").first.map(String.init) ?? String(part)
            return confinementSections.contains(name)
        }
    }

    /// The known key closest to `key` when it is close enough to be a typo of it.
    public static func didYouMean(_ key: String, among known: Set<String>) -> String? {
        let k = key.lowercased()
        var best: (String, Int)? = nil
        for candidate in known.sorted() {
            let limit = max(1, min(3, candidate.count / 4))
            // The distance is at least the difference in length: most keys are ruled out here.
            guard abs(k.utf8.count - candidate.utf8.count) <= limit else { continue }
            let d = editDistance(k, candidate.lowercased())
            if d <= limit, d < (best?.1 ?? .max) { best = (candidate, d) }
        }
        return best?.0
    }

    /// Levenshtein distance with transpositions counted as one edit (a common typo).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a.utf8), y = Array(b.utf8)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
        for i in 0...x.count { d[i][0] = i }
        for j in 0...y.count { d[0][j] = j }
        for i in 1...x.count {
            for j in 1...y.count {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[x.count][y.count]
    }
}
