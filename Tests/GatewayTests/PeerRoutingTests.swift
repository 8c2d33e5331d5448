import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import ProxyCore
import Testing
@testable import Upstream

/// A transport that answers requests in reverse order of arrival, to prove ids route replies.
final class ReversingTransport: UpstreamTransport, @unchecked Sendable {
    let lock = NIOLock()
    var held: [[UInt8]] = []
    weak var peer: JSONRPCPeer?
    let batch: Int
    init(batch: Int) { self.batch = batch }

    func send(_ message: [UInt8]) async throws {
        let ready: [[UInt8]]? = lock.withLock {
            held.append(message)
            guard held.count == batch else { return nil }
            defer { held.removeAll() }
            return held.reversed()
        }
        for m in ready ?? [] {
            let env = try JSONRPCEnvelope.parse(m)
            let params = String(decoding: m[env.params!], as: UTF8.self)
            // Echo the params back as the result, under the request's id.
            peer?.deliver(Array(#"{"jsonrpc":"2.0","id":\#(String(decoding: env.id!, as: UTF8.self)),"result":\#(params)}"#.utf8))
        }
    }
    func close() async {}
}

@Suite struct PeerRoutingTests {
    @Test func repliesRouteByIDOutOfOrder() async throws {
        let peer = JSONRPCPeer(serverName: "t", eventLoop: MultiThreadedEventLoopGroup.singleton.next())
        let transport = ReversingTransport(batch: 16)
        transport.peer = peer
        peer.transport = transport
        try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for i in 0..<16 {
                group.addTask {
                    let r = try await peer.request(method: "m", params: Array(#"{"n":\#(i)}"#.utf8), timeout: 5)
                    return (i, String(decoding: r.resultBytes!, as: UTF8.self))
                }
            }
            for try await (i, result) in group { #expect(result == #"{"n":\#(i)}"#) }
        }
        #expect(peer.inFlight == 0)
    }

    @Test func timeoutAndFailAll() async throws {
        let peer = JSONRPCPeer(serverName: "slow", eventLoop: MultiThreadedEventLoopGroup.singleton.next())
        let transport = ReversingTransport(batch: 1000)
        transport.peer = peer
        peer.transport = transport
        await #expect(throws: ProxyError.self) { _ = try await peer.request(method: "m", params: nil, timeout: 0.05) }
        async let pending: RawMessage = peer.request(method: "m", params: nil, timeout: 10)
        try await Task.sleep(nanoseconds: 50_000_000)
        peer.fail(ProxyError(.upstreamFailed, "upstream server \"slow\" exited (exit status 3)"))
        do { _ = try await pending; Issue.record("expected failure") } catch let e as ProxyError {
            #expect(e.message.contains("exit status 3"))
        }
        await #expect(throws: ProxyError.self) { _ = try await peer.request(method: "m", params: nil, timeout: 1) }
    }

    @Test func sseParser() {
        var p = SSEParser()
        var events = p.feed(Array("event: endpoint\r\ndata: /messages?s=1\r\n\r\n: comment\n".utf8))
        events += p.feed(Array("data: {\"a\":\ndata: 1}\n".utf8))
        events += p.feed(Array("\n".utf8))
        #expect(events == [SSEParser.Event(event: "endpoint", data: "/messages?s=1", id: nil),
                           SSEParser.Event(event: "message", data: "{\"a\":\n1}", id: nil)])
    }
}
