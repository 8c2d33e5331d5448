import Foundation

/// Edits of one server entry made in the config text itself, so the user's comments, key order
/// and formatting outside the edited values survive (`mcpproxy upstream approve`, enable,
/// remove, an approved MCP addition). Positions come from the comment-blanked copy of the text
/// (`JSONC.strip` keeps every byte in place), edits are applied to the original.
///
/// Each function returns nil when it cannot splice safely; the caller then rewrites the whole
/// file. No package edits JSON-with-comments in place, hence this.
public enum ConfigSplice {
    /// The text with the server entry `name` replaced by `new`, removed (`new == nil`), or
    /// appended (`old` absent). `new` keeps `name` as in the file's form (list: a "name" key).
    public static func apply(text: [UInt8], name: String, new: [String: Any]?) -> [UInt8]? {
        let blank = JSONC.strip(text)
        return blank.withUnsafeBufferPointer { b -> [UInt8]? in
            guard let root = JSONSpan.members(b, 0..<b.count),
                  let servers = root.last(where: { $0.key == "mcpServers" })?.value else { return nil }
            let isObject = b[servers.lowerBound] == UInt8(ascii: "{")
            // Every entry: its whole range (with the key for the object form) and its value range.
            var entries: [(whole: Range<Int>, value: Range<Int>, name: String?)] = []
            if isObject {
                guard let members = JSONSpan.members(b, servers) else { return nil }
                for m in members {
                    guard let keyStart = keyStart(b, before: m.value.lowerBound) else { return nil }
                    entries.append((keyStart..<m.value.upperBound, m.value, m.key))
                }
            } else {
                guard let elements = JSONSpan.elements(b, servers) else { return nil }
                for e in elements {
                    let n = JSONSpan.members(b, e)?.last(where: { $0.key == "name" }).flatMap { JSONSpan.decodeString(b, $0.value) }
                    entries.append((e, e, n))
                }
            }
            let indent = entries.first.map { lineIndent(b, $0.whole.lowerBound) } ?? (lineIndent(b, servers.lowerBound) + 2)
            var out = text
            if let i = entries.firstIndex(where: { $0.name == name }) {
                let entry = entries[i]
                guard let new else {
                    // Remove the entry and one neighbouring comma.
                    var lower = entry.whole.lowerBound, upper = entry.whole.upperBound
                    let after = JSONSpan.skipSpace(b, upper, servers.upperBound)
                    if after < servers.upperBound, b[after] == UInt8(ascii: ",") {
                        upper = after + 1
                    } else if i > 0 {
                        lower = entries[i - 1].whole.upperBound
                    }
                    // An entry that had its line(s) to itself leaves no blank line behind (its
                    // trailing comment goes with it).
                    var lineStart = lower
                    while lineStart > 0, b[lineStart - 1] == 0x20 || b[lineStart - 1] == 0x09 { lineStart -= 1 }
                    if lineStart == 0 || b[lineStart - 1] == 0x0A {
                        var end = upper
                        while end < b.count, b[end] == 0x20 || b[end] == 0x09 || b[end] == 0x0D { end += 1 }
                        if end < b.count, b[end] == 0x0A { lower = lineStart; upper = end + 1 }
                    }
                    out.replaceSubrange(lower..<upper, with: [])
                    return out
                }
                guard let edited = editMembers(text: text, b: b, object: entry.value, new: new) else {
                    out.replaceSubrange(entry.value, with: serialize(new, indent: lineIndent(b, entry.value.lowerBound)))
                    return out
                }
                return edited
            }
            guard let new else { return text }
            // Append after the last entry (or into an empty block).
            let value = serialize(new, indent: indent)
            let insertion: [UInt8]
            let at: Int
            if let last = entries.last {
                // The comma goes right after the last entry; the new entry after the end of that
                // line, so a comment trailing the last entry stays with it.
                var lineEnd = last.whole.upperBound
                while lineEnd < b.count, b[lineEnd] == 0x20 || b[lineEnd] == 0x09 || b[lineEnd] == 0x0D { lineEnd += 1 }
                let entry = Array(repeating: UInt8(0x20), count: indent) + (isObject ? Array("\(quoted(name)): ".utf8) : []) + value
                if lineEnd < b.count, b[lineEnd] == 0x0A {
                    out.replaceSubrange(lineEnd + 1..<lineEnd + 1, with: entry + [0x0A])
                    out.replaceSubrange(last.whole.upperBound..<last.whole.upperBound, with: [UInt8(ascii: ",")])
                    return out
                }
                at = last.whole.upperBound
                insertion = Array(",\n".utf8) + entry
            } else {
                at = servers.lowerBound + 1
                insertion = Array("\n".utf8) + Array(repeating: 0x20, count: indent) + (isObject ? Array("\(quoted(name)): ".utf8) : []) + value
                    + Array("\n".utf8) + Array(repeating: 0x20, count: max(0, indent - 2))
            }
            out.replaceSubrange(at..<at, with: insertion)
            return out
        }
    }

    /// Changes only the members whose values differ (and adds new ones), leaving the rest of the
    /// entry (and its comments) as written. Nil when a member must be removed.
    static func editMembers(text: [UInt8], b: UnsafeBufferPointer<UInt8>, object: Range<Int>, new: [String: Any]) -> [UInt8]? {
        guard let members = JSONSpan.members(b, object) else { return nil }
        let indent = members.first.map { lineIndent(b, $0.value.lowerBound) } ?? (lineIndent(b, object.lowerBound) + 2)
        let oldKeys = Set(members.map(\.key))
        guard oldKeys.isSubset(of: Set(new.keys)) else { return nil }
        var edits: [(Range<Int>, [UInt8])] = []
        for m in members {
            guard let oldValue = try? JSONSerialization.jsonObject(with: Data(b[m.value]), options: [.fragmentsAllowed]) else { return nil }
            let newValue = new[m.key]!
            if !same(oldValue, newValue) { edits.append((m.value, serialize(newValue, indent: lineIndent(b, m.value.lowerBound)))) }
        }
        let added = new.keys.filter { !oldKeys.contains($0) }.sorted()
        if !added.isEmpty {
            var ins: [UInt8] = []
            for (j, k) in added.enumerated() {
                if !members.isEmpty || j > 0 { ins += Array(",".utf8) }
                ins += Array("\n".utf8) + Array(repeating: 0x20, count: indent) + Array("\(quoted(k)): ".utf8) + serialize(new[k]!, indent: indent)
            }
            let at = members.last?.value.upperBound ?? (object.lowerBound + 1)
            edits.append((at..<at, ins))
        }
        var out = text
        for (range, bytes) in edits.sorted(by: { $0.0.lowerBound > $1.0.lowerBound }) { out.replaceSubrange(range, with: bytes) }
        return out
    }

    static func same(_ a: Any, _ b: Any) -> Bool {
        guard let x = try? JSONSerialization.data(withJSONObject: [a], options: [.sortedKeys]),
              let y = try? JSONSerialization.data(withJSONObject: [b], options: [.sortedKeys]) else { return false }
        return x == y
    }

    /// Pretty JSON for a value that starts on a line indented by `indent` spaces.
    static func serialize(_ v: Any, indent: Int) -> [UInt8] {
        guard let data = try? JSONSerialization.data(withJSONObject: [v], options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]),
              let text = String(data: data, encoding: .utf8) else { return Array("null".utf8) }
        // Unwrap the one-element array and re-indent its lines to `indent`.
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.removeFirst(); lines.removeLast()
        let strip = lines.first.map { $0.prefix(while: { $0 == " " }).count } ?? 0
        let pad = String(repeating: " ", count: indent)
        let body = lines.enumerated().map { i, l in (i == 0 ? "" : pad) + String(l.dropFirst(min(strip, l.prefix(while: { $0 == " " }).count))) }
        return Array(body.joined(separator: "\n").utf8)
    }

    static func quoted(_ s: String) -> String { JSONValue.quoted(s) }

    /// Where the key string of a member whose value starts at `valueStart` begins.
    static func keyStart(_ b: UnsafeBufferPointer<UInt8>, before valueStart: Int) -> Int? {
        var i = valueStart - 1
        while i >= 0, JSONSpan.isSpace(b[i]) { i -= 1 }
        guard i >= 0, b[i] == UInt8(ascii: ":") else { return nil }
        i -= 1
        while i >= 0, JSONSpan.isSpace(b[i]) { i -= 1 }
        guard i >= 0, b[i] == UInt8(ascii: "\"") else { return nil }
        i -= 1
        while i >= 0 {
            if b[i] == UInt8(ascii: "\"") {
                var slashes = 0, j = i - 1
                while j >= 0, b[j] == UInt8(ascii: "\\") { slashes += 1; j -= 1 }
                if slashes % 2 == 0 { return i }
            }
            i -= 1
        }
        return nil
    }

    /// The indentation (leading spaces and tabs) of the line holding byte `i`.
    static func lineIndent(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> Int {
        var j = min(i, b.count)
        while j > 0, b[j - 1] != 0x0A { j -= 1 }
        var n = 0
        while j + n < b.count, b[j + n] == 0x20 || b[j + n] == 0x09 { n += 1 }
        return n
    }
}
