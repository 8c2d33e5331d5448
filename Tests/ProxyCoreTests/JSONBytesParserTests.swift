import Foundation
import Testing
@testable import ProxyCore

/// `JSONValue.parse` reads strict JSON from the bytes (`JSONBytesParser`) and leaves the rest to
/// `JSONSerialization`: on every document the byte parser accepts, it must give what
/// `JSONSerialization` gives; what it refuses goes to `JSONSerialization` unchanged.
@Suite struct JSONBytesParserTests {
    static func viaFoundation(_ data: Data) -> JSONValue? {
        (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])).map(JSONValue.init(any:))
    }

    static func native(_ data: Data) -> JSONValue? {
        data.withUnsafeBytes { JSONBytesParser.parse($0) }
    }

    /// Equal, numbers within a relative 1e-13: Foundation's reader can be an ulp off on long
    /// fractions and tiny exponents (seen: 9e-15 relative); the byte parser gives the nearest double (`nearestDouble` checks that).
    static func same(_ a: JSONValue?, _ b: JSONValue?) -> Bool {
        switch (a, b) {
        case (.number(let x)?, .number(let y)?): return x == y || abs(x - y) <= 1e-13 * max(abs(x), abs(y))
        case (.array(let x)?, .array(let y)?): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case (.object(let x)?, .object(let y)?): return x.count == y.count && x.allSatisfy { same($0.value, y[$0.key]) }
        default: return a == b
        }
    }

    @Test func nearestDouble() {
        for text in ["-144679.01879429363", "0.1", "320705.38878021925", "-9.474685371771454e+91", "5e-324", "1.7976931348623157e308"] {
            #expect(Self.native(Data(text.utf8)) == .number(Double(text)!), "\(text)")
        }
    }

    @Test(arguments: [
        #"{}"#, #"[]"#, #" { "a" : [ 1 , 2.5 , -3e2, 0, -0, 1E+2, 12345678901234567890, 0.1 ] } "#,
        #""plain""#, #""esc \" \\ \/ \b \f \n \r \t \u00e9 \u20ac \ud83d\ude00""#, #"true"#, #"false"#, #"null"#,
        #"{"name":"x","description":"caf\u00e9 ☕ 日本","inputSchema":{"type":"object","properties":{"a":{"type":"string","enum":["x","y"]}}}}"#,
        #"{"a":1,"a":2}"#, #"[[[[[[]]]]]]"#, #"{"n":1.7976931348623157e308,"m":5e-324,"k":-123.456e-7}"#,
        #"9007199254740993"#, #"{"emoji":"👍🏽","zwj":"a\u200bb"}"#,
    ])
    func agreesWithJSONSerialization(_ text: String) throws {
        let data = Data(text.utf8)
        let n = try #require(Self.native(data), "the byte parser refused \(text)")
        #expect(Self.same(n, Self.viaFoundation(data)), "\(text)")
        #expect(try JSONValue.parse(data) == n)
    }

    @Test(arguments: [
        "", " ", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "-", "+1", "1e", "tru", "nul", "\"abc", "\"a\u{01}b\"",
        "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "{\"a\" 1}", "[1 2]", "{1:2}", "1 2", "NaN", "Infinity",
        "\u{FEFF}{}", "1e400",
    ])
    func refusesWhatIsNotStrictJSON(_ text: String) {
        let data = Data(text.utf8)
        #expect(Self.native(data) == nil, "\(text.debugDescription)")
        // The fallback decides as before.
        #expect((try? JSONValue.parse(data)) == Self.viaFoundation(data))
    }

    @Test func invalidUTF8IsLeftToFoundation() {
        let data = Data([0x22, 0xC3, 0x28, 0x22])
        #expect(Self.native(data) == nil)
    }

    @Test func deepNestingIsBounded() {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(Self.native(Data(deep.utf8)) == nil)
        let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(Self.native(Data(ok.utf8)) != nil)
    }

    /// Random documents (objects, arrays, numbers of every shape, strings with escapes and
    /// non-ASCII) serialized by JSONSerialization, parsed both ways.
    @Test func randomDocumentsAgree() throws {
        var rng = SystemRandomNumberGenerator()
        func value(_ depth: Int) -> Any {
            switch Int.random(in: 0..<(depth > 3 ? 4 : 6), using: &rng) {
            case 0: return NSNull()
            case 1: return Bool.random(using: &rng)
            case 2:
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: return Int.random(in: -1_000_000...1_000_000, using: &rng)
                case 1: return Double.random(in: -1e6...1e6, using: &rng)
                case 2: return Int64.random(in: Int64.min...Int64.max, using: &rng)
                default: return Double.random(in: -1...1, using: &rng) * pow(10, Double(Int.random(in: -300...300, using: &rng)))
                }
            case 3:
                let alphabet = Array("ab \"\\/\n\t\u{01}\u{1F}é€😀\u{200B}{}[]:,")
                return String((0..<Int.random(in: 0...12, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
            case 4: return (0..<Int.random(in: 0...5, using: &rng)).map { _ in value(depth + 1) }
            default:
                var o: [String: Any] = [:]
                for k in 0..<Int.random(in: 0...5, using: &rng) { o["k\(k)\(["", "é", "\"", "\\n"].randomElement(using: &rng)!)"] = value(depth + 1) }
                return o
            }
        }
        for _ in 0..<500 {
            let doc = value(0)
            let data = try JSONSerialization.data(withJSONObject: doc, options: [.fragmentsAllowed])
            let n = try #require(Self.native(data), "\(String(decoding: data, as: UTF8.self))")
            #expect(Self.same(n, Self.viaFoundation(data)), "\(String(decoding: data, as: UTF8.self))")
        }
    }
}
