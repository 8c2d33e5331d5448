import Foundation

/// MCP 2026-07-28, the "modern" protocol: no `initialize` handshake and no session. Every request
/// carries its protocol version, client info and capabilities in `params._meta` (the envelope),
/// over HTTP also the `MCP-Protocol-Version`, `Mcp-Method` and (tools/call, prompts/get,
/// resources/read) `Mcp-Name` headers. `server/discover` tells a client which versions the server
/// speaks. This type holds the pure parts: recognising such a request, the validation ladder
/// and the result fields the modern schema requires.
public enum ModernProtocol {
    /// Versions spoken with the per-request envelope, oldest first.
    public static let versions = ["2026-07-28"]
    public static let versionKey = "io.modelcontextprotocol/protocolVersion"
    public static let clientInfoKey = "io.modelcontextprotocol/clientInfo"
    public static let clientCapabilitiesKey = "io.modelcontextprotocol/clientCapabilities"
    public static let serverInfoKey = "io.modelcontextprotocol/serverInfo"
    public static let discoverMethod = "server/discover"
    /// Methods whose result must also say how long it may be cached (`ttlMs`, `cacheScope`).
    public static let cacheableMethods: Set<String> = [
        "tools/list", "resources/list", "resources/templates/list", "prompts/list", "resources/read", discoverMethod,
    ]
    /// Methods whose name or URI the client repeats in `Mcp-Name`, and the param holding it.
    public static let nameBearing = ["tools/call": "name", "prompts/get": "name", "resources/read": "uri"]

    /// The HTTP headers of a modern request (nil over stdio, where there are none).
    public struct Headers: Sendable, Equatable {
        public var version: String?
        public var method: String?
        public var name: String?
        public init(version: String?, method: String?, name: String?) {
            self.version = version
            self.method = method
            self.name = name
        }
    }

    /// What a valid modern request says about its client.
    public struct Envelope: Sendable, Equatable {
        public var version: String
        public var clientName: String?
        public var capabilities: JSONValue?
    }

    /// Whether `body` is meant for the modern protocol: `server/discover`, a request whose
    /// `MCP-Protocol-Version` header is a modern version, or one whose `params._meta` carries the
    /// envelope's protocol version while its header (if any) names no handshake-era version.
    /// Everything else (batches included) stays on the session path exactly as before.
    public static func isModern(_ body: [UInt8], versionHeader: String?, legacyVersions: [String]) -> Bool {
        if let v = versionHeader, versions.contains(v) { return true }
        if let v = versionHeader, legacyVersions.contains(v) { return false }
        guard let env = try? JSONRPCEnvelope.parse(body), env.kind == .request else { return false }
        if env.method == discoverMethod { return true }
        return metaMember(body, env, versionKey) != nil
    }

    /// The ladder, first failure wins: the envelope carries a protocol version and client
    /// capabilities (else invalid params); over HTTP the headers agree with the body (else `headerMismatch`); the
    /// version is one the gateway speaks (else `unsupportedProtocolVersion`, whose data lists `supported`).
    /// `supported` is every version the gateway speaks, handshake-era ones included, so a client
    /// proposing only a newer modern version learns it can fall back to `initialize`.
    public static func classify(_ body: [UInt8], _ env: JSONRPCEnvelope, headers: Headers?,
                                supported: [String]) -> Result<Envelope, JSONRPCErrorObject> {
        guard let version = metaMember(body, env, versionKey), metaMember(body, env, clientCapabilitiesKey) != nil else {
            return .failure(JSONRPCErrorObject(code: JSONRPCErrorCode.invalidParams,
                message: "params._meta must carry \"\(versionKey)\" and \"\(clientCapabilitiesKey)\" (MCP 2026-07-28 requests have no session)"))
        }
        let requested = try? JSONValue.parse(Data(version.utf8))
        if let headers {
            guard let h = headers.version, h == requested?.stringValue else {
                return .failure(mismatch("MCP-Protocol-Version header does not match the request envelope's protocol version"))
            }
            guard headers.method == env.method else {
                return .failure(mismatch("Mcp-Method header does not match the request body's method"))
            }
            if let method = env.method, let key = nameBearing[method],
               let value = member(body, env.params, key).flatMap({ try? JSONValue.parse(Data($0.utf8)) })?.stringValue,
               decodeHeaderValue(headers.name) != value {
                return .failure(mismatch("Mcp-Name header does not match the request body's \"\(key)\""))
            }
        }
        guard let v = requested?.stringValue else {
            return .failure(JSONRPCErrorObject(code: JSONRPCErrorCode.invalidParams, message: "the envelope's protocol version must be a string"))
        }
        guard versions.contains(v) else {
            return .failure(unsupportedVersion(v, supported: supported))
        }
        let info = metaMember(body, env, clientInfoKey).flatMap { try? JSONValue.parse(Data($0.utf8)) }
        let caps = metaMember(body, env, clientCapabilitiesKey).flatMap { try? JSONValue.parse(Data($0.utf8)) }
        return .success(Envelope(version: v, clientName: info?["name"]?.stringValue, capabilities: caps))
    }

    static func mismatch(_ message: String) -> JSONRPCErrorObject {
        JSONRPCErrorObject(code: JSONRPCErrorCode.headerMismatch, message: message)
    }

    /// `unsupportedProtocolVersion` with `data: {supported, requested}`, what a client reads to retry or fall back.
    public static func unsupportedVersion(_ requested: String, supported: [String]) -> JSONRPCErrorObject {
        let message = "unsupported protocol version \(requested); supported: \(supported.joined(separator: ", "))"
        let data: JSONValue = ["supported": .array(supported.map { .string($0) }), "requested": .string(requested)]
        var s = #"{"code":\#(JSONRPCErrorCode.unsupportedProtocolVersion),"message":"#
        JSONValue.writeString(message, into: &s)
        s += #","data":"# + data.serialized() + "}"
        return JSONRPCErrorObject(code: JSONRPCErrorCode.unsupportedProtocolVersion, message: message, raw: Array(s.utf8))
    }

    /// Adds what the 2026-07-28 schema requires of a result and a handshake-era result lacks:
    /// `resultType: "complete"` on every result, and for lists and reads `ttlMs: 0` (no caching)
    /// and `cacheScope: "private"` (answers depend on the caller's scope). Members already there
    /// are kept; the rest of the result, an upstream's bytes included, is not touched. Error
    /// responses pass unchanged.
    public static func stampResult(_ response: [UInt8], method: String) -> [UInt8] {
        response.withUnsafeBufferPointer { p -> [UInt8] in
            guard let top = JSONSpan.members(p, 0..<p.count), let r = top.first(where: { $0.key == "result" })?.value,
                  p[r.lowerBound] == UInt8(ascii: "{"), let existing = JSONSpan.members(p, r) else { return response }
            let keys = Set(existing.map(\.key))
            var add: [String] = []
            if !keys.contains("resultType") { add.append(#""resultType":"complete""#) }
            if cacheableMethods.contains(method) {
                if !keys.contains("ttlMs") { add.append(#""ttlMs":0"#) }
                if !keys.contains("cacheScope") { add.append(#""cacheScope":"private""#) }
            }
            if add.isEmpty { return response }
            var insert = Array(add.joined(separator: ",").utf8)
            if !existing.isEmpty { insert.append(UInt8(ascii: ",")) }
            var out = Array(p[0..<(r.lowerBound + 1)])
            out.reserveCapacity(p.count + insert.count)
            out += insert
            out += p[(r.lowerBound + 1)...]
            return out
        }
    }

    /// `body` without the envelope in `params._meta` (every `io.modelcontextprotocol/` key): the
    /// gateway speaks to upstreams in the handshake era, where a request carrying the modern
    /// envelope is refused. Other `_meta` members (`progressToken`, ...) stay as they were.
    public static func stripEnvelope(_ body: [UInt8]) -> [UInt8] {
        body.withUnsafeBufferPointer { p -> [UInt8] in
            guard let top = JSONSpan.members(p, 0..<p.count), let pr = top.first(where: { $0.key == "params" })?.value,
                  let params = JSONSpan.members(p, pr), let meta = params.first(where: { $0.key == "_meta" })?.value,
                  let members = JSONSpan.members(p, meta) else { return body }
            let kept = members.filter { !$0.key.hasPrefix("io.modelcontextprotocol/") }
            if kept.count == members.count { return body }
            var out = Array(p[0..<meta.lowerBound])
            out.append(UInt8(ascii: "{"))
            for (i, m) in kept.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out += Array(JSONValue.quoted(m.key).utf8)
                out.append(UInt8(ascii: ":"))
                out += p[m.value]
            }
            out.append(UInt8(ascii: "}"))
            out += p[meta.upperBound...]
            return out
        }
    }

    /// The inverse of the SDK's header encoding: a value wrapped as `=?base64?...?=` is decoded
    /// (UTF-8), any other is taken as it is; a malformed wrapper gives nil.
    public static func decodeHeaderValue(_ value: String?) -> String? {
        guard let value else { return nil }
        guard value.hasPrefix("=?base64?"), value.hasSuffix("?="), value.count >= 11 else { return value }
        let payload = String(value.dropFirst(9).dropLast(2))
        guard let data = Data(base64Encoded: payload), data.base64EncodedString() == payload else { return nil }
        return String(data: data, encoding: .utf8)
    }

    /// The client's capabilities from a modern request's envelope (nil when absent or not JSON).
    public static func clientCapabilities(_ body: [UInt8], _ env: JSONRPCEnvelope) -> JSONValue? {
        metaMember(body, env, clientCapabilitiesKey).flatMap { try? JSONValue.parse(Data($0.utf8)) }
    }

    /// The JSON text of `params._meta[key]` (nil when absent).
    static func metaMember(_ body: [UInt8], _ env: JSONRPCEnvelope, _ key: String) -> String? {
        body.withUnsafeBufferPointer { p in
            guard let pr = env.params, let m = JSONSpan.members(p, pr), let meta = m.first(where: { $0.key == "_meta" })?.value,
                  let mm = JSONSpan.members(p, meta), let v = mm.first(where: { $0.key == key })?.value else { return nil }
            return String(decoding: p[v], as: UTF8.self)
        }
    }

    static func member(_ body: [UInt8], _ range: Range<Int>?, _ key: String) -> String? {
        guard let range else { return nil }
        return body.withUnsafeBufferPointer { p in
            guard let m = JSONSpan.members(p, range), let r = m.first(where: { $0.key == key })?.value else { return nil }
            return String(decoding: p[r], as: UTF8.self)
        }
    }
}
