import Dispatch

/// Blocking work (waiting for a helper program, a syscall that may sleep, a retry loop with
/// `usleep`) run on a Dispatch worker thread and awaited, never run on Swift's cooperative pool.
///
/// That pool has one thread per core (two on a small host). One launch blocked in `ip netns add`
/// or `docker network rm` there takes half of the gateway's capacity to answer requests, and two
/// take all of it: requests then wait, with nothing busy, until the helper ends.
public enum Blocking {
    /// Runs `work` off the cooperative pool and returns its result.
    public static func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (done: CheckedContinuation<T, Never>) in
            DispatchQueue.global().async { done.resume(returning: work()) }
        }
    }

    /// Runs throwing `work` off the cooperative pool; rethrows its error.
    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<T, any Error>) in
            DispatchQueue.global().async { done.resume(with: Result { try work() }) }
        }
    }
}
