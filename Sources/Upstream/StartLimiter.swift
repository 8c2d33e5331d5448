import NIOConcurrencyHelpers

/// Bounds how many upstream servers start at the same time (spawn through `tools/list`).
/// With hundreds of servers, starting all at once makes each start slower than the whole batch
/// would take in waves, and piles up threads and descriptors; a server waits here for a slot, in
/// arrival order, and gives it back as soon as it is ready or has failed.
public final class StartLimiter: Sendable {
    private struct State {
        var available: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
        var head = 0
    }
    private let state: NIOLockedValueBox<State>
    /// Parallel starts allowed.
    public let limit: Int

    public init(limit: Int) {
        self.limit = max(1, limit)
        state = NIOLockedValueBox(State(available: max(1, limit)))
    }

    /// Waits for a slot.
    public func acquire() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLockedValue { s -> Bool in
                if s.available > 0 { s.available -= 1; return true }
                s.waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    /// Returns a slot (to the longest waiter, if any).
    public func release() {
        let next = state.withLockedValue { s -> CheckedContinuation<Void, Never>? in
            if s.head < s.waiters.count {
                let c = s.waiters[s.head]
                s.head += 1
                if s.head > 64, s.head * 2 > s.waiters.count { s.waiters.removeFirst(s.head); s.head = 0 }
                return c
            }
            s.available += 1
            return nil
        }
        next?.resume()
    }
}
