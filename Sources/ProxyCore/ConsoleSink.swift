import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The proxy's only writer to its own stderr. Logging must never crash or stall the proxy, and
/// stderr is a file descriptor the proxy does not control: its reader may be gone (`| head -1`:
/// EPIPE), slow (a full pipe blocks `write`) or a full disk (ENOSPC). So callers only append to a
/// bounded in-memory queue; one background thread does the blocking writes. When the queue is
/// full, or stderr is broken, lines are dropped and counted; when writing works again the sink
/// says how many were lost. `FileHandle.write` is not used: it traps on EPIPE.
public final class ConsoleSink: @unchecked Sendable {  // @unchecked: every `var` is guarded by `cond`
    /// The sink for file descriptor 2.
    public static let standardError = ConsoleSink(fd: 2)

    private let fd: Int32
    private let maxQueuedBytes: Int
    private let cond = NSCondition()
    private var queue: [[UInt8]] = []
    private var head = 0
    private var queuedBytes = 0
    private var droppedTotal = 0
    private var droppedUnreported = 0
    private var broken = false
    private var writing = false
    private var started = false

    /// - Parameter maxQueuedBytes: bytes that may wait for a slow reader before lines are dropped.
    public init(fd: Int32, maxQueuedBytes: Int = 256 << 10) {
        self.fd = fd
        self.maxQueuedBytes = maxQueuedBytes
    }

    /// Lines dropped so far (queue full, or stderr closed or failing).
    public var dropped: Int { cond.lock(); defer { cond.unlock() }; return droppedTotal }

    /// Queues `text` (a newline is added when missing). Never blocks on the descriptor.
    public func write(_ text: String) {
        var bytes = Array(text.utf8)
        if bytes.last != 0x0A { bytes.append(0x0A) }
        cond.lock()
        defer { cond.unlock() }
        if broken || queuedBytes + bytes.count > maxQueuedBytes {
            droppedTotal += 1
            droppedUnreported += 1
            return
        }
        queue.append(bytes)
        queuedBytes += bytes.count
        if !started {
            started = true
            let t = Thread { [self] in self.drain() }
            t.name = "mcpproxy-stderr"
            t.start()
        }
        cond.broadcast()  // the writer thread, and any flush() waiting
    }

    /// Waits up to `seconds` for queued lines to be written (before the process exits).
    public func flush(timeout seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        cond.lock()
        defer { cond.unlock() }
        while (head < queue.count || writing) && !broken {
            if !cond.wait(until: deadline) { return }
        }
    }

    private func drain() {
        while true {
            cond.lock()
            while head >= queue.count { cond.wait() }
            var batch: [UInt8] = []
            while head < queue.count {
                batch += queue[head]
                head += 1
            }
            queue.removeAll(keepingCapacity: queue.capacity <= 1024)
            head = 0
            queuedBytes = 0  // the batch in hand is bounded by the same limit
            let lost = droppedUnreported
            droppedUnreported = 0
            writing = true
            cond.unlock()

            if lost > 0 {
                let note = Array("mcpproxy: \(lost) log line(s) were dropped: stderr was not keeping up or not writable\n".utf8)
                batch = note + batch
            }
            let ok = writeAll(batch)

            cond.lock()
            writing = false
            if !ok.written {
                droppedTotal += ok.lines
                if ok.permanent {
                    broken = true
                    droppedTotal += queue.count - head
                    queue.removeAll()
                    head = 0
                    queuedBytes = 0
                } else {
                    droppedUnreported += ok.lines
                }
            }
            cond.broadcast()
            cond.unlock()
        }
    }

    /// Writes the batch; on failure says how many lines were lost and whether stderr is gone for good.
    private func writeAll(_ bytes: [UInt8]) -> (written: Bool, lines: Int, permanent: Bool) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n > 0 { offset += n; continue }
            let e = errno
            if n < 0 && e == EINTR { continue }
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) {
                // Someone made the descriptor non-blocking: wait for room without spinning.
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, 1000)
                continue
            }
            let lines = bytes[offset...].reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
            // EPIPE/EBADF/EINVAL: nobody will ever read; ENOSPC/EIO and others may pass.
            return (false, lines, e == EPIPE || e == EBADF || e == EINVAL)
        }
        return (true, 0, false)
    }
}

/// A swift-log handler that writes `level [label] message` lines through ``ConsoleSink``.
public struct ConsoleLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        ConsoleSink.standardError.write(FileLogHandler.line(level: level, label: label, message: message,
                                                            metadata: metadata, explicit: explicit))
    }
}
