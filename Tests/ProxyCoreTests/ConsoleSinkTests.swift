import Foundation
import Testing
@testable import ProxyCore

#if canImport(Glibc)
import Glibc
#endif

@Suite("ConsoleSink: logging never crashes or blocks")
struct ConsoleSinkTests {
    @Test("a closed reader (EPIPE) drops and counts, without a signal or a trap")
    func closedReader() throws {
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        close(fds[0])
        let sink = ConsoleSink(fd: fds[1])
        for i in 0..<100 { sink.write("line \(i)") }
        sink.flush(timeout: 5)
        #expect(sink.dropped == 100)
        close(fds[1])
    }

    @Test("a full pipe nobody reads: writers return at once; the overflow is dropped and later reported")
    func fullPipe() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let sink = ConsoleSink(fd: fds[1], maxQueuedBytes: 64 << 10)
        let line = String(repeating: "x", count: 1000)
        let start = Date()
        for _ in 0..<2000 { sink.write(line) }  // 2 MB into a 64 KiB pipe and a 64 KiB queue
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(sink.dropped > 1000)
        // Drain: the sink resumes and says how many lines it lost.
        let flags = fcntl(fds[0], F_GETFL)
        _ = fcntl(fds[0], F_SETFL, flags | O_NONBLOCK)
        var seen = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        let deadline = Date().addingTimeInterval(10)
        sink.write("after")
        while Date() < deadline {
            let n = read(fds[0], &buf, buf.count)
            if n > 0 { seen += buf[0..<n] } else { usleep(10_000) }
            if String(decoding: seen, as: UTF8.self).contains("after\n") { break }
        }
        let text = String(decoding: seen, as: UTF8.self)
        #expect(text.contains("were dropped"))
        #expect(text.contains("after\n"))
        close(fds[0]); close(fds[1])
    }
}
