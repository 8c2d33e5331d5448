import Foundation
import ProxyCore
import Testing

/// `Jobs`: the owner's background work as child tasks of its `run()`; `Baton`: one-shot order.
@Suite struct JobsTests {
    /// Counts, readable from any task.
    final class Counter: @unchecked Sendable {  // @unchecked: `n` is guarded by `lock`
        private let lock = NSLock()
        private var n = 0
        func add() { lock.withLock { n += 1 } }
        var value: Int { lock.withLock { n } }
    }

    @Test func queuedJobsRunAndCloseEndsRun() async {
        let jobs = Jobs()
        let done = Counter()
        // Queued before run() starts: nothing is lost.
        for _ in 0..<10 { #expect(jobs.spawn { done.add() }) }
        async let running: Void = jobs.run()
        for _ in 0..<10 { jobs.spawn { done.add() } }
        let all = Baton()
        jobs.spawn {
            while done.value < 20 { try? await Task.sleep(nanoseconds: 1_000_000) }
            all.signal()
        }
        await all.wait()
        jobs.close()
        await running
        #expect(done.value == 20)
        // Closed: nothing more is taken, and the caller learns it.
        #expect(!jobs.spawn { done.add() })
    }

    @Test func closeCancelsWhatStillRunsAndWaitsForIt() async {
        let jobs = Jobs()
        let ended = Counter(), cancelled = Counter()
        async let running: Void = jobs.run()
        let started = Baton()
        jobs.spawn {
            started.signal()
            // A restart backoff asleep: ends at once when the owner closes.
            try? await Task.sleep(nanoseconds: 600_000_000_000)
            if Task.isCancelled { cancelled.add() }
            ended.add()
        }
        await started.wait()
        let t0 = ContinuousClock.now
        jobs.close()
        await running
        #expect(ended.value == 1 && cancelled.value == 1)
        #expect(ContinuousClock.now - t0 < .seconds(60))
    }

    @Test func cancellingRunClosesAndStartsWhatWasQueued() async {
        let jobs = Jobs()
        let ran = Counter()
        let task = Task { await jobs.run() }
        task.cancel()
        await task.value
        // Cancelled: closed, so later work is refused rather than lost.
        #expect(!jobs.spawn { ran.add() })
        #expect(ran.value == 0)
    }

    @Test func batonsOrderWork() async {
        let first = Baton(), second = Baton()
        let order = NSLock()
        nonisolated(unsafe) var seen: [Int] = []
        await withTaskGroup(of: Void.self) { g in
            g.addTask { await first.wait(); order.withLock { seen.append(2) }; second.signal() }
            g.addTask { order.withLock { seen.append(1) }; first.signal() }
            g.addTask { await second.wait(); await second.wait(); order.withLock { seen.append(3) } }
        }
        #expect(seen == [1, 2, 3])
    }
}

/// `JSONLine`: every framed message is one line.
@Suite struct JSONLineTests {
    @Test func rawLineBreaksBecomeSpacesAndNothingElseChanges() throws {
        let injected = Array("{\"x\":\n{\"jsonrpc\":\"2.0\",\"id\":\"INJ\",\"method\":\"tools/call\"}\r\n}".utf8)
        let flat = JSONLine.flatten(injected)
        #expect(!flat.contains(0x0A) && !flat.contains(0x0D))
        #expect(flat.count == injected.count)
        // The value is the same JSON.
        let a = try JSONSerialization.jsonObject(with: Data(injected)) as? NSDictionary
        let b = try JSONSerialization.jsonObject(with: Data(flat)) as? NSDictionary
        #expect(a == b)
        let plain = Array(#"{"text":"a\nb"}"#.utf8)  // an escaped newline is two bytes, not a line break
        #expect(JSONLine.flatten(plain) == plain)
    }
}
