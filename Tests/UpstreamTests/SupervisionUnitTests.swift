import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOPosix
import ProxyCore
import Testing
@testable import Upstream

/// A transport that never answers and records which requests were cancelled.
final class SilentTransport: UpstreamTransport, @unchecked Sendable {
    let cancelled = NIOLockedValueBox<[String]>([])
    func send(_ message: [UInt8]) async throws {}
    func close() async {}
    func cancel(requestID: [UInt8]) { cancelled.withLockedValue { $0.append(String(decoding: requestID, as: UTF8.self)) } }
}

@Suite struct SupervisionUnitTests {
    @Test func timedOutRequestsAreCancelledInTheTransportAndCountedAsAStreak() async throws {
        let peer = JSONRPCPeer(serverName: "s", eventLoop: MultiThreadedEventLoopGroup.singleton.next())
        let t = SilentTransport()
        peer.transport = t
        let streaks = NIOLockedValueBox<[Int]>([])
        peer.onTimeoutStreak = { n, _ in streaks.withLockedValue { $0.append(n) } }
        for _ in 0..<3 {
            await #expect(throws: ProxyError.self) { _ = try await peer.request(method: "tools/call", params: nil, timeout: 0.05) }
        }
        #expect(t.cancelled.withLockedValue { $0 } == ["1", "2", "3"])
        #expect(streaks.withLockedValue { $0 } == [1, 2, 3])
        // Any answer ends the streak.
        peer.deliver(Array(#"{"jsonrpc":"2.0","id":99,"result":{}}"#.utf8))
        #expect(streaks.withLockedValue { $0 } == [1, 2, 3, 0])
    }

    @Test func callsInFlightExcludePings() async throws {
        let peer = JSONRPCPeer(serverName: "s", eventLoop: MultiThreadedEventLoopGroup.singleton.next())
        peer.transport = SilentTransport()
        async let a: RawMessage = peer.request(method: "ping", params: nil, timeout: 5)
        async let b: RawMessage = peer.request(method: "tools/call", params: nil, timeout: 5)
        try await Task.sleep(nanoseconds: 50_000_000)
        #expect(peer.inFlight == 2)
        #expect(peer.callsInFlight == 1)
        peer.fail(ProxyError(.upstreamFailed, "done"))
        _ = try? await a
        _ = try? await b
    }

    @Test func overlongLineIsAnErrorNamingTheLimit() throws {
        let channel = EmbeddedChannel()
        let closed = NIOLockedValueBox<Error?>(nil)
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: 16)))
        try channel.pipeline.syncOperations.addHandler(LineSink(onLine: { _ in }, onClose: { e in closed.withLockedValue { $0 = e } }))
        var buf = channel.allocator.buffer(capacity: 64)
        buf.writeString(String(repeating: "x", count: 40))
        _ = try? channel.writeInbound(buf)
        let e = closed.withLockedValue { $0 }
        #expect(e is LineTooLong)
        #expect("\(e!)".contains("16 bytes"))
    }

    /// Lines come out whole and unchanged however the stream is cut into chunks (CRLF trimmed,
    /// empty lines kept, a line split right after its CR or before its LF).
    @Test func lineDecoderIsIndependentOfChunkBoundaries() throws {
        let text = "{\"a\":1}\n\r\n{\"b\":\"x\\ny\"}\r\n" + String(repeating: "z", count: 300) + "\nlast"
        let bytes = Array(text.utf8)
        func run(_ cuts: [Int]) throws -> [String] {
            let channel = EmbeddedChannel()
            let lines = NIOLockedValueBox<[String]>([])
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: 1 << 20)))
            try channel.pipeline.syncOperations.addHandler(LineSink(onLine: { b in lines.withLockedValue { $0.append(String(buffer: b)) } },
                                                                    onClose: { _ in }))
            var start = 0
            for c in cuts + [bytes.count] where c >= start {
                var buf = channel.allocator.buffer(capacity: c - start)
                buf.writeBytes(bytes[start..<c])
                try channel.writeInbound(buf)
                start = c
            }
            _ = try? channel.finish()
            return lines.withLockedValue { $0 }
        }
        let expected = ["{\"a\":1}", "", "{\"b\":\"x\\ny\"}", String(repeating: "z", count: 300), "last"]
        #expect(try run([]) == expected)
        for cut in 0...bytes.count {
            #expect(try run([cut]) == expected, "cut at \(cut)")
        }
        #expect(try run(Array(stride(from: 1, to: bytes.count, by: 3))) == expected)
    }

    /// The framer the stdio front end uses: an over-long line is reported once and skipped up to
    /// its newline, whatever the chunking; the lines around it come out whole.
    @Test func lineFramerSkipsAnOverlongLineAndRecovers() {
        let long = String(repeating: "x", count: 50)
        let bytes = Array("{\"a\":1}\n\(long)\n{\"b\":2}\r\n\(long)\nend".utf8)
        func run(_ chunk: Int) -> [String] {
            var framer = LineFramer(maxLength: 16)
            var out: [String] = []
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + chunk)
                bytes[start..<end].withUnsafeBytes { framer.append($0) }
                start = end
                while let f = framer.next() {
                    switch f {
                    case .line(let l): out.append(String(buffer: l))
                    case .tooLong: out.append("<too long>")
                    }
                }
            }
            if let last = framer.finish() { out.append(String(buffer: last)) }
            return out
        }
        let expected = ["{\"a\":1}", "<too long>", "{\"b\":2}", "<too long>", "end"]
        for chunk in 1...bytes.count {
            #expect(run(chunk) == expected, "chunk size \(chunk)")
        }
    }

    @Test func startLimiterBoundsParallelism() async {
        let limiter = StartLimiter(limit: 3)
        let running = NIOLockedValueBox((now: 0, peak: 0))
        await withTaskGroup(of: Void.self) { g in
            for _ in 0..<20 {
                g.addTask {
                    await limiter.acquire()
                    running.withLockedValue { $0.now += 1; $0.peak = max($0.peak, $0.now) }
                    try? await Task.sleep(nanoseconds: 5_000_000)
                    running.withLockedValue { $0.now -= 1 }
                    limiter.release()
                }
            }
        }
        #expect(running.withLockedValue { $0.peak } == 3)
    }
}

/// The stop ladder as a value (docs/architecture.md, "Stopping").
@Suite struct StopLadderTests {
    @Test func standardLadderIsStdinThenTermThenKill() {
        let l = StopLadder.standard(grace: 3)
        #expect(l.steps == [.init(.closeStdin, wait: 3), .init(.signal(SIGTERM), wait: 3), .init(.signal(SIGKILL), wait: nil)])
        #expect(l.boundedWait == 6)
        #expect(StopLadder.standard(grace: -1).boundedWait == 0)
    }
}
