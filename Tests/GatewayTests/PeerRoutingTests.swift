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
                    // Generous: all 16 must be sent before any is answered, and in a full test
                    // run other suites keep the cooperative pool busy (seen: 5 s was not enough).
                    let r = try await peer.request(method: "m", params: Array(#"{"n":\#(i)}"#.utf8), timeout: 60)
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

    /// Every way of cutting a stream into two or three chunks gives the same events as feeding it
    /// whole, for LF, CRLF and CR line ends (a CR at the end of a chunk, its LF in the next).
    @Test(arguments: ["\n", "\r\n", "\r"])
    func sseParserChunkBoundaries(_ eol: String) {
        let text = ["event: endpoint", "data: /m?s=1", "", ": comment", "id: 7", "data: {\"a\":", "data:1}", "",
                    "data:x", "ignored: y", "", "data: big" + String(repeating: "z", count: 40), "", ""].joined(separator: eol)
        let bytes = Array(text.utf8)
        var whole = SSEParser()
        let expected = whole.feed(bytes)
        #expect(expected == [SSEParser.Event(event: "endpoint", data: "/m?s=1", id: nil),
                             SSEParser.Event(event: "message", data: "{\"a\":\n1}", id: "7"),
                             SSEParser.Event(event: "message", data: "x", id: "7"),
                             SSEParser.Event(event: "message", data: "big" + String(repeating: "z", count: 40), id: "7")])
        for cut in 0...bytes.count {
            var p = SSEParser()
            var got = p.feed(bytes[..<cut])
            got += p.feed(bytes[cut...])
            #expect(got == expected, "cut at \(cut)")
            for cut2 in stride(from: cut, through: bytes.count, by: 7) {
                var q = SSEParser()
                var got2 = q.feed(bytes[..<cut])
                got2 += q.feed(bytes[cut..<cut2])
                got2 += q.feed(bytes[cut2...])
                #expect(got2 == expected, "cuts at \(cut), \(cut2)")
            }
        }
    }

    /// An event or line over the limit is dropped whole; the stream goes on with the next one.
    @Test func sseParserDropsOversizedEvents() {
        var p = SSEParser(maxBytes: 16)
        var events = p.feed(Array("data: 0123456789\ndata: 0123456789\n\n".utf8))  // 21 bytes joined
        events += p.feed(Array("data: ".utf8) + Array(repeating: UInt8(ascii: "q"), count: 10))
        events += p.feed(Array(repeating: UInt8(ascii: "q"), count: 10))  // a line over the limit, unfinished
        events += p.feed(Array("\n\ndata: ok\n\n".utf8))
        #expect(events == [SSEParser.Event(event: "message", data: "ok", id: nil)])
    }

    /// A 10 MB data line in 16 KB chunks is parsed in linear time (bytes, not characters).
    @Test func sseParserLargeEvent() {
        let payload = Array(repeating: UInt8(ascii: "a"), count: 10 << 20)
        let stream = Array("data: ".utf8) + payload + Array("\n\n".utf8)
        var p = SSEParser()
        var events: [SSEParser.Event] = []
        var i = 0
        while i < stream.count {
            events += p.feed(stream[i..<min(stream.count, i + 16384)])
            i += 16384
        }
        #expect(events.count == 1 && events[0].dataBytes == payload)
    }
}
