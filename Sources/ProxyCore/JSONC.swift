import Foundation

/// Comments in config files. JSON has none, but the default config is commented and users of
/// editors like VS Code expect `//` and `/* */` to work; we strip them (outside strings) before
/// handing the text to a strict JSON parser. Trailing commas are also removed.
public enum JSONC {
    /// Returns `bytes` with comments blanked out (kept as spaces/newlines so that positions and
    /// line numbers of the remaining text do not move) and trailing commas removed.
    public static func strip(_ bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        var i = 0
        let n = bytes.count
        var inString = false
        var lastSignificant: Int? = nil  // index of last non-space char outside comments
        while i < n {
            let c = bytes[i]
            if inString {
                if c == UInt8(ascii: "\\") { i += 2; continue }
                if c == UInt8(ascii: "\"") { inString = false; lastSignificant = i }
                i += 1
                continue
            }
            if c == UInt8(ascii: "\"") { inString = true; i += 1; continue }
            if c == UInt8(ascii: "/"), i + 1 < n, bytes[i + 1] == UInt8(ascii: "/") {
                while i < n, bytes[i] != 0x0A { out[i] = 0x20; i += 1 }
                continue
            }
            if c == UInt8(ascii: "/"), i + 1 < n, bytes[i + 1] == UInt8(ascii: "*") {
                out[i] = 0x20; out[i + 1] = 0x20; i += 2
                while i < n, !(bytes[i] == UInt8(ascii: "*") && i + 1 < n && bytes[i + 1] == UInt8(ascii: "/")) {
                    if bytes[i] != 0x0A { out[i] = 0x20 }
                    i += 1
                }
                if i < n { out[i] = 0x20; if i + 1 < n { out[i + 1] = 0x20 }; i += 2 }
                continue
            }
            if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                if let l = lastSignificant, out[l] == UInt8(ascii: ",") { out[l] = 0x20 }
            }
            if c != 0x20 && c != 0x0A && c != 0x0D && c != 0x09 { lastSignificant = i }
            i += 1
        }
        return out
    }
}
