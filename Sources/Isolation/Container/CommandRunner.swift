import Foundation
import ProxyCore
#if canImport(Glibc)
import Glibc
#endif

/// Runs a short-lived helper program (a container engine's CLI) to completion: stdout and stderr
/// collected, optional stdin, a timeout that kills it. The one runner of engine commands for the
/// container lifecycle, scanner plugins and `mcpproxy audit`.
///
/// Not for servers: those are spawned by the Upstream layer with their own supervision.
public enum CommandRunner {
    /// The result of one run. A non-zero exit is a result to report, not a thrown error.
    public struct Result: Sendable {
        /// Exit status (-1 when the program could not be started).
        public var status: Int32
        /// Everything written to stdout.
        public var stdout: String
        /// Everything written to stderr.
        public var stderr: String
        /// True when the run was killed for exceeding its timeout.
        public var timedOut: Bool
    }

    /// Runs `executable` with `arguments` off the caller's thread; see `runBlocking`.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String],
                           timeout: Double, input: Data? = nil, onLine: (@Sendable (String) -> Void)? = nil) async -> Result {
        await Blocking.run {
            runBlocking(executable, arguments, environment: environment, timeout: timeout, input: input, onLine: onLine)
        }
    }

    /// Runs `executable` with `arguments` and exactly `environment`, writing `input` (if any) to
    /// its stdin and closing it; collects stdout (each line also to `onLine`) and stderr; kills it
    /// with SIGKILL after `timeout` seconds.
    public static func runBlocking(_ executable: String, _ arguments: [String], environment: [String: String],
                                   timeout: Double, input: Data? = nil, onLine: (@Sendable (String) -> Void)? = nil) -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        let outPipe = Pipe(), errPipe = Pipe()
        let inPipe = input.map { _ in Pipe() }
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = inPipe ?? FileHandle.nullDevice
        do { try process.run() } catch {
            return Result(status: -1, stdout: "", stderr: "cannot run \(executable): \(error)", timedOut: false)
        }
        let out = Collector(onLine: onLine), err = Collector(onLine: nil)
        // Both pipes are drained concurrently so a chatty program cannot dead-lock on a full pipe.
        let group = DispatchGroup()
        for (pipe, collector) in [(outPipe, out), (errPipe, err)] {
            group.enter()
            DispatchQueue.global().async {
                let handle = pipe.fileHandleForReading
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    collector.append(chunk)
                }
                group.leave()
            }
        }
        let timedOut = Flag()
        let pid = process.processIdentifier
        let timer = DispatchWorkItem {
            if process.isRunning {
                timedOut.set()
                kill(pid, SIGKILL)
            }
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + max(0.1, timeout), execute: timer)
        if let inPipe, let input {
            // A program that exits without reading gets EPIPE here, not SIGPIPE (ignored by the proxy).
            try? inPipe.fileHandleForWriting.write(contentsOf: input)
            try? inPipe.fileHandleForWriting.close()
        }
        process.waitUntilExit()
        timer.cancel()
        // A grandchild could hold the pipes open; do not wait for it for long.
        _ = group.wait(timeout: .now() + 2)
        return Result(status: process.terminationStatus, stdout: out.text, stderr: err.text, timedOut: timedOut.isSet)
    }

    /// The absolute path of `name` on `path` (colon-separated), or nil. For servers' own commands
    /// (which run with the PATH the user configured); engine CLIs are found by
    /// `ContainerEngine.executable()`, which does not trust PATH.
    public static func resolveExecutable(_ name: String, path: String?) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for dir in (path ?? EnvironmentPolicy.defaultPath).split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// The last non-empty line of `text`, trimmed.
    public static func lastLine(_ text: String) -> String? {
        text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.last { !$0.isEmpty }
    }

    /// Output collected by one reader thread, read after the group wait.
    final class Collector: @unchecked Sendable {
        // @unchecked: `data` and `partial` are guarded by `lock`; `onLine` is immutable.
        let lock = NSLock()
        var data = Data()
        var partial = Data()
        let onLine: (@Sendable (String) -> Void)?
        init(onLine: (@Sendable (String) -> Void)?) { self.onLine = onLine }
        func append(_ chunk: Data) {
            lock.lock(); data.append(chunk); lock.unlock()
            guard let onLine else { return }
            partial.append(chunk)
            while let nl = partial.firstIndex(of: 0x0A) {
                let line = String(decoding: partial[partial.startIndex..<nl], as: UTF8.self)
                partial.removeSubrange(partial.startIndex...nl)
                if !line.trimmingCharacters(in: .whitespaces).isEmpty { onLine(line) }
            }
        }
        var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
    }

    /// A flag set by the timer thread and read after the wait.
    final class Flag: @unchecked Sendable {
        // @unchecked: `value` is guarded by `lock`.
        let lock = NSLock()
        var value = false
        func set() { lock.lock(); value = true; lock.unlock() }
        var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    }
}
