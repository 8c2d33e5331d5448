import Foundation
import Testing
@testable import ProxyCore

/// The one error table (`ProxyError.Code.row`): total, distinguishable where a caller must tell
/// codes apart, the only place numeric codes are written, and the table docs/commands.md shows.
@Suite struct ProxyErrorTests {
    typealias Code = ProxyError.Code
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func everyCodeHasARowInTheRangesItsSurfacesAllow() {
        for code in Code.allCases {
            let r = code.row
            // JSON-RPC: the spec's reserved codes, the implementation-defined server range, or LSP's cancel.
            let reserved = [-32700, -32600, -32601, -32602, -32603].contains(r.jsonRPC)
            #expect(reserved || (-32099 ... -32000).contains(r.jsonRPC) || r.jsonRPC == JSONRPCErrorCode.requestCancelled, "\(code)")
            #expect((400 ..< 600).contains(r.http), "\(code): an error is a 4xx or 5xx")
            // 0 is success and 1 a check that found problems: never an error's status.
            #expect((64 ... 78).contains(r.exit) || r.exit == ExitStatus.interrupted, "\(code)")
            #expect(!r.meaning.isEmpty && !r.meaning.contains("|"), "\(code): the meaning is a table cell")
            #expect(code.jsonRPCCode == r.jsonRPC && code.httpStatus == r.http && code.exitStatus == r.exit)
        }
    }

    @Test func noTwoCodesLookTheSameOnEverySurface() {
        var seen: [String: Code] = [:]
        for code in Code.allCases {
            let r = code.row
            let key = "\(r.jsonRPC)/\(r.http)/\(r.exit)"
            #expect(seen[key] == nil, "\(code) and \(seen[key].map { "\($0)" } ?? "") are indistinguishable")
            seen[key] = code
        }
        // REST bodies name the code: the names round-trip.
        #expect(Set(Code.allCases.map(\.rawValue)).count == Code.allCases.count)
        for code in Code.allCases { #expect(Code(rawValue: code.rawValue) == code) }
    }

    @Test func protocolFaultsHaveTheSpecsCodes() {
        let spec: [Code: Int] = [.parseError: -32700, .invalidRequest: -32600, .methodNotFound: -32601,
                                 .invalidArgument: -32602, .internalError: -32603]
        for (code, n) in spec { #expect(code.jsonRPCCode == n, "\(code)") }
        #expect(Set(spec.keys.map(\.jsonRPCCode)).count == spec.count)
    }

    @Test func cliFailuresAScriptMustTellApartHaveDistinctExitStatuses() {
        let cli: [Code] = [.invalidArgument, .invalidConfig, .notFound, .refused, .unavailable, .timeout,
                           .upstreamFailed, .internalError, .conflict, .cancelled]
        #expect(Set(cli.map(\.exitStatus)).count == cli.count, "\(cli.map { "\($0)=\($0.exitStatus)" })")
        // ArgumentParser exits 64 on a usage error: a bad argument found later exits the same.
        #expect(Code.invalidArgument.exitStatus == 64)
    }

    @Test func docsShowTheTable() throws {
        let doc = try String(contentsOf: Self.repo.appendingPathComponent("docs/commands.md"), encoding: .utf8)
        let lines = doc.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let header = "| code | JSON-RPC | HTTP | exit | when |"
        let start = try #require(lines.firstIndex(of: header), "docs/commands.md has the error table")
        let rows = lines[(start + 2)...].prefix { $0.hasPrefix("|") }
        let expected = Code.allCases.map { c in
            "| `\(c.rawValue)` | \(c.row.jsonRPC) | \(c.row.http) | \(c.row.exit) | \(c.row.meaning) |"
        }
        #expect(Array(rows) == expected)
    }

    /// "No numeric code literal appears twice": JSON-RPC error codes are written only in the
    /// table's constants. (The fixture and probe servers play upstreams with their own codes.)
    @Test func jsonRPCCodeLiteralsLiveOnlyInTheTable() throws {
        let sources = Self.repo.appendingPathComponent("Sources")
        let pattern = try NSRegularExpression(pattern: "-32[0-9]{3}\\b")
        var hits: [String: [String]] = [:]
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)
        while let url = files?.nextObject() as? URL {
            guard url.pathExtension == "swift", !url.path.contains("/mcpproxy-fixture/") else { continue }
            let text = try String(contentsOf: url, encoding: .utf8)
            for m in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                hits[String(text[Range(m.range, in: text)!]), default: []].append(url.lastPathComponent)
            }
        }
        #expect(!hits.isEmpty)
        for (literal, where_) in hits { #expect(where_ == ["ProxyError.swift"], "\(literal) is written in \(where_)") }
    }

    @Test func errorResponsesKeepTheirWireForm() {
        let e = ProxyError(.methodNotFound, #"method not found: "x""#)
        #expect(String(decoding: JSONRPC.error(id: Array("7".utf8), e), as: UTF8.self)
                == #"{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"method not found: \"x\""}}"#)
        #expect(String(decoding: JSONRPC.error(id: nil, ProxyError(.parseError, "p")), as: UTF8.self)
                == #"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"p"}}"#)
    }

    @Test func upstreamErrorsAreTypedAndForwardedByteExact() {
        let raw = Array(#"{ "code" : -32601, "message":"nope",  "data":{"why":[1,2.50]} }"#.utf8)
        let e = JSONRPCErrorObject(raw: raw)
        #expect(e.code == -32601 && e.message == "nope" && e.isMethodNotFound)
        #expect(e.description == "nope (code -32601)")
        #expect(JSONRPC.error(id: Array("\"a\"".utf8), e) == Array(#"{"jsonrpc":"2.0","id":"a","error":"#.utf8) + raw + [UInt8(ascii: "}")])
        // A message that merely mentions -32601 is not "method not found".
        let other = JSONRPCErrorObject(raw: Array(#"{"code":-32000,"message":"upstream said -32601"}"#.utf8))
        #expect(!other.isMethodNotFound)
        // Malformed: no code, still forwarded unchanged.
        let odd = Array(#"{"message":7}"#.utf8)
        let m = JSONRPCErrorObject(raw: odd)
        #expect(m.code == nil && m.bytes == odd && m.description == "error (code ?)")
    }

    @Test func causeIsAnErrorAndItsTextIsKept() {
        struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }
        let e = ProxyError(.upstreamFailed, "sending failed", cause: Boom())
        #expect(e.cause is Boom)
        #expect(e.detail == "boom" && e.description == "sending failed (boom)")
        let text = ProxyError(.upstreamFailed, "plugin exited", detail: "last line")
        #expect(text.cause == nil && text.description == "plugin exited (last line)")
        let named = ProxyError(.upstreamFailed, "rejected: nope (code 1)", detail: nil, cause: JSONRPCErrorObject(code: 1, message: "nope"))
        #expect(named.description == "rejected: nope (code 1)" && (named.cause as? JSONRPCErrorObject)?.code == 1)
        #expect(e == ProxyError(.upstreamFailed, "sending failed", detail: "boom"))
    }
}
