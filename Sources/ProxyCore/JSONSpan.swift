import Foundation

/// Byte-range access into JSON text without decoding it.
///
/// The proxy forwards upstream payloads byte-exact (STACK-NOTES: decoding into a generic value
/// type changes numbers, strings and nulls on a round trip), so it only needs to find where a
/// member's value starts and ends. No package offers a lazy, validating span scanner over raw
/// bytes, hence this small hand-written one.
public enum JSONSpan {
    /// The members of the object at `range`, in order: key and the byte range of its value.
    /// Returns nil when the text there is not a well-formed JSON object.
    public static func members(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> [(key: String, value: Range<Int>)]? {
        var i = skipSpace(b, range.lowerBound, range.upperBound)
        guard i < range.upperBound, b[i] == UInt8(ascii: "{") else { return nil }
        i += 1
        var out: [(String, Range<Int>)] = []
        i = skipSpace(b, i, range.upperBound)
        if i < range.upperBound, b[i] == UInt8(ascii: "}") {
            return skipSpace(b, i + 1, range.upperBound) == range.upperBound ? [] : nil
        }
        while i < range.upperBound {
            guard b[i] == UInt8(ascii: "\""), let keyEnd = skipString(b, i, range.upperBound) else { return nil }
            guard let key = decodeString(b, i..<keyEnd) else { return nil }
            i = skipSpace(b, keyEnd, range.upperBound)
            guard i < range.upperBound, b[i] == UInt8(ascii: ":") else { return nil }
            i = skipSpace(b, i + 1, range.upperBound)
            guard let valueEnd = skipValue(b, i, range.upperBound, depth: 0) else { return nil }
            out.append((key, i..<valueEnd))
            i = skipSpace(b, valueEnd, range.upperBound)
            guard i < range.upperBound else { return nil }
            if b[i] == UInt8(ascii: ",") { i = skipSpace(b, i + 1, range.upperBound); continue }
            if b[i] == UInt8(ascii: "}") {
                return skipSpace(b, i + 1, range.upperBound) == range.upperBound ? out : nil
            }
            return nil
        }
        return nil
    }

    /// The elements of the array at `range`; nil when not a well-formed array.
    public static func elements(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> [Range<Int>]? {
        var i = skipSpace(b, range.lowerBound, range.upperBound)
        guard i < range.upperBound, b[i] == UInt8(ascii: "[") else { return nil }
        i = skipSpace(b, i + 1, range.upperBound)
        var out: [Range<Int>] = []
        if i < range.upperBound, b[i] == UInt8(ascii: "]") {
            return skipSpace(b, i + 1, range.upperBound) == range.upperBound ? [] : nil
        }
        while i < range.upperBound {
            guard let end = skipValue(b, i, range.upperBound, depth: 0) else { return nil }
            out.append(i..<end)
            i = skipSpace(b, end, range.upperBound)
            guard i < range.upperBound else { return nil }
            if b[i] == UInt8(ascii: ",") { i = skipSpace(b, i + 1, range.upperBound); continue }
            if b[i] == UInt8(ascii: "]") { return skipSpace(b, i + 1, range.upperBound) == range.upperBound ? out : nil }
            return nil
        }
        return nil
    }

    /// True when `range` holds exactly one well-formed JSON value (surrounding space allowed).
    public static func isValid(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        let i = skipSpace(b, range.lowerBound, range.upperBound)
        guard let end = skipValue(b, i, range.upperBound, depth: 0) else { return false }
        return skipSpace(b, end, range.upperBound) == range.upperBound
    }

    /// The range without leading/trailing white space.
    public static func trimmed(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Range<Int> {
        var lo = range.lowerBound, hi = range.upperBound
        while lo < hi, isSpace(b[lo]) { lo += 1 }
        while hi > lo, isSpace(b[hi - 1]) { hi -= 1 }
        return lo..<hi
    }

    /// Decodes the JSON string literal at `range` (quotes included).
    public static func decodeString(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String? {
        guard range.count >= 2 else { return nil }
        let inner = (range.lowerBound + 1)..<(range.upperBound - 1)
        if !b[inner].contains(UInt8(ascii: "\\")) {
            return String(decoding: UnsafeBufferPointer(rebasing: b[inner]), as: UTF8.self)
        }
        // Rare path: let Foundation handle escapes and surrogate pairs.
        let data = Data(UnsafeBufferPointer(rebasing: b[range]))
        return (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) as? String
    }

    @inline(__always) public static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 }

    @inline(__always) static func skipSpace(_ b: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        var i = i
        while i < end, isSpace(b[i]) { i += 1 }
        return i
    }

    /// End index (exclusive) of the string starting at `i`, or nil.
    static func skipString(_ b: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int? {
        var i = i + 1
        while i < end {
            let c = b[i]
            if c == UInt8(ascii: "\"") { return i + 1 }
            if c == UInt8(ascii: "\\") {
                guard i + 1 < end else { return nil }
                let e = b[i + 1]
                if e == UInt8(ascii: "u") {
                    guard i + 5 < end else { return nil }
                    for k in 2...5 where !isHex(b[i + k]) { return nil }
                    i += 6
                } else {
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                         UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"): i += 2
                    default: return nil
                    }
                }
                continue
            }
            if c < 0x20 { return nil }
            i += 1
        }
        return nil
    }

    @inline(__always) static func isHex(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
    }

    /// End index of the value starting at `i`, or nil when malformed.
    static func skipValue(_ b: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int, depth: Int) -> Int? {
        guard i < end, depth < 512 else { return nil }
        switch b[i] {
        case UInt8(ascii: "\""): return skipString(b, i, end)
        case UInt8(ascii: "{"):
            var j = skipSpace(b, i + 1, end)
            if j < end, b[j] == UInt8(ascii: "}") { return j + 1 }
            while j < end {
                guard b[j] == UInt8(ascii: "\""), let k = skipString(b, j, end) else { return nil }
                j = skipSpace(b, k, end)
                guard j < end, b[j] == UInt8(ascii: ":") else { return nil }
                j = skipSpace(b, j + 1, end)
                guard let v = skipValue(b, j, end, depth: depth + 1) else { return nil }
                j = skipSpace(b, v, end)
                guard j < end else { return nil }
                if b[j] == UInt8(ascii: ",") { j = skipSpace(b, j + 1, end); continue }
                if b[j] == UInt8(ascii: "}") { return j + 1 }
                return nil
            }
            return nil
        case UInt8(ascii: "["):
            var j = skipSpace(b, i + 1, end)
            if j < end, b[j] == UInt8(ascii: "]") { return j + 1 }
            while j < end {
                guard let v = skipValue(b, j, end, depth: depth + 1) else { return nil }
                j = skipSpace(b, v, end)
                guard j < end else { return nil }
                if b[j] == UInt8(ascii: ",") { j = skipSpace(b, j + 1, end); continue }
                if b[j] == UInt8(ascii: "]") { return j + 1 }
                return nil
            }
            return nil
        case UInt8(ascii: "t"): return literal(b, i, end, "true")
        case UInt8(ascii: "f"): return literal(b, i, end, "false")
        case UInt8(ascii: "n"): return literal(b, i, end, "null")
        default: return skipNumber(b, i, end)
        }
    }

    static func literal(_ b: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int, _ word: StaticString) -> Int? {
        let n = word.utf8CodeUnitCount
        guard i + n <= end else { return nil }
        let w = word.utf8Start
        for k in 0..<n where b[i + k] != w[k] { return nil }
        return i + n
    }

    static func skipNumber(_ b: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int? {
        var j = i
        if j < end, b[j] == UInt8(ascii: "-") { j += 1 }
        guard j < end else { return nil }
        if b[j] == UInt8(ascii: "0") { j += 1 } else {
            guard b[j] >= 0x31, b[j] <= 0x39 else { return nil }
            while j < end, b[j] >= 0x30, b[j] <= 0x39 { j += 1 }
        }
        if j < end, b[j] == UInt8(ascii: ".") {
            j += 1
            guard j < end, b[j] >= 0x30, b[j] <= 0x39 else { return nil }
            while j < end, b[j] >= 0x30, b[j] <= 0x39 { j += 1 }
        }
        if j < end, b[j] == UInt8(ascii: "e") || b[j] == UInt8(ascii: "E") {
            j += 1
            if j < end, b[j] == UInt8(ascii: "+") || b[j] == UInt8(ascii: "-") { j += 1 }
            guard j < end, b[j] >= 0x30, b[j] <= 0x39 else { return nil }
            while j < end, b[j] >= 0x30, b[j] <= 0x39 { j += 1 }
        }
        return j
    }
}

/// The routing-relevant parts of one JSON-RPC message, as byte ranges into its text.
public struct JSONRPCEnvelope: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case request, notification, response }
    public var kind: Kind
    /// Raw bytes of the id (number or string literal), for requests and responses.
    public var id: [UInt8]?
    public var method: String?
    public var params: Range<Int>?
    public var result: Range<Int>?
    public var error: Range<Int>?

    /// Why a message could not be parsed; maps to `ProxyError.Code.parseError` / `.invalidRequest`.
    public enum Failure: Error, Equatable { case parse, invalid(String) }

    /// Parses one message (not a batch). Throws `.parse` for malformed JSON, `.invalid` for JSON
    /// that is not a JSON-RPC 2.0 message.
    public static func parse(_ b: UnsafeBufferPointer<UInt8>) throws(Failure) -> JSONRPCEnvelope {
        let all = 0..<b.count
        guard let members = JSONSpan.members(b, all) else {
            if JSONSpan.isValid(b, all) { throw .invalid("a JSON-RPC message must be a JSON object") }
            throw .parse
        }
        var id: Range<Int>?, method: String?, params: Range<Int>?, result: Range<Int>?, error: Range<Int>?
        var version: String?
        for (k, v) in members {
            switch k {
            case "jsonrpc": version = JSONSpan.decodeString(b, v)
            case "id": id = v
            case "method":
                guard b[v.lowerBound] == UInt8(ascii: "\"") else { throw .invalid("\"method\" must be a string") }
                method = JSONSpan.decodeString(b, v)
            case "params": params = v
            case "result": result = v
            case "error": error = v
            default: break
            }
        }
        guard version == "2.0" else { throw .invalid("\"jsonrpc\" must be \"2.0\"") }
        if let id {
            let c = b[id.lowerBound]
            let ok = c == UInt8(ascii: "\"") || c == UInt8(ascii: "-") || (c >= 0x30 && c <= 0x39)
                || (c == UInt8(ascii: "n") && method == nil)
            guard ok else { throw .invalid("\"id\" must be a string or a number") }
        }
        if let params {
            let c = b[params.lowerBound]
            guard c == UInt8(ascii: "{") || c == UInt8(ascii: "[") else { throw .invalid("\"params\" must be an object or an array") }
        }
        let idBytes = id.map { Array(UnsafeBufferPointer(rebasing: b[$0])) }
        if let method {
            return JSONRPCEnvelope(kind: id == nil ? .notification : .request, id: idBytes, method: method,
                                   params: params, result: nil, error: nil)
        }
        guard result != nil || error != nil, id != nil else { throw .invalid("a message needs a \"method\", or a \"result\"/\"error\" with an \"id\"") }
        return JSONRPCEnvelope(kind: .response, id: idBytes, method: nil, params: nil, result: result, error: error)
    }

    /// Parses from an array of bytes.
    public static func parse(_ bytes: [UInt8]) throws(Failure) -> JSONRPCEnvelope {
        do {
            return try bytes.withUnsafeBufferPointer { p throws(Failure) in try parse(p) }
        }
    }
}

/// Builders for the messages the proxy writes itself.
public enum JSONRPC {
    /// `{"jsonrpc":"2.0","id":<id>,"result":<result>}` with `result` spliced in verbatim.
    public static func result(id: [UInt8], rawResult: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(rawResult.count + id.count + 32)
        out.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
        out.append(contentsOf: id)
        out.append(contentsOf: #","result":"#.utf8)
        out.append(contentsOf: rawResult)
        out.append(UInt8(ascii: "}"))
        return out
    }

    public static func result(id: [UInt8], json: String) -> [UInt8] {
        Array(#"{"jsonrpc":"2.0","id":"#.utf8) + id + Array(#","result":"#.utf8) + Array(json.utf8) + [UInt8(ascii: "}")]
    }

    /// The error response for `e`: its code from the table, its description as the message.
    /// `id` nil gives `"id":null`. Every error the proxy writes itself goes through here.
    public static func error(id: [UInt8]?, _ e: ProxyError) -> [UInt8] {
        error(id: id, e.jsonRPCErrorObject)
    }

    /// An error response carrying `object`: a received one (an upstream's answer, a client's) is
    /// written with its exact bytes.
    public static func error(id: [UInt8]?, _ object: JSONRPCErrorObject) -> [UInt8] {
        let e = object.bytes
        var out: [UInt8] = []
        out.reserveCapacity(e.count + (id?.count ?? 4) + 32)
        out.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
        out.append(contentsOf: id ?? Array("null".utf8))
        out.append(contentsOf: #","error":"#.utf8)
        out.append(contentsOf: e)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// A request with an integer id and raw params.
    public static func request(id: Int, method: String, rawParams: [UInt8]?) -> [UInt8] {
        var out = Array(#"{"jsonrpc":"2.0","id":\#(id),"method":"#.utf8)
        out.append(contentsOf: JSONValue.quoted(method).utf8)
        if let rawParams {
            out.append(contentsOf: #","params":"#.utf8)
            out.append(contentsOf: rawParams)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    public static func notification(method: String, params: JSONValue? = nil) -> [UInt8] {
        var s = #"{"jsonrpc":"2.0","method":"# + JSONValue.quoted(method)
        if let params { s += ",\"params\":" + params.serialized() }
        s += "}"
        return Array(s.utf8)
    }
}
