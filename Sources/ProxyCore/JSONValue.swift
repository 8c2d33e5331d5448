import Foundation

/// A parsed JSON value, used where the proxy inspects or builds messages (never to re-encode an
/// upstream payload that is forwarded: those stay raw bytes, see `JSONSpan`).
public enum JSONValue: Sendable, Equatable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses JSON bytes.
    ///
    /// Strict RFC 8259 JSON in UTF-8 is parsed straight from the bytes (`JSONBytesParser`): a
    /// 10,000-tool `tools/list` went through `JSONSerialization` and a bridged NSDictionary per
    /// object before, most of the time from spawn to a judged catalogue. Anything else (another
    /// encoding, a byte-order mark, invalid JSON) goes to `JSONSerialization` as before, so what
    /// is accepted and what is rejected does not change.
    public static func parse(_ data: Data) throws -> JSONValue {
        if let v = data.withUnsafeBytes({ JSONBytesParser.parse($0) }) { return v }
        let any = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        return JSONValue(any: any)
    }

    /// Converts a JSONSerialization tree.
    public init(any: Any) {
        switch any {
        case is NSNull: self = .null
        case let n as NSNumber:
            self = CFGetTypeIDIsBool(n) ? .bool(n.boolValue) : .number(n.doubleValue)
        case let s as String: self = .string(s)
        case let a as [Any]: self = .array(a.map(JSONValue.init(any:)))
        case let o as [String: Any]: self = .object(o.mapValues(JSONValue.init(any:)))
        default: self = .null
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var numberValue: Double? { if case .number(let n) = self { return n }; return nil }
    public var intValue: Int? { numberValue.flatMap { $0 == $0.rounded() && abs($0) < 9.0e15 ? Int($0) : nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { return o }; return nil }

    /// Canonical serialization: object keys sorted, no insignificant whitespace. Used for
    /// fingerprints and for messages the proxy builds itself.
    public func serialized() -> String {
        var out = ""
        write(into: &out)
        return out
    }

    public var data: Data { Data(serialized().utf8) }

    func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n):
            if n == n.rounded(), abs(n) < 9.0e15 { out += String(Int64(n)) } else { out += "\(n)" }
        case .string(let s): JSONValue.writeString(s, into: &out)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() { if i > 0 { out += "," }; v.write(into: &out) }
            out += "]"
        case .object(let o):
            out += "{"
            for (i, k) in o.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                JSONValue.writeString(k, into: &out)
                out += ":"
                o[k]!.write(into: &out)
            }
            out += "}"
        }
    }

    /// Writes a JSON string literal with the escapes JSON requires.
    public static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        out += "\""
    }

    /// A JSON string literal for `s`.
    public static func quoted(_ s: String) -> String {
        var out = ""
        writeString(s, into: &out)
        return out
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral, ExpressibleByFloatLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, b in b }))
    }
    public init(nilLiteral: ()) { self = .null }
}

/// One upstream tool as the proxy sees it.
public struct ToolDefinition: Sendable, Equatable {
    /// The tool's name on its server.
    public var name: String
    public var description: String
    public var inputSchema: JSONValue
    public var outputSchema: JSONValue?
    public var annotations: JSONValue?
    /// The tool object as the upstream sent it (parsed).
    public var raw: JSONValue
    /// Its exact bytes, when known: direct mode lists these with only the name replaced, so key
    /// order and number spelling are the upstream's. Not part of equality (a re-list that only
    /// respaces the JSON is the same tool).
    public var rawBytes: [UInt8]?

    public static func == (a: ToolDefinition, b: ToolDefinition) -> Bool {
        a.name == b.name && a.description == b.description && a.inputSchema == b.inputSchema
            && a.outputSchema == b.outputSchema && a.annotations == b.annotations && a.raw == b.raw
    }

    /// The tool object's bytes with its `name` replaced by `newName`: the upstream's exact bytes
    /// when known, else the parsed object serialized.
    public func bytes(renamedTo newName: String) -> [UInt8] {
        if let rawBytes {
            let spliced: [UInt8]? = rawBytes.withUnsafeBufferPointer { p in
                guard let m = JSONSpan.members(p, 0..<p.count), let r = m.first(where: { $0.key == "name" })?.value else { return nil }
                return Array(p[..<r.lowerBound]) + Array(JSONValue.quoted(newName).utf8) + Array(p[r.upperBound...])
            }
            if let spliced { return spliced }
        }
        guard case .object(var o) = raw else { return Array(raw.serialized().utf8) }
        o["name"] = .string(newName)
        return Array(JSONValue.object(o).serialized().utf8)
    }

    public init(name: String, description: String, inputSchema: JSONValue, outputSchema: JSONValue? = nil,
                annotations: JSONValue? = nil, raw: JSONValue? = nil) {
        self.name = name
        self.description = description
        self.inputSchema = inputSchema
        self.outputSchema = outputSchema
        self.annotations = annotations
        self.raw = raw ?? .object(["name": .string(name), "description": .string(description), "inputSchema": inputSchema])
    }

    /// Builds a definition from a `tools/list` entry; nil when it has no name.
    public init?(json: JSONValue) {
        guard let name = json["name"]?.stringValue, !name.isEmpty else { return nil }
        self.name = name
        self.description = json["description"]?.stringValue ?? ""
        self.inputSchema = json["inputSchema"] ?? .object(["type": "object"])
        self.outputSchema = json["outputSchema"]
        self.annotations = json["annotations"]
        self.raw = json
    }

    public var readOnlyHint: Bool? { annotations?["readOnlyHint"]?.boolValue }
    public var destructiveHint: Bool? { annotations?["destructiveHint"]?.boolValue }
}


/// A strict JSON (RFC 8259, UTF-8) parser from bytes to `JSONValue`; nil for anything it does not
/// accept (the caller then falls back to `JSONSerialization`). Nesting is bounded (512, as
/// `JSONSerialization`). Duplicate keys: the last one wins. Numbers are the nearest double
/// (`strtod`); Foundation's reader on Linux can be one unit in the last place off on long
/// fractions (a value it wrote itself does not always read back equal), this one is not.
enum JSONBytesParser {
    static func parse(_ bytes: UnsafeRawBufferPointer) -> JSONValue? {
        var p = JSONBytesParser.State(bytes: bytes.bindMemory(to: UInt8.self))
        p.skipSpace()
        guard let v = p.value(depth: 0) else { return nil }
        p.skipSpace()
        guard p.i == p.b.count else { return Optional<JSONValue>.none }  // not `nil`: JSONValue is nil-literal
        return v
    }

    struct State {
        let b: UnsafeBufferPointer<UInt8>
        var i = 0
        init(bytes: UnsafeBufferPointer<UInt8>) { b = bytes }

        mutating func skipSpace() {
            while i < b.count {
                let c = b[i]
                guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
                i += 1
            }
        }

        mutating func literal(_ word: StaticString, _ v: JSONValue) -> JSONValue? {
            let n = word.utf8CodeUnitCount
            guard i + n <= b.count else { return nil }
            for k in 0..<n where b[i + k] != word.utf8Start[k] { return nil }
            i += n
            return v
        }

        mutating func value(depth: Int) -> JSONValue? {
            guard i < b.count, depth <= 512 else { return nil }
            switch b[i] {
            case UInt8(ascii: "{"):
                i += 1
                var o: [String: JSONValue] = [:]
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
                while true {
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: "\""), let k = string() else { return nil }
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
                    i += 1
                    skipSpace()
                    guard let v = value(depth: depth + 1) else { return nil }
                    o[k] = v
                    skipSpace()
                    guard i < b.count else { return nil }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
                    return nil
                }
            case UInt8(ascii: "["):
                i += 1
                var a: [JSONValue] = []
                skipSpace()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                while true {
                    skipSpace()
                    guard let v = value(depth: depth + 1) else { return nil }
                    a.append(v)
                    skipSpace()
                    guard i < b.count else { return nil }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                    return nil
                }
            case UInt8(ascii: "\""): return string().map { .string($0) }
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            default: return number()
            }
        }

        /// A string starting at the opening quote.
        mutating func string() -> String? {
            i += 1
            let start = i
            // Fast path: no escapes.
            while i < b.count {
                let c = b[i]
                if c == UInt8(ascii: "\"") {
                    let s = String(validating: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
                    i += 1
                    return s
                }
                if c == UInt8(ascii: "\\") { break }
                if c < 0x20 { return nil }
                i += 1
            }
            // With escapes: collect bytes.
            var out = [UInt8](b[start..<i])
            while i < b.count {
                let c = b[i]
                if c == UInt8(ascii: "\"") {
                    i += 1
                    return String(validating: out, as: UTF8.self)
                }
                if c < 0x20 { return nil }
                if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
                i += 1
                guard i < b.count else { return nil }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    guard var u = hex4() else { return nil }
                    if (0xD800...0xDBFF).contains(u) {
                        // A high surrogate must be followed by an escaped low one.
                        guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else { return nil }
                        i += 2
                        guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
                        u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(u) {
                        return nil
                    }
                    guard let scalar = Unicode.Scalar(u) else { return nil }
                    out.append(contentsOf: String(Character(scalar)).utf8)
                default: return nil
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard i + 4 <= b.count else { return nil }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = b[i]
                let d: UInt8
                switch c {
                case 0x30...0x39: d = c - 0x30
                case 0x41...0x46: d = c - 0x41 + 10
                case 0x61...0x66: d = c - 0x61 + 10
                default: return nil
                }
                v = v << 4 | UInt32(d)
                i += 1
            }
            return v
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        mutating func number() -> JSONValue? {
            let start = i
            var negative = false
            if i < b.count, b[i] == UInt8(ascii: "-") { negative = true; i += 1 }
            guard i < b.count, b[i] >= 0x30, b[i] <= 0x39 else { return nil }
            var digits = 0
            var intValue: UInt64 = 0
            if b[i] == 0x30 {
                i += 1
                digits = 1
            } else {
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                    if digits < 18 { intValue = intValue * 10 + UInt64(b[i] - 0x30) }
                    digits += 1
                    i += 1
                }
            }
            var simple = digits <= 15
            if i < b.count, b[i] == UInt8(ascii: ".") {
                simple = false
                i += 1
                guard i < b.count, b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                simple = false
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                guard i < b.count, b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
            }
            if simple {
                // Exact in a Double (at most 15 digits).
                let v = Double(intValue)
                return .number(negative && v != 0 ? -v : v)  // "-0" is 0, as JSONSerialization reads it
            }
            guard let d = Double(String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)), d.isFinite else {
                return nil
            }
            return .number(d)
        }
    }
}
