import Foundation
import Testing
@testable import ProxyCore

@Suite struct SupervisionConfigTests {
    func load(_ text: String) throws -> ConfigLoader.Loaded {
        try ConfigLoader.parse(data: Data(text.utf8), file: "test.json")
    }

    @Test func defaults() throws {
        let c = try load(#"{"mcpServers":[]}"#).config
        #expect(c.supervision == SupervisionConfig())
        #expect(c.supervision.pingInterval == 30)
        #expect(c.supervision.pingMisses == 3)
        #expect(c.supervision.maxFailedStarts == 5)
        #expect(c.supervision.unresponsiveAfter == 3)
        #expect(c.clientIdleTimeout == 60)
    }

    @Test func allKeys() throws {
        let l = try load(#"{"client_idle_timeout":"5s","supervision":{"ping_interval":"500ms","ping_misses":2,"max_failed_starts":7,"unresponsive_after":4}}"#)
        #expect(l.warnings.isEmpty)
        #expect(l.config.clientIdleTimeout == 5)
        #expect(l.config.supervision.pingInterval == 0.5)
        #expect(l.config.supervision.pingMisses == 2)
        #expect(l.config.supervision.maxFailedStarts == 7)
        #expect(l.config.supervision.unresponsiveAfter == 4)
    }

    @Test(arguments: [
        (#"{"supervision":{"ping_interval":"10ms"}}"#, "supervision.ping_interval"),
        (#"{"supervision":{"ping_misses":0}}"#, "supervision.ping_misses"),
        (#"{"supervision":{"max_failed_starts":0}}"#, "supervision.max_failed_starts"),
        (#"{"supervision":{"unresponsive_after":"3"}}"#, "supervision.unresponsive_after"),
        (#"{"supervision":[]}"#, "supervision"),
        (#"{"client_idle_timeout":"0s"}"#, "client_idle_timeout"),
    ])
    func invalid(_ text: String, _ path: String) {
        do {
            _ = try load(text)
            Issue.record("accepted \(text)")
        } catch let e as ProxyError {
            #expect(e.code == .invalidConfig)
            #expect(e.message.contains(path), "\(e.message)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func unknownKeyInSupervisionWarns() throws {
        let l = try load(#"{"supervision":{"x_comment":"1s"}}"#)
        #expect(l.warnings.map(\.path) == ["supervision.x_comment"])
    }

    @Test func typoOfASupervisionKeyWarnsWithAGuess() throws {
        let l = try load(#"{"supervision":{"ping_intervall":"1s"}}"#)
        let w = try #require(l.warnings.first { $0.path == "supervision.ping_intervall" })
        #expect(w.message.contains("did you mean \"ping_interval\"?"))
    }
}
