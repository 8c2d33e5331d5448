import CShim
import Foundation
import Isolation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ProxyCore

#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended.
public struct ExitStatus: Sendable, Equatable, CustomStringConvertible {
    public var code: Int32?
    public var signal: Int32?
    public var description: String {
        if let code { return "exit status \(code)" }
        if let signal { return "killed by signal \(signal)\(signal == 9 ? " (SIGKILL)" : signal == 15 ? " (SIGTERM)" : "")" }
        return "unknown exit"
    }
    /// The shell-style number (128+signal for signals).
    public var shellStatus: Int32 { code ?? (128 + (signal ?? 0)) }
}

/// A spawned stdio server: its pid, its stdin/stdout as a NIO pipe channel carrying lines, and its
/// stderr as lines. The process is in its own process group and dies with the proxy.
public final class StdioProcess: UpstreamTransport, @unchecked Sendable {  // @unchecked: `stdinClosed` is guarded by `lock`; the rest is immutable
    public let pid: Int32
    private let channel: Channel
    private let stderrChannel: Channel?
    private let exitPromise: EventLoopPromise<ExitStatus>
    private let lock = NIOLock()
    private var stdinClosed = false

    /// The exit status, once the process has exited.
    public var exitFuture: EventLoopFuture<ExitStatus> { exitPromise.futureResult }

    private init(pid: Int32, channel: Channel, stderrChannel: Channel?, exitPromise: EventLoopPromise<ExitStatus>) {
        self.pid = pid
        self.channel = channel
        self.stderrChannel = stderrChannel
        self.exitPromise = exitPromise
    }

    /// Spawns the plan. `onLine` receives each stdout line, `onStderr` each stderr line.
    public static func launch(plan: LaunchPlan, group: EventLoopGroup, maxMessageBytes: Int,
                              onLine: @escaping @Sendable ([UInt8]) -> Void,
                              onStderr: @escaping @Sendable (String) -> Void,
                              onStdoutClosed: @escaping @Sendable (Error?) -> Void) async throws -> StdioProcess {
        var result = mcpx_spawn_result()
        let argv = [plan.executable] + plan.arguments
        let env = plan.environment.map { "\($0.key)=\($0.value)" }.sorted()
        let err: Int32 = withCStrings(argv) { argvp in
            withCStrings(env) { envp in
                let pidns: Int32 = plan.ownPIDNamespace ? 1 : 0
                if let cwd = plan.workingDirectory {
                    return mcpx_spawn(plan.executable, argvp, envp, cwd, pidns, &result)
                }
                return mcpx_spawn(plan.executable, argvp, envp, nil, pidns, &result)
            }
        }
        if err != 0 {
            let what = err == ENOENT
                ? "command not found (install it, or give its full path in \"command\"; `mcpproxy doctor` checks every server)"
                : err == EACCES ? "permission denied (is it executable, and reachable by the uid the server runs as?)"
                : String(cString: strerror(err))
            var msg = "cannot start \"\(plan.executable)\": \(what)"
            if err == ENOENT, let cwd = plan.workingDirectory, !FileManager.default.fileExists(atPath: cwd) {
                msg = "cannot start \"\(plan.executable)\": working_dir \"\(cwd)\" does not exist"
            }
            throw ProxyError(.upstreamFailed, msg)
        }
        let loop = group.next()
        let exitPromise = loop.makePromise(of: ExitStatus.self)
        let pid = result.pid
        // One reaper thread for all children (pidfds in one poll); a SIGCHLD-driven reaper would
        // steal statuses from other spawners in the process (Foundation.Process).
        ChildReaper.shared.watch(pid: pid) { exitPromise.succeed($0) }
        _ = mcpx_set_nonblocking(result.stdout_fd)
        _ = mcpx_set_nonblocking(result.stdin_fd)
        _ = mcpx_set_nonblocking(result.stderr_fd)
        let channel: Channel
        do {
            channel = try await NIOPipeBootstrap(group: loop)
                .channelOption(.allowRemoteHalfClosure, value: true)
                .channelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: maxMessageBytes)))
                        try ch.pipeline.syncOperations.addHandler(LineSink(onLine: { buf in
                            onLine(Array(buf.readableBytesView))
                        }, onClose: onStdoutClosed))
                    }
                }
                .takingOwnershipOfDescriptors(input: result.stdout_fd, output: result.stdin_fd)
                .get()
        } catch {
            kill(pid, SIGKILL)
            throw ProxyError(.upstreamFailed, "cannot attach to the pipes of \"\(plan.executable)\"", cause: error)
        }
        let stderrChannel = try? await NIOPipeBootstrap(group: loop)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFrameDecoder(maxLength: 1 << 20)))
                    try ch.pipeline.syncOperations.addHandler(LineSink(onLine: { buf in
                        onStderr(String(decoding: buf.readableBytesView, as: UTF8.self))
                    }, onClose: { _ in }))
                }
            }
            .takingOwnershipOfDescriptor(input: result.stderr_fd)
            .get()
        return StdioProcess(pid: pid, channel: channel, stderrChannel: stderrChannel, exitPromise: exitPromise)
    }

    /// Writes `message` as one line (raw CR/LF in it become spaces: see `JSONLine`).
    public func send(_ message: [UInt8]) async throws {
        var buf = channel.allocator.buffer(capacity: message.count + 1)
        buf.writeBytes(JSONLine.flatten(message))
        buf.writeInteger(UInt8(0x0A))
        try await channel.writeAndFlush(buf)
    }

    public func sendDetached(_ message: [UInt8], onFailure: @escaping @Sendable (Error) -> Void) {
        var buf = channel.allocator.buffer(capacity: message.count + 1)
        buf.writeBytes(JSONLine.flatten(message))
        buf.writeInteger(UInt8(0x0A))
        let promise = channel.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenFailure(onFailure)
        channel.writeAndFlush(buf, promise: promise)
    }

    /// Closes stdin (the polite way to ask an MCP stdio server to exit).
    public func closeStdin() async {
        let first = lock.withLock { () -> Bool in
            defer { stdinClosed = true }
            return !stdinClosed
        }
        guard first else { return }
        try? await channel.close(mode: .output)
    }

    /// Stops the process with `StopLadder.standard(grace:)`; returns the exit status.
    @discardableResult
    public func terminate(grace: Double) async -> ExitStatus {
        await terminate(ladder: .standard(grace: grace))
    }

    /// Runs `ladder` until the process exits. Returns the exit status.
    @discardableResult
    public func terminate(ladder: StopLadder) async -> ExitStatus {
        for step in ladder.steps {
            switch step.action {
            case .closeStdin: await closeStdin()
            case .signal(let sig): _ = mcpx_killpg(pid, sig)
            }
            if let wait = step.wait {
                if let s = await waitExit(seconds: wait) { return await finish(s) }
            } else {
                let s = (try? await exitFuture.get()) ?? ExitStatus(code: nil, signal: SIGKILL)
                return await finish(s)
            }
        }
        // A ladder whose every step has a deadline ends with SIGKILL regardless.
        _ = mcpx_killpg(pid, SIGKILL)
        let s = (try? await exitFuture.get()) ?? ExitStatus(code: nil, signal: SIGKILL)
        return await finish(s)
    }

    private func finish(_ status: ExitStatus) async -> ExitStatus {
        // Children the server left behind in its group go with it.
        _ = mcpx_killpg(pid, SIGKILL)
        try? await channel.close()
        try? await stderrChannel?.close()
        return status
    }

    /// Waits up to `seconds` for the exit; nil on timeout.
    public func waitExit(seconds: Double) async -> ExitStatus? {
        let loop = channel.eventLoop
        let timeout = loop.makePromise(of: ExitStatus?.self)
        let task = loop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) { timeout.succeed(nil) }
        exitFuture.whenSuccess { timeout.succeed($0) }
        let r = try? await timeout.futureResult.get()
        task.cancel()
        return r ?? nil
    }

    public func close() async {
        await terminate(grace: 2)
    }

    /// Sends SIGKILL to the whole process group now (tests, crash simulation).
    public func killGroup() { _ = mcpx_killpg(pid, SIGKILL) }
}

/// Runs `body` with a NULL-terminated C array of C strings.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    ptrs.append(nil)
    defer { for p in ptrs { free(p) } }
    return ptrs.withUnsafeBufferPointer { body($0.baseAddress!) }
}
