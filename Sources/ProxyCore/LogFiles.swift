import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// An append-only log file with size-based rotation (`name.log` → `name.log.1` … `.N`).
public final class LogFile: @unchecked Sendable {  // @unchecked: `fd`, `size`, `droppedLines` are guarded by `lock`
    public let path: String
    private let maxBytes: Int
    private let keep: Int
    private let lock = NSLock()
    private var fd: Int32 = -1
    private var size = 0
    private var droppedLines = 0

    /// Lines that could not be written (disk full, I/O error); logging drops rather than fails.
    public var dropped: Int { lock.lock(); defer { lock.unlock() }; return droppedLines }

    public init(path: String, maxBytes: Int = 10 << 20, keep: Int = 3) {
        self.path = path
        self.maxBytes = maxBytes
        self.keep = keep
    }

    private func openIfNeeded() {
        guard fd < 0 else { return }
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        var st = stat()
        if fd >= 0, fstat(fd, &st) == 0 { size = Int(st.st_size) }
    }

    /// Appends one line (a newline is added).
    public func write(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        lock.lock(); defer { lock.unlock() }
        openIfNeeded()
        guard fd >= 0 else { droppedLines += 1; return }
        if size + bytes.count > maxBytes { rotate() }
        guard fd >= 0 else { droppedLines += 1; return }
        // A regular file: write() does not block on a reader; ENOSPC/EIO drop the line.
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n > 0 { size += n }
        if n != bytes.count { droppedLines += 1 }
    }

    private func rotate() {
        close(fd); fd = -1
        let fm = FileManager.default
        try? fm.removeItem(atPath: "\(path).\(keep)")
        if keep > 1 {
            for i in stride(from: keep - 1, through: 1, by: -1) where fm.fileExists(atPath: "\(path).\(i)") {
                try? fm.moveItem(atPath: "\(path).\(i)", toPath: "\(path).\(i + 1)")
            }
        }
        try? fm.moveItem(atPath: path, toPath: "\(path).1")
        size = 0
        openIfNeeded()
    }

    /// The last `n` lines of the current file.
    public func tail(_ n: Int) -> [String] {
        lock.lock(); defer { lock.unlock() }
        guard n > 0, let h = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? h.close() }
        let end = (try? h.seekToEnd()) ?? 0
        var chunk = UInt64(max(4096, n * 200))
        while true {
            let start = end > chunk ? end - chunk : 0
            try? h.seek(toOffset: start)
            let data = (try? h.readToEnd()) ?? Data()
            var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if lines.last == "" { lines.removeLast() }
            if start > 0 { lines.removeFirst() }  // partial line
            if lines.count >= n || start == 0 { return Array(lines.suffix(n)) }
            chunk *= 4
        }
    }
}

/// The proxy's log files under `<data dir>/logs`: `main.log` and one `server-NAME.log` each.
public final class LogFiles: @unchecked Sendable {  // @unchecked: `files` is guarded by `lock`
    public let directory: String
    private let lock = NSLock()
    private var files: [String: LogFile] = [:]

    public init(directory: String) {
        self.directory = directory
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
    }

    public func file(named name: String) -> LogFile {
        lock.lock(); defer { lock.unlock() }
        if let f = files[name] { return f }
        let f = LogFile(path: (directory as NSString).appendingPathComponent(name))
        files[name] = f
        return f
    }

    public var main: LogFile { file(named: "main.log") }
    public func server(_ name: String) -> LogFile { file(named: "server-\(name).log") }
}

/// A swift-log handler writing `timestamp level [label] message key=value` lines to a file
/// and, optionally, to stderr.
public struct FileLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private let files: [LogFile]
    private let stderr: Bool

    public init(label: String, files: [LogFile], level: Logger.Level, alsoStderr: Bool) {
        self.label = label
        self.files = files
        self.logLevel = level
        self.stderr = alsoStderr
    }

    /// One log line as both log handlers write it: time, level, label, message, sorted metadata.
    static func line(level: Logger.Level, label: String, message: Logger.Message, metadata: Logger.Metadata,
                     explicit: Logger.Metadata?) -> String {
        var all = metadata
        if let explicit { all.merge(explicit) { _, b in b } }
        var text = "\(timestamp()) \(level.rawValue.uppercased()) [\(label)] \(message)"
        for k in all.keys.sorted() { text += " \(k)=\(all[k]!)" }
        return text
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
                    source: String, file: String, function: String, line: UInt) {
        let text = Self.line(level: level, label: label, message: message, metadata: metadata, explicit: explicit)
        for f in files { f.write(text) }
        if stderr { ConsoleSink.standardError.write(text) }
    }

    public static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday,
                      tmv.tm_hour, tmv.tm_min, tmv.tm_sec, Int(tv.tv_usec / 1000))
    }
}
