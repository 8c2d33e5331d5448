import Foundation

/// A side-by-side line diff (longest common subsequence), for the console's view of a changed
/// tool's old and new definition.
public enum LineDiff {
    public enum Kind: String, Sendable { case same, changed, removed, added }

    /// One row of the side-by-side view: the old line (left), the new line (right).
    public struct Row: Sendable, Equatable {
        public var kind: Kind
        public var old: String?
        public var new: String?
    }

    /// Rows pairing `old` with `new`. A run of removed lines followed by added lines is shown as
    /// changed rows side by side. Inputs longer than `limit` lines each are not aligned (the
    /// quadratic table would be too big): every line then shows as changed.
    public static func rows(old: [String], new: [String], limit: Int = 1500) -> [Row] {
        if old.count > limit || new.count > limit {
            return (0..<max(old.count, new.count)).map { i in
                let o = i < old.count ? old[i] : nil, n = i < new.count ? new[i] : nil
                return Row(kind: o == n ? .same : (o == nil ? .added : n == nil ? .removed : .changed), old: o, new: n)
            }
        }
        let n = old.count, m = new.count
        // lcs[i][j]: length of the LCS of old[i...] and new[j...].
        var lcs = [[Int32]](repeating: [Int32](repeating: 0, count: m + 1), count: n + 1)
        if n > 0 && m > 0 {
            for i in stride(from: n - 1, through: 0, by: -1) {
                for j in stride(from: m - 1, through: 0, by: -1) {
                    lcs[i][j] = old[i] == new[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
                }
            }
        }
        var ops: [Row] = []
        var i = 0, j = 0
        while i < n || j < m {
            if i < n, j < m, old[i] == new[j] {
                ops.append(Row(kind: .same, old: old[i], new: new[j])); i += 1; j += 1
            } else if j < m, i == n || lcs[i][j + 1] >= lcs[i + 1][j] {
                ops.append(Row(kind: .added, old: nil, new: new[j])); j += 1
            } else {
                ops.append(Row(kind: .removed, old: old[i], new: nil)); i += 1
            }
        }
        // Pair each run of removals with the additions next to it.
        var out: [Row] = []
        var k = 0
        while k < ops.count {
            if ops[k].kind == .same { out.append(ops[k]); k += 1; continue }
            var removed: [String] = [], added: [String] = []
            while k < ops.count, ops[k].kind != .same {
                if let o = ops[k].old { removed.append(o) }
                if let a = ops[k].new { added.append(a) }
                k += 1
            }
            for r in 0..<max(removed.count, added.count) {
                let o = r < removed.count ? removed[r] : nil, a = r < added.count ? added[r] : nil
                out.append(Row(kind: o != nil && a != nil ? .changed : (o == nil ? .added : .removed), old: o, new: a))
            }
        }
        return out
    }
}
