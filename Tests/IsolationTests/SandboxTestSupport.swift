import Foundation
import Testing
@testable import Isolation
import ProxyCore
#if canImport(Glibc)
import Glibc
#endif

/// Where the package's built products are: `<package>/.build/debug`, derived from this file.
enum SandboxProducts {
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let debugDir = packageRoot.appendingPathComponent(".build/debug")
    static var launcher: String { debugDir.appendingPathComponent("mcpproxy-sandbox").path }
    static var probe: String { reachable("mcpproxy-probe") }
    static var fixture: String { reachable("mcpproxy-fixture") }

    /// Servers run as an unprivileged uid after the drop; a checkout under /root (0700) is closed
    /// to it, so the binaries they exec are copied once into a world-readable temp dir.
    /// Copied once (a `static let` initializer runs exactly once, even with parallel tests).
    static let binDir: String = {
        let dir = "/tmp/mcpx-sbx-bin-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        for name in ["mcpproxy-probe", "mcpproxy-fixture"] {
            let target = dir + "/" + name
            try? FileManager.default.removeItem(atPath: target)
            try? FileManager.default.copyItem(atPath: debugDir.appendingPathComponent(name).path, toPath: target)
            chmod(target, 0o755)
        }
        return dir
    }()
    static func reachable(_ name: String) -> String { binDir + "/" + name }
}

/// A throwaway world for one sandboxed run: a fake HOME with a planted SSH key, a fake proxy data
/// dir with an API key file, a runtime dir, a directory outside the allowlist that the sandbox
/// uid could write by file permissions alone (so only Landlock stands in the way). Removed on deinit.
final class SandboxWorld {
    let root: String
    var home: String { root + "/home" }
    var sshKey: String { root + "/home/.ssh/id_rsa" }
    var dataDir: String { root + "/home/.mcpproxy" }
    var apiKeyFile: String { root + "/home/.mcpproxy/api_key" }
    var runtimeDir: String { root + "/run" }
    var workDir: String { root + "/work" }
    var outsideDir: String { root + "/outside" }
    var setuidDir: String { root + "/suid" }

    init() throws {
        var template = Array("/tmp/mcpx-sbx-XXXXXX".utf8CString)
        let made: String? = template.withUnsafeMutableBufferPointer { buf in
            mkdtemp(buf.baseAddress!).map { String(cString: $0) }
        }
        guard let made else { throw ProxyError(.internalError, "mkdtemp failed: errno \(errno)") }
        root = made
        let fm = FileManager.default
        chmod(root, 0o755)
        for d in [home + "/.ssh", dataDir, runtimeDir, outsideDir, setuidDir] {
            try fm.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        // World-readable/writable on purpose: file permissions would let the sandbox uid in.
        try "-----BEGIN OPENSSH PRIVATE KEY-----\nplanted\n".write(toFile: sshKey, atomically: false, encoding: .utf8)
        try "mcpx-test-api-key-0123456789".write(toFile: apiKeyFile, atomically: false, encoding: .utf8)
        try "SECRET=1\n".write(toFile: root + "/outside/.env", atomically: false, encoding: .utf8)
        for (p, m) in [(home, 0o755), (home + "/.ssh", 0o755), (sshKey, 0o644), (dataDir, 0o755), (apiKeyFile, 0o644),
                       (outsideDir, 0o777), (root + "/outside/.env", 0o644), (runtimeDir, 0o755), (setuidDir, 0o755)] {
            chmod(p, mode_t(m))
        }
        // A setuid-root copy of id: without no_new_privs it would report euid 0.
        try fm.copyItem(atPath: "/usr/bin/id", toPath: setuidDir + "/id")
        chown(setuidDir + "/id", 0, 0)
        chmod(setuidDir + "/id", 0o4755)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func context(hostEnvironment: [String: String] = ["PATH": EnvironmentPolicy.defaultPath,
                                                       "AWS_SECRET_ACCESS_KEY": "host-secret-do-not-leak"]) -> LaunchContext {
        LaunchContext(dataDir: dataDir, instanceID: "test", proxyPID: getpid(), hostEnvironment: hostEnvironment,
                      sandboxLauncher: SandboxProducts.launcher, runtimeDir: runtimeDir, homeDir: home,
                      launchID: "t1")
    }

    /// Plans `server` with the real host and kernel.
    func plan(_ server: ServerConfig, config: ProxyConfig = ProxyConfig()) throws -> LaunchPlan {
        try SandboxPlanner.plan(server: server, command: server.command!, config: config,
                                decision: IsolationDecision(mode: .sandbox, source: .perServerMode),
                                context: context(), host: LiveSandboxHost(), kernel: .current)
    }
}

/// A process started from a plan, spoken to over newline-delimited JSON-RPC on its stdio.
final class ProbeSession: @unchecked Sendable {
    let process = Process()
    private let stdoutPipe = Pipe(), stderrPipe = Pipe()
    /// stdin is a raw pipe: the write end must really close for the server to see EOF.
    private var stdinWrite: Int32 = -1
    private let stdinLock = NSLock()
    private let lock = NSCondition()
    private var lines: [String] = []
    private var buffer = Data()
    private var stderrData = Data()
    private var closed = false
    private var nextID = 1

    /// The launch's cgroups, removed on stop as the supervisor does.
    private let cgroupDirectories: [String]

    init(plan: LaunchPlan) throws {
        cgroupDirectories = plan.cgroupDirectories
        process.executableURL = URL(fileURLWithPath: plan.executable)
        process.arguments = plan.arguments
        process.environment = plan.environment
        if let wd = plan.workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: wd) }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ProxyError(.internalError, "pipe: \(errno)") }
        // Close-on-exec for the write end, so no later child inherits it and holds EOF back.
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        let childStdin = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true)
        stdinWrite = fds[1]
        process.standardInput = childStdin
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        stdoutPipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let data = h.availableData
            guard let self else { return }
            self.lock.lock()
            if data.isEmpty { self.closed = true; h.readabilityHandler = nil }
            self.buffer.append(data)
            while let nl = self.buffer.firstIndex(of: 0x0A) {
                self.lines.append(String(decoding: self.buffer[self.buffer.startIndex..<nl], as: UTF8.self))
                self.buffer.removeSubrange(self.buffer.startIndex...nl)
            }
            self.lock.broadcast()
            self.lock.unlock()
        }
        stderrPipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let data = h.availableData
            if data.isEmpty { h.readabilityHandler = nil; return }
            guard let self else { return }
            self.lock.lock(); self.stderrData.append(data); self.lock.unlock()
        }
        try process.run()
        try? childStdin.close()
    }

    var stderr: String { lock.lock(); defer { lock.unlock() }; return String(decoding: stderrData, as: UTF8.self) }

    func send(_ object: [String: Any]) throws {
        var data = try JSONSerialization.data(withJSONObject: object)
        data.append(0x0A)
        stdinLock.lock()
        defer { stdinLock.unlock() }
        guard stdinWrite >= 0 else { throw ProxyError(.internalError, "stdin already closed") }
        try data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(stdinWrite, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if errno == EINTR { continue }; throw ProxyError(.upstreamFailed, "write to server stdin: errno \(errno)") }
                off += n
            }
        }
    }

    /// Sends a request and waits (up to `timeout` seconds) for the response with its id.
    func request(_ method: String, _ params: [String: Any] = [:], timeout: Double = 60) throws -> [String: Any] {
        let id = nextID
        nextID += 1
        try send(["jsonrpc": "2.0", "id": id, "method": method, "params": params])
        let deadline = Date().addingTimeInterval(timeout)
        lock.lock()
        defer { lock.unlock() }
        while true {
            if let i = lines.firstIndex(where: { line in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["id"] as? Int == id
            }) {
                let line = lines.remove(at: i)
                return try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            }
            if closed {
                throw ProxyError(.upstreamFailed, "server closed stdout before answering \(method); stderr: \(String(decoding: stderrData, as: UTF8.self))")
            }
            if !lock.wait(until: deadline) {
                throw ProxyError(.timeout, "no answer to \(method) in \(timeout)s; stderr: \(String(decoding: stderrData, as: UTF8.self))")
            }
        }
    }

    /// MCP handshake: initialize, then notifications/initialized.
    @discardableResult
    func initialize() throws -> [String: Any] {
        let r = try request("initialize", ["protocolVersion": "2025-06-18", "capabilities": [:] as [String: Any],
                                           "clientInfo": ["name": "sandbox-tests", "version": "1"]])
        try send(["jsonrpc": "2.0", "method": "notifications/initialized"])
        return r
    }

    /// Calls a probe tool and returns its structuredContent.
    func probe(_ tool: String, _ arguments: [String: Any] = [:]) throws -> [String: Any] {
        let r = try request("tools/call", ["name": tool, "arguments": arguments])
        guard let result = r["result"] as? [String: Any], let sc = result["structuredContent"] as? [String: Any] else {
            throw ProxyError(.upstreamFailed, "probe \(tool): unexpected reply \(r)")
        }
        return sc
    }

    private var exitStatus: Int32?
    private var stopped = false

    /// Waits up to `timeout` seconds for the process to exit and returns its status (128+signal
    /// when killed), or nil. Reaps with waitpid itself: Foundation's own reaping was seen to miss
    /// children here, which left waitUntilExit hanging.
    func waitForExit(timeout: Double) -> Int32? {
        if let exitStatus { return exitStatus }
        let pid = process.processIdentifier
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid {
                exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
                return exitStatus
            }
            if r < 0 && errno == ECHILD && !process.isRunning {
                exitStatus = process.terminationStatus
                return exitStatus
            }
            usleep(5_000)
        } while Date() < deadline
        return nil
    }

    /// Closes stdin, waits briefly for a clean exit, then kills the whole process group.
    func stop() {
        guard !stopped else { return }
        stopped = true
        stdinLock.lock()
        if stdinWrite >= 0 { close(stdinWrite); stdinWrite = -1 }
        stdinLock.unlock()
        if waitForExit(timeout: 3) == nil {
            kill(-process.processIdentifier, SIGKILL)
            kill(process.processIdentifier, SIGKILL)
            _ = waitForExit(timeout: 10)
        }
        for dir in cgroupDirectories { SandboxCgroup.remove(dir) }
    }

    deinit { stop() }
}

/// A process outside the sandbox, optionally under another uid (via setpriv), to signal and trace.
final class OutsideProcess {
    let process = Process()
    init(uid: UInt32? = nil) throws {
        if let uid {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid", String(uid), "--regid", String(uid), "--clear-groups", "/bin/sleep", "300"]
        } else {
            process.executableURL = URL(fileURLWithPath: "/bin/sleep")
            process.arguments = ["300"]
        }
        try process.run()
        // setpriv execs sleep in place: the pid stays the same; wait until the uid took effect.
        if let uid {
            for _ in 0..<200 {
                if let s = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
                   s.contains("Uid:\t\(uid)\t") { break }
                usleep(5_000)
            }
        }
    }
    var pid: Int32 { process.processIdentifier }
    var isAlive: Bool { kill(pid, 0) == 0 && process.isRunning }
    // SIGKILL: a child spawned from a libdispatch worker thread inherits its blocked signal mask,
    // so SIGTERM (Process.terminate) may never arrive.
    deinit {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        for _ in 0..<2000 where waitpid(pid, &status, WNOHANG) == 0 { usleep(5_000) }
    }
}

/// A listening TCP socket on 127.0.0.1 (ephemeral port) that accepts nothing in particular.
final class LoopbackListener {
    let fd: Int32
    let port: Int
    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw ProxyError(.internalError, "listen failed: \(errno)") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
    }
    deinit { close(fd) }
}

/// A listening abstract unix socket (name without the leading NUL).
final class AbstractUnixListener {
    let fd: Int32
    let name: String
    init() throws {
        name = "mcpx-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(name.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw[0] = 0
            for (i, b) in bytes.enumerated() { raw[i + 1] = b }
        }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + 1 + bytes.count)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw ProxyError(.internalError, "abstract bind failed: \(errno)") }
    }
    deinit { close(fd) }
}

/// A listening pathname unix socket with a given mode, removed on deinit.
final class PathUnixListener {
    let fd: Int32
    let path: String
    init(path: String, mode: mode_t) throws {
        self.path = path
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        guard Self.withAddress(path, { bind(fd, $0, $1) }) == 0, listen(fd, 16) == 0 else {
            throw ProxyError(.internalError, "bind \(path) failed: \(errno)")
        }
        chmod(path, mode)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }
    deinit { close(fd); unlink(path) }

    /// Whether a connection is waiting (accepts and closes it).
    func accepted() -> Bool {
        let c = accept(fd, nil, nil)
        if c >= 0 { close(c); return true }
        return false
    }

    /// Connects from this (unconfined) process.
    static func connect(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        return withAddress(path) { Glibc.connect(fd, $0, $1) } == 0
    }

    static func withAddress(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in bytes.enumerated() where i < raw.count - 1 { raw[i] = b } }
        return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
    }
}

/// Spins `count` threads at full CPU until stopped: a sandbox applied to the wrong thread would
/// escape only sometimes, and load makes such races show.
final class CPULoad: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private var threads: [Thread] = []
    init(threads count: Int) {
        for _ in 0..<count {
            let t = Thread { [self] in
                var x: UInt64 = 1
                while self.isRunning { for _ in 0..<100_000 { x = x &* 6364136223846793005 &+ 1 } }
                if x == 42 { print("") }
            }
            t.start()
            threads.append(t)
        }
    }
    var isRunning: Bool { lock.lock(); defer { lock.unlock() }; return running }
    func stop() { lock.lock(); running = false; lock.unlock() }
    deinit { stop() }
}
