import Foundation
import ProxyCore

/// The web console's only way to put text into a page. Everything that reaches the page from
/// outside the proxy (tool names and descriptions, which are attacker text, log lines, errors,
/// server names) goes through `escape`; the page builders never interpolate a raw string.
public enum HTML {
    /// Text made safe for HTML element content: `& < > " '` become character references.
    /// Characters that would hide or reorder text (C0/C1 controls other than tab and newline,
    /// bidirectional overrides and isolates, zero-width characters, Unicode tag characters,
    /// U+FEFF) are shown as a visible `⟨U+XXXX⟩` marker instead, so a reviewer sees what a
    /// scanner would.
    public static func escape(_ s: String) -> String { encode(s, visibleMarkers: true) }

    /// A value for a double-quoted attribute: the same references as `escape`, and hidden
    /// characters as numeric references (the value round-trips exactly through a form).
    public static func attribute(_ s: String) -> String { encode(s, visibleMarkers: false) }

    static func encode(_ s: String, visibleMarkers: Bool) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count + 16)
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\n", "\t": out.unicodeScalars.append(u)
            default:
                if isHidden(u) {
                    let hex = String(format: "%04X", u.value)
                    out += visibleMarkers ? "<span class=\"invisible\">⟨U+\(hex)⟩</span>" : "&#x\(hex);"
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out
    }

    /// Characters that render as nothing, or change the order or look of what follows.
    static func isHidden(_ u: Unicode.Scalar) -> Bool {
        let v = u.value
        if v < 0x20 || (0x7F...0x9F).contains(v) { return v != 0x0A && v != 0x09 }
        switch v {
        case 0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x3164, 0xFEFF, 0xFFA0: return true
        case 0x200B...0x200F, 0x202A...0x202E, 0x2060...0x206F, 0xFFF9...0xFFFB: return true
        case 0xE0000...0xE007F: return true  // tag characters
        default: return false
        }
    }

    /// One path segment of a console URL: everything but unreserved characters percent-encoded.
    /// The result still goes through `escape` when it is put into an attribute.
    public static func pathSegment(_ s: String) -> String {
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
        let encoded = s.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
        // "." and ".." would be resolved by the browser as path steps.
        return encoded == "." ? "%2E" : encoded == ".." ? "%2E%2E" : encoded
    }

    /// A query-string value (the same encoding as a path segment).
    public static func queryValue(_ s: String) -> String { pathSegment(s) }

    /// Parses an `application/x-www-form-urlencoded` body (`+` is a space). A repeated name keeps
    /// its first value. Nil when the body is not valid percent-encoded UTF-8.
    public static func parseForm(_ body: String) -> [String: String]? {
        var out: [String: String] = [:]
        for pair in body.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String? { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let name = decode(parts[0]), let value = parts.count > 1 ? decode(parts[1]) : "" else { return nil }
            if out[name] == nil { out[name] = value }
        }
        return out
    }

    /// Pretty JSON (keys sorted, two-space indent) for showing definitions and diffing them line by line.
    public static func prettyJSON(_ v: JSONValue, indent: String = "") -> String {
        let inner = indent + "  "
        switch v {
        case .array(let a):
            if a.isEmpty { return "[]" }
            return "[\n" + a.map { inner + prettyJSON($0, indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .object(let o):
            if o.isEmpty { return "{}" }
            return "{\n" + o.keys.sorted().map { inner + JSONValue.quoted($0) + ": " + prettyJSON(o[$0]!, indent: inner) }
                .joined(separator: ",\n") + "\n" + indent + "}"
        default:
            return v.serialized()
        }
    }
}
