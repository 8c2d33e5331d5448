import Foundation
import Testing
@testable import ProxyCore

/// A source backed by a dictionary (the real store is tested in SecurityTests/SecretStoreTests).
struct DictionarySource: SecretSource {
    var values: [String: String]
    func secretValue(named name: String) throws -> String? { values[name] }
}

@Suite("Secret references")
struct SecretReferenceTests {
    @Test("one reference inside text, several in one string, repeats")
    func parsing() throws {
        #expect(try SecretReference.parse("Bearer ${secret:gh}") == [.text("Bearer "), .ref("gh")])
        #expect(try SecretReference.parse("${secret:a}:${secret:b.c}/${secret:a}") == [.ref("a"), .text(":"), .ref("b.c"), .text("/"), .ref("a")])
        #expect(try SecretReference.parse("plain") == [.text("plain")])
        #expect(try SecretReference.parse("") == [])
        #expect(SecretReference.names(in: "x${secret:A_1}y${secret:b-2}") == ["A_1", "b-2"])
        // Other ${...} text is not ours.
        #expect(try SecretReference.parse("${HOME}/x ${env:Y}") == [.text("${HOME}/x ${env:Y}")])
    }

    @Test("$${secret: is a literal ${secret:")
    func escaping() throws {
        #expect(try SecretReference.parse("$${secret:gh}") == [.text("${secret:gh}")])
        #expect(SecretReference.names(in: "$${secret:gh} ${secret:real}") == ["real"])
        let out = try SecretReference.substitute("a $${secret:x} b ${secret:x}") { _ in "V" }
        #expect(out == "a ${secret:x} b V")
    }

    @Test("unterminated references and invalid names are errors")
    func malformed() {
        for bad in ["${secret:gh", "x ${secret:}", "${secret:a b}", "${secret:.hidden}", "${secret:a/b}"] {
            #expect(throws: ProxyError.self) { try SecretReference.parse(bad) }
        }
    }

    @Test("resolve fills env, headers and url; unknown references name the server and place")
    func resolve() throws {
        var s = ServerConfig(name: "gh")
        s.url = "https://${secret:host}/mcp?k=${secret:key}"
        s.headers = ["Authorization": "Bearer ${secret:tok}", "X-Plain": "p"]
        s.env = ["A": "${secret:tok}-${secret:key}", "B": "$${secret:tok}"]
        let src = DictionarySource(values: ["host": "example.org", "key": "K1", "tok": "T0"])
        let r = try SecretResolver.resolve(s, source: src)
        #expect(r.url == "https://example.org/mcp?k=K1")
        #expect(r.headers == ["Authorization": "Bearer T0", "X-Plain": "p"])
        #expect(r.env == ["A": "T0-K1", "B": "${secret:tok}"])
        // The input keeps its references.
        #expect(s.headers["Authorization"] == "Bearer ${secret:tok}")
        #expect(SecretResolver.references(of: s).map(\.name) == ["tok", "key", "tok", "host", "key"])

        var missing = ServerConfig(name: "svc")
        missing.command = "x"
        missing.env = ["TOKEN": "${secret:nope}"]
        do {
            _ = try SecretResolver.resolve(missing, source: src)
            Issue.record("a missing secret must fail")
        } catch let e as ProxyError {
            #expect(e.code == .invalidConfig)
            #expect(e.message.contains("server \"svc\""))
            #expect(e.message.contains("env.TOKEN"))
            #expect(e.message.contains("${secret:nope}"))
            #expect(e.message.contains("mcpproxy secret set nope"))
        }
    }

    @Test("docker mode resolves references too and names the env variables that hold secrets")
    func dockerResolves() throws {
        var s = ServerConfig(name: "d")
        s.command = "uvx"
        s.env = ["T": "${secret:t}", "PLAIN": "p", "LIT": "$${secret:t}"]
        s.isolation = ServerIsolationConfig()
        s.isolation?.mode = .docker
        var config = ProxyConfig()
        config.servers = [s]
        #expect(try SecretResolver.resolve(s, config: config, source: DictionarySource(values: ["t": "v"])).env["T"] == "v")
        #expect(SecretResolver.secretEnvironmentNames(of: s) == ["T"])
    }

    @Test("the config loader accepts references in url, headers and env, and reports malformed ones")
    func configValidation() throws {
        let ok = try ConfigLoader.parse(data: Data(#"{"mcpServers":[{"name":"h","url":"https://${secret:host}/mcp/${secret:path}","headers":{"Authorization":"Bearer ${secret:gh}"}},{"name":"s","command":"x","env":{"T":"${secret:t}"}}]}"#.utf8)).config
        #expect(ok.servers[0].url == "https://${secret:host}/mcp/${secret:path}")
        #expect(ok.servers[0].headers["Authorization"] == "Bearer ${secret:gh}")
        #expect(ok.servers[1].env["T"] == "${secret:t}")
        do {
            _ = try ConfigLoader.parse(data: Data(#"{"mcpServers":[{"name":"s","command":"x","env":{"T":"${secret:t"}}]}"#.utf8))
            Issue.record("an unterminated reference must fail")
        } catch let e as ProxyError {
            #expect(e.message.contains("mcpServers[0].env.T"))
            #expect(e.message.contains("unterminated secret reference"))
        }
    }
}

@Suite("Secret references in listed URLs")
struct SecretReferenceRedactionTests {
    @Test("a listed URL keeps its references readable and masks query values")
    func redaction() {
        #expect(URLRedaction.redact("https://h/${secret:p}/mcp?k=${secret:q}") == "https://h/${secret:p}/mcp?k=***")
    }
}
