import CShim
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Waits for the exit of every spawned child on one thread: each child is watched through a
/// pidfd (readable when it exits) in a single `poll`, then reaped with `waitpid` on its own pid,
/// so statuses of processes spawned by others (Foundation.Process) are never taken. Without pidfd
/// support (Linux < 5.3) a child gets a thread blocked in `waitpid` instead.
final class ChildReaper: @unchecked Sendable {  // @unchecked: `watches`, the wake pipe and `started` are guarded by `lock`
    static let shared = ChildReaper()

    private struct Watch {
        let pid: Int32
        let done: @Sendable (ExitStatus) -> Void
    }
    private let lock = NSLock()
    private var watches: [Int32: Watch] = [:]  // by pidfd
    private var wakeRead: Int32 = -1
    private var wakeWrite: Int32 = -1
    private var started = false

    /// Calls `done` (on the reaper thread) with the exit status of `pid`, a child of this process.
    func watch(pid: Int32, done: @escaping @Sendable (ExitStatus) -> Void) {
        let fd = mcpx_pidfd_open(pid)
        guard fd >= 0, ensureStarted() else {
            if fd >= 0 { close(fd) }
            Thread.detachNewThread { done(ExitStatus(waitStatus: mcpx_wait(pid))) }
            return
        }
        lock.lock()
        watches[fd] = Watch(pid: pid, done: done)
        lock.unlock()
        var one: UInt8 = 1
        _ = write(wakeWrite, &one, 1)
    }

    private func ensureStarted() -> Bool {
        lock.lock(); defer { lock.unlock() }
        if started { return true }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return false }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = mcpx_set_nonblocking(fd)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        started = true
        let t = Thread { [self] in self.run() }
        t.name = "mcpproxy-reaper"
        t.stackSize = 256 << 10
        t.start()
        return true
    }

    private func run() {
        var drain = [UInt8](repeating: 0, count: 256)
        while true {
            lock.lock()
            var polled = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            for fd in watches.keys { polled.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            lock.unlock()
            let n = poll(&polled, nfds_t(polled.count), -1)
            if n < 0 { if errno == EINTR { continue }; usleep(10_000); continue }
            if polled[0].revents != 0 { while read(wakeRead, &drain, drain.count) > 0 {} }
            for p in polled.dropFirst() where p.revents != 0 {
                lock.lock()
                let w = watches.removeValue(forKey: p.fd)
                lock.unlock()
                guard let w else { continue }
                close(p.fd)
                w.done(ExitStatus(waitStatus: mcpx_wait(w.pid)))
            }
        }
    }
}

extension ExitStatus {
    /// Decodes a wait status from `mcpx_wait` (negative: the wait failed).
    init(waitStatus st: Int32) {
        if st < 0 { self.init(code: nil, signal: nil) }
        else if mcpx_wifexited(st) != 0 { self.init(code: mcpx_wexitstatus(st), signal: nil) }
        else { self.init(code: nil, signal: mcpx_wtermsig(st)) }
    }
}
