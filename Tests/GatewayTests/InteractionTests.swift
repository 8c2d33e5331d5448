import Foundation
@testable import Gateway
import ProxyCore
import Testing

/// SEP-2322 interactions: questions out, answers in, the call's end; states bound to their owner.
@Suite struct InteractionTests {
    static let alice = Identity(kind: .token, name: "alice", servers: nil, ceiling: .write, manageServers: false, key: "token:alice")
    static let bob = Identity(kind: .token, name: "bob", servers: nil, ceiling: .write, manageServers: false, key: "token:bob")

    func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    @Test func aQuestionGoesOutAndItsAnswerComesBack() async throws {
        let i = Interaction(identity: Self.alice, method: "tools/call", target: "t", capabilities: ["sampling": [:]])
        let gate = AsyncStream<Void>.makeStream()
        i.start {
            // The upstream asks once, then finishes with what the client said.
            let answer = try? await i.ask(method: "sampling/createMessage", params: Array(#"{"q":1}"#.utf8)[...], timeout: 30)
            gate.continuation.finish()
            return .response(Array(#"{"jsonrpc":"2.0","id":1,"result":"#.utf8) + (answer ?? []) + [UInt8(ascii: "}")])
        }
        guard case .input(let questions) = await i.next() else { Issue.record("expected a question"); return }
        #expect(questions.count == 1)
        let (key, request) = try #require(questions.first)
        #expect(text(request) == #"{"method":"sampling/createMessage","params":{"q":1}}"#)
        i.answer([key: Array(#"{"text":"42"}"#.utf8), "unknown-key": Array("1".utf8)])
        for await _ in gate.stream {}
        guard case .done(.response(let bytes)) = await i.next() else { Issue.record("expected the end"); return }
        #expect(text(bytes) == #"{"jsonrpc":"2.0","id":1,"result":{"text":"42"}}"#)
        #expect(i.isDone)
        // A retry collects the first request's result under its own id.
        #expect(text(MCPHandler.withID(bytes, Array("9".utf8))).contains(#""id":9"#))
    }

    @Test func aQuestionLeftUnansweredByARetryIsAskedAgainAndOneRetryWaitsAtATime() async throws {
        let i = Interaction(identity: Self.alice, method: "tools/call", target: "t", capabilities: nil)
        let answered = AsyncStream<Void>.makeStream()
        i.start {
            let a = try? await i.ask(method: "roots/list", params: nil, timeout: 30)
            answered.continuation.finish()
            return .response(Array(#"{"jsonrpc":"2.0","id":1,"result":"#.utf8) + (a ?? Array("null".utf8)) + [UInt8(ascii: "}")])
        }
        guard case .input(let first) = await i.next(), let key = first.first?.key else { Issue.record("expected a question"); return }
        // A retry whose answer is not an object (or was lost) gets the same question again.
        i.answer([key: Array("5".utf8)])
        guard case .input(let again) = await i.next() else { Issue.record("expected the question again"); return }
        #expect(again.map(\.key) == [key])
        // While one retry waits, a second one with the same state is turned away.
        async let waiting = i.next()
        try await Task.sleep(nanoseconds: 50_000_000)
        guard case .busy = await i.next() else { Issue.record("expected busy"); return }
        i.answer([key: Array(#"{"roots":[]}"#.utf8)])
        for await _ in answered.stream {}
        guard case .done = await waiting else { Issue.record("expected the end"); return }
    }

    @Test func oneIdentityCannotFillTheTable() {
        let table = Interactions()
        for _ in 0..<Interactions.perIdentity {
            #expect(table.add(Interaction(identity: Self.alice, method: "tools/call", target: nil, capabilities: nil), ttl: 60))
        }
        #expect(!table.add(Interaction(identity: Self.alice, method: "tools/call", target: nil, capabilities: nil), ttl: 60))
        #expect(table.add(Interaction(identity: Self.bob, method: "tools/call", target: nil, capabilities: nil), ttl: 60))
    }

    @Test func anUnansweredQuestionTimesOutUpstream() async {
        let i = Interaction(identity: Self.alice, method: "tools/call", target: "t", capabilities: nil)
        await #expect(throws: ProxyError.self) {
            _ = try await i.ask(method: "roots/list", params: nil, timeout: 0.1)
        }
    }

    @Test func cancellingFailsTheQuestionsAndCancelsTheCall() async {
        let i = Interaction(identity: Self.alice, method: "tools/call", target: "t", capabilities: nil)
        i.start {
            do {
                _ = try await i.ask(method: "elicitation/create", params: nil, timeout: 60)
                return .accepted
            } catch {
                return .cancelled(Array("cancelled".utf8))
            }
        }
        guard case .input = await i.next() else { Issue.record("expected a question"); return }
        i.cancel()
        guard case .done(.cancelled) = await i.next() else { Issue.record("expected the cancelled end"); return }
    }

    @Test func aStateResumesOnlyForItsOwnerMethodAndTarget() {
        let table = Interactions()
        let i = Interaction(identity: Self.alice, method: "tools/call", target: "docs:ask", capabilities: nil)
        #expect(i.state.hasPrefix("mcpx-") && i.state.count == 5 + 64)
        #expect(Interaction(identity: Self.alice, method: "tools/call", target: "docs:ask", capabilities: nil).state != i.state)
        #expect(table.add(i, ttl: 60))
        #expect(table.resume(i.state, identity: Self.bob, method: "tools/call", target: "docs:ask", ttl: 60) == nil)
        #expect(table.resume(i.state, identity: Self.alice, method: "prompts/get", target: "docs:ask", ttl: 60) == nil)
        #expect(table.resume(i.state, identity: Self.alice, method: "tools/call", target: "docs:other", ttl: 60) == nil)
        #expect(table.resume("mcpx-" + String(repeating: "0", count: 64), identity: Self.alice, method: "tools/call", target: "docs:ask", ttl: 60) == nil)
        #expect(table.resume(i.state, identity: Self.alice, method: "tools/call", target: "docs:ask", ttl: 60) === i)
        table.remove(i.state)
        #expect(table.resume(i.state, identity: Self.alice, method: "tools/call", target: "docs:ask", ttl: 60) == nil)
    }

    @Test func anExpiredStateDoesNotResume() {
        let table = Interactions()
        let i = Interaction(identity: Self.alice, method: "tools/call", target: nil, capabilities: nil)
        #expect(table.add(i, ttl: -1))
        #expect(table.resume(i.state, identity: Self.alice, method: "tools/call", target: nil, ttl: 60) == nil)
    }
}
