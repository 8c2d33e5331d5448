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
    public static func parse(_ data: Data) throws -> JSONValue {
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
