import Gateway
import Testing

@Suite("Federated resource URIs and prompt names")
struct FederationTests {
    @Test(arguments: ["notes://readme", "file:///etc/hosts", "https://x.example/a?b=c&d=e#f", "res://ü/space here",
                      "mcpproxy://other/x", "a", "%41%2F", "urn:isbn:0451450523"])
    func wrapIsReversible(uri: String) throws {
        let w = FederatedName.wrap(server: "docs", uri: uri)
        #expect(w.hasPrefix("mcpproxy://docs/"))
        #expect(!w.dropFirst("mcpproxy://docs/".count).contains("/"))
        let back = try #require(FederatedName.unwrap(uri: w))
        #expect(back.server == "docs")
        #expect(back.uri == uri)
    }

    @Test func notGatewayURIs() {
        #expect(FederatedName.unwrap(uri: "notes://readme") == nil)
        #expect(FederatedName.unwrap(uri: "mcpproxy://docs") == nil)
        #expect(FederatedName.unwrap(uri: "mcpproxy:///x") == nil)
        #expect(FederatedName.unwrap(uri: "mcpproxy://docs/") == nil)
        #expect(FederatedName.unwrap(uri: "mcpproxy://docs/%zz") == nil)
    }

    @Test(arguments: [
        ("file:///{path}", "file:///etc/passwd", true),
        ("file:///{path}", "file:///", true),
        ("file:///{path}", "file://etc", false),
        ("users://{id}/profile", "users://42/profile", true),
        ("users://{id}/profile", "users://42/settings", false),
        ("users://{id}/profile", "users://profile", false),
        ("search://x{?q,lang}", "search://x", true),
        ("search://x{?q,lang}", "search://x?q=1&lang=en", true),
        ("search://y{?q}", "search://x?q=1", false),
        ("{+uri}", "anything://at/all", true),
        ("a://{x}/b/{y}/c", "a://1/b/2/c", true),
        ("a://{x}/b/{y}/c", "a://1/c/2/b", false),
        ("ab{x}ba", "aba", false),
        ("ab{x}ba", "abba", true),
        ("notes://fixed", "notes://fixed", true),
        ("notes://fixed", "notes://fixed2", false),
        ("log://{day}", "LOG://mon", true),
        ("Log://{day}", "log://mon", true),
    ])
    func templateMatching(template: String, uri: String, matches: Bool) {
        #expect(FederatedName.template(template, mayExpandTo: uri) == matches)
    }

    @Test func templatesKeepExpressions() throws {
        let t = FederatedName.wrap(server: "s", template: "notes://item/{item_id}{?q,lang}")
        #expect(t == "mcpproxy://s/notes%3A%2F%2Fitem%2F{item_id}{?q,lang}")
        let expanded = t.replacingOccurrences(of: "{item_id}", with: "7").replacingOccurrences(of: "{?q,lang}", with: "")
        #expect(FederatedName.unwrap(uri: expanded)?.uri == "notes://item/7")
        #expect(FederatedName.wrap(server: "s", template: "a{b") == "mcpproxy://s/a%7Bb")
    }

    @Test func promptNames() {
        #expect(FederatedName.split("docs:review") ?? ("", "") == ("docs", "review"))
        #expect(FederatedName.split("docs:a:b") ?? ("", "") == ("docs", "a:b"))
        #expect(FederatedName.split("review") == nil)
        #expect(FederatedName.split(":review") == nil)
        #expect(FederatedName.split("docs:") == nil)
    }
}
