import Foundation
import Testing
@testable import ProxyCore

/// The pure parts of MCP 2026-07-28: recognising a modern request, the validation ladder, the
/// result fields the modern schema requires.
@Suite struct ModernProtocolTests {
    static let legacy = ["2025-03-26", "2025-06-18", "2025-11-25"]
    static let all = legacy + ["2026-07-28"]

    func request(_ method: String, version: String? = "2026-07-28", caps: Bool = true, extra: String = "") -> [UInt8] {
        var meta: [String] = []
        if let version { meta.append(#""io.modelcontextprotocol/protocolVersion":"\#(version)""#) }
        if caps { meta.append(#""io.modelcontextprotocol/clientCapabilities":{"sampling":{}}"#) }
        meta.append(#""io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"}"#)
        return Array(#"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":{\#(extra)"_meta":{\#(meta.joined(separator: ","))}}}"#.utf8)
    }

    func classify(_ body: [UInt8], _ headers: ModernProtocol.Headers?) throws -> Result<ModernProtocol.Envelope, JSONRPCErrorObject> {
        let env = try JSONRPCEnvelope.parse(body)
        return ModernProtocol.classify(body, env, headers: headers, supported: Self.all)
    }

    func code(_ r: Result<ModernProtocol.Envelope, JSONRPCErrorObject>) -> Int? {
        if case .failure(let e) = r { return e.code }
        return nil
    }

    @Test func recognisesModernRequests() {
        let legacyBody = Array(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.utf8)
        #expect(!ModernProtocol.isModern(legacyBody, versionHeader: nil, legacyVersions: Self.legacy))
        #expect(!ModernProtocol.isModern(legacyBody, versionHeader: "2025-06-18", legacyVersions: Self.legacy))
        #expect(ModernProtocol.isModern(legacyBody, versionHeader: "2026-07-28", legacyVersions: Self.legacy))
        #expect(ModernProtocol.isModern(request("tools/list"), versionHeader: nil, legacyVersions: Self.legacy))
        // A handshake-era header wins over an envelope in the body (a session request).
        #expect(!ModernProtocol.isModern(request("tools/list"), versionHeader: "2025-11-25", legacyVersions: Self.legacy))
        // server/discover is always modern, even without an envelope or with an unknown version.
        let bare = Array(#"{"jsonrpc":"2.0","id":1,"method":"server/discover"}"#.utf8)
        #expect(ModernProtocol.isModern(bare, versionHeader: "2099-01-01", legacyVersions: Self.legacy))
        // Notifications and batches stay on the session path.
        #expect(!ModernProtocol.isModern(Array(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.utf8),
                                         versionHeader: nil, legacyVersions: Self.legacy))
        #expect(!ModernProtocol.isModern(Array("[\(String(decoding: request("tools/list"), as: UTF8.self))]".utf8),
                                         versionHeader: nil, legacyVersions: Self.legacy))
    }

    @Test func ladder() throws {
        let h = ModernProtocol.Headers(version: "2026-07-28", method: "tools/list", name: nil)
        let ok = try classify(request("tools/list"), h)
        guard case .success(let env) = ok else { Issue.record("valid request refused: \(ok)"); return }
        #expect(env.version == "2026-07-28" && env.clientName == "t" && env.capabilities?["sampling"] != nil)
        // Over stdio there are no headers.
        #expect(code(try classify(request("tools/list"), nil)) == nil)
        // Missing envelope keys: invalid params.
        #expect(code(try classify(request("tools/list", version: nil), h)) == JSONRPCErrorCode.invalidParams)
        #expect(code(try classify(request("tools/list", caps: false), h)) == JSONRPCErrorCode.invalidParams)
        // Headers that disagree with the body.
        #expect(code(try classify(request("tools/list"), .init(version: "2025-11-25", method: "tools/list", name: nil))) == JSONRPCErrorCode.headerMismatch)
        #expect(code(try classify(request("tools/list"), .init(version: nil, method: "tools/list", name: nil))) == JSONRPCErrorCode.headerMismatch)
        #expect(code(try classify(request("tools/list"), .init(version: "2026-07-28", method: "tools/call", name: nil))) == JSONRPCErrorCode.headerMismatch)
        let call = request("tools/call", extra: #""name":"é tool","arguments":{},"#)
        let encoded = "=?base64?" + Data("é tool".utf8).base64EncodedString() + "?="
        #expect(code(try classify(call, .init(version: "2026-07-28", method: "tools/call", name: encoded))) == nil)
        #expect(code(try classify(call, .init(version: "2026-07-28", method: "tools/call", name: "other"))) == JSONRPCErrorCode.headerMismatch)
        #expect(code(try classify(call, .init(version: "2026-07-28", method: "tools/call", name: nil))) == JSONRPCErrorCode.headerMismatch)
        // A version not spoken here: -32022 with the supported list and what was asked.
        let bad = try classify(request("server/discover", version: "2099-01-01"), .init(version: "2099-01-01", method: "server/discover", name: nil))
        guard case .failure(let e) = bad else { Issue.record("unsupported version accepted"); return }
        #expect(e.code == JSONRPCErrorCode.unsupportedProtocolVersion)
        let object = try JSONValue.parse(Data(e.bytes))
        #expect(object["code"] == .number(Double(JSONRPCErrorCode.unsupportedProtocolVersion)))
        #expect(object["data"]?["supported"] == .array(Self.all.map { .string($0) }))
        #expect(object["data"]?["requested"] == "2099-01-01")
        // A handshake-era version in the envelope is not a modern one either.
        #expect(code(try classify(request("tools/list", version: "2025-11-25"), nil)) == JSONRPCErrorCode.unsupportedProtocolVersion)
    }

    @Test func stampsResults() {
        func stamp(_ s: String, _ method: String) -> String {
            String(decoding: ModernProtocol.stampResult(Array(s.utf8), method: method), as: UTF8.self)
        }
        #expect(stamp(#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#, "tools/list")
                == #"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","ttlMs":0,"cacheScope":"private","tools":[]}}"#)
        // The upstream's bytes are kept as they are; only missing members are added.
        #expect(stamp(#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"a\"}"}],"isError":false}}"#, "tools/call")
                == #"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","content":[{"type":"text","text":"a\"}"}],"isError":false}}"#)
        #expect(stamp(#"{"jsonrpc":"2.0","id":1,"result":{}}"#, "ping") == #"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete"}}"#)
        #expect(stamp(#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","ttlMs":5,"contents":[]}}"#, "resources/read")
                == #"{"jsonrpc":"2.0","id":1,"result":{"cacheScope":"private","resultType":"complete","ttlMs":5,"contents":[]}}"#)
        let error = #"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}}"#
        #expect(stamp(error, "tools/list") == error)
    }

    @Test func stripsTheEnvelopeForUpstreams() {
        let body = Array(#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":"p","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"arguments":{"a":1}}}"#.utf8)
        #expect(String(decoding: ModernProtocol.stripEnvelope(body), as: UTF8.self)
                == #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","_meta":{"progressToken":"p"},"arguments":{"a":1}}}"#)
        let plain = Array(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.utf8)
        #expect(ModernProtocol.stripEnvelope(plain) == plain)
    }

    @Test func headerValues() {
        #expect(ModernProtocol.decodeHeaderValue("plain") == "plain")
        #expect(ModernProtocol.decodeHeaderValue("=?base64?" + Data("ü".utf8).base64EncodedString() + "?=") == "ü")
        #expect(ModernProtocol.decodeHeaderValue("=?base64?!!?=") == nil)
        #expect(ModernProtocol.decodeHeaderValue(nil) == nil)
    }
}
