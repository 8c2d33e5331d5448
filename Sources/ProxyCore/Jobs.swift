import Foundation

/// The background work of one owner (an upstream server, the server manager), run as child
/// tasks of the owner's `run()`, which the owner's own supervisor runs in its task group. So no
/// piece of it outlives its owner: `close()` ends `run()`, which first cancels what is still
/// running (a restart backoff asleep, a health-ping loop) and waits for it.
///
/// Work comes from places that cannot await (a process exit seen on an event loop, a
/// notification from a transport) or must not block their caller (a launch): `spawn` queues it.
/// Queued work starts in order; each piece then runs concurrently with the others.
public final class Jobs: @unchecked Sendable {  // @unchecked: `queue`, `waiter` and `closed` are guarded by `lock`
    public typealias Job = @Sendable () async -> Void
    private let lock = NSLock()
    private var queue: [Job] = []
    private var waiter: CheckedContinuation<Void, Never>?
    private var closed = false

    public init() {}

    /// Queues `job`; false once closed (the job is not taken: a caller whose work must run then
    /// runs it itself).
    @discardableResult
    public func spawn(_ job: @escaping Job) -> Bool {
        lock.lock()
        if closed {
            lock.unlock()
            return false
        }
        queue.append(job)
        let w = waiter
        waiter = nil
        lock.unlock()
        w?.resume()
        return true
    }

    /// No more jobs: `run()` starts what was queued, cancels what still runs and returns once
    /// it has ended.
    public func close() {
        lock.lock()
        closed = true
        let w = waiter
        waiter = nil
        lock.unlock()
        w?.resume()
    }

    /// Runs the queued jobs until `close()` (or until the calling task is cancelled, which
    /// closes), then cancels the ones still running and returns when they have ended. Nothing
    /// queued is dropped: what was taken before the close still starts. Call once.
    public func run() async {
        await withDiscardingTaskGroup { group in
            while true {
                let batch = await take()
                if batch.isEmpty { break }
                for job in batch { group.addTask(operation: job) }
            }
            group.cancelAll()
        }
    }

    /// The queued jobs, waiting for some; empty once closed and drained.
    private func take() async -> [Job] {
        enum Next { case batch([Job]), done, wait }
        while true {
            let next: Next = lock.withLock {
                if !queue.isEmpty {
                    defer { queue = [] }
                    return .batch(queue)
                }
                if closed || Task.isCancelled {
                    closed = true
                    return .done
                }
                return .wait
            }
            switch next {
            case .batch(let b): return b
            case .done: return []
            case .wait: break
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let resumeNow = lock.withLock { () -> Bool in
                        if !queue.isEmpty || closed { return true }
                        waiter = c
                        return false
                    }
                    if resumeNow { c.resume() }
                }
            } onCancel: {
                close()
            }
        }
    }
}

/// A one-shot signal: `wait()` returns once `signal()` was called (at once if it was already).
/// Orders operations that run as separate jobs (each waits for its predecessor's baton).
public final class Baton: @unchecked Sendable {  // @unchecked: `signalled` and `waiters` are guarded by `lock`
    private let lock = NSLock()
    private var signalled = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init() {}

    public func signal() {
        lock.lock()
        signalled = true
        let w = waiters
        waiters = []
        lock.unlock()
        for c in w { c.resume() }
    }

    public func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            lock.lock()
            if signalled {
                lock.unlock()
                c.resume()
            } else {
                waiters.append(c)
                lock.unlock()
            }
        }
    }
}
