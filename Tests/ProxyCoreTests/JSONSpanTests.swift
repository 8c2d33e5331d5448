import Foundation
import Testing
@testable import ProxyCore

@Suite struct JSONSpanTests {
    func envelope(_ s: String) throws(JSONRPCEnvelope.Failure) -> JSONRPCEnvelope { try JSONRPCEnvelope.parse(Array(s.utf8)) }

    @Test func requestParts() throws {
        let text = #"{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"name":"x","arguments":{"n":1.0}}}"#
        let e = try envelope(text)
        #expect(e.kind == .request)
        #expect(e.id.map { String(decoding: $0, as: UTF8.self) } == "\"a-1\"")
        #expect(e.method == "tools/call")
        let bytes = Array(text.utf8)
        #expect(String(decoding: bytes[e.params!], as: UTF8.self) == #"{"name":"x","arguments":{"n":1.0}}"#)
    }

    @Test func responsesAndNotifications() throws {
        #expect(try envelope(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).kind == .notification)
        let r = try envelope(#"{"jsonrpc":"2.0","id":7,"result":{"v":18446744073709551615}}"#)
        #expect(r.kind == .response && r.result != nil && r.error == nil)
        let e = try envelope(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#)
        #expect(e.kind == .response && e.error != nil)
    }

    @Test(arguments: ["{", #"{"a":}"#, #"{"a":tru}"#, #"{"a":01}"#, #"{"a":"\x"}"#, "{\"a\":\"\u{01}\"}", #"{"a":1,}"#, #"{"a":[1,]}"#, "", "nul", #"{"a":1}x"#])
    func malformedIsParseError(text: String) {
        #expect(throws: JSONRPCEnvelope.Failure.parse) { try JSONRPCEnvelope.parse(Array(text.utf8)) }
    }

    @Test(arguments: [
        (#"[1,2]"#, "must be a JSON object"),
        (#"{"id":1,"method":"x"}"#, "\"jsonrpc\" must be \"2.0\""),
        (#"{"jsonrpc":"1.0","id":1,"method":"x"}"#, "\"jsonrpc\" must be \"2.0\""),
        (#"{"jsonrpc":"2.0","id":1,"method":5}"#, "\"method\" must be a string"),
        (#"{"jsonrpc":"2.0","id":{},"method":"x"}"#, "\"id\" must be a string or a number"),
        (#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#, "\"params\" must be an object or an array"),
        (#"{"jsonrpc":"2.0","id":1}"#, "needs a \"method\""),
    ])
    func invalidRequests(text: String, why: String) {
        do {
            _ = try JSONRPCEnvelope.parse(Array(text.utf8))
            Issue.record("parsed")
        } catch {
            guard case .invalid(let w) = error else { Issue.record("not invalid: \(error)"); return }
            #expect(w.contains(why), "got \(w)")
        }
    }

    @Test func splicedResultIsByteExact() {
        let raw = #"{"a":1.0,"b":18446744073709551615,"c":"data:,hello","d":"\u00e9","e":null}"#
        let out = Array(raw.utf8).withUnsafeBufferPointer { JSONRPC.result(id: Array("\"k\"".utf8), rawResult: $0) }
        #expect(String(decoding: out, as: UTF8.self) == #"{"jsonrpc":"2.0","id":"k","result":"# + raw + "}")
    }

    @Test func stringsWithEscapesDecode() {
        let text = #"{"k\"ey":"v\u00e9\n","n":[1,{"x":[]}]}"#
        let bytes = Array(text.utf8)
        let m = bytes.withUnsafeBufferPointer { p in JSONSpan.members(p, 0..<p.count)!.map { ($0.key, String(decoding: p[$0.value], as: UTF8.self)) } }
        #expect(m.map(\.0) == ["k\"ey", "n"])
        #expect(m[1].1 == #"[1,{"x":[]}]"#)
        let s = bytes.withUnsafeBufferPointer { p in JSONSpan.decodeString(p, JSONSpan.members(p, 0..<p.count)![0].value) }
        #expect(s == "vé\n")
    }

    @Test func deepNestingIsRefusedNotCrashing() {
        let text = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(Array(text.utf8).withUnsafeBufferPointer { JSONSpan.isValid($0, 0..<$0.count) } == false)
    }

    @Test func canonicalSerializationSortsKeys() {
        let v: JSONValue = ["b": 1, "a": ["y": true, "x": nil], "c": "q\"\n"]
        #expect(v.serialized() == #"{"a":{"x":null,"y":true},"b":1,"c":"q\"\n"}"#)
    }

    @Test func jsoncStripKeepsStrings() {
        let s = String(decoding: JSONC.strip(Array(#"{"a": "//x", /* c */ "b": [1,2,], } // end"#.utf8)), as: UTF8.self)
        let v = try? JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any]
        #expect(v?["a"] as? String == "//x")
        #expect((v?["b"] as? [Int]) == [1, 2])
    }
}

/// Direct mode lists an upstream tool as its exact bytes with only the name replaced.
@Suite struct ToolDefinitionBytesTests {
    @Test(arguments: [
        (#"{"title":"T","name":"echo","inputSchema":{"type":"object","b":1.50,"a":[]}}"#,
         #"{"title":"T","name":"srv__echo","inputSchema":{"type":"object","b":1.50,"a":[]}}"#),
        (#"{ "name" : "x\"y" , "description":"é\u00e9" }"#,
         #"{ "name" : "srv__x\"y" , "description":"é\u00e9" }"#),
    ])
    func renamedKeepsEveryOtherByte(_ input: String, _ expected: String) throws {
        let raw = try JSONValue.parse(Data(input.utf8))
        var t = try #require(ToolDefinition(json: raw))
        t.rawBytes = Array(input.utf8)
        let newName = "srv__" + t.name
        #expect(String(decoding: t.bytes(renamedTo: newName), as: UTF8.self) == expected)
    }

    @Test func withoutRawBytesTheParsedObjectIsRenamed() throws {
        let t = try #require(ToolDefinition(json: try JSONValue.parse(Data(#"{"name":"a","description":"d"}"#.utf8))))
        let out = try JSONValue.parse(Data(t.bytes(renamedTo: "s__a")))
        #expect(out["name"]?.stringValue == "s__a" && out["description"]?.stringValue == "d")
        // Equality ignores the raw bytes: a re-list that only respaces the JSON is the same tool.
        var spaced = t
        spaced.rawBytes = Array(#"{ "name": "a", "description": "d" }"#.utf8)
        #expect(spaced == t)
    }
}
