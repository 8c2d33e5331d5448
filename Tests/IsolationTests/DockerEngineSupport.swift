import Foundation
import Testing
@testable import Isolation
import ProxyCore

/// Real-engine helpers: the fixture image, a planned launch run through Foundation.Process, and
/// line-level JSON-RPC over its stdin/stdout.
enum DockerEngine {
    static let image = "mcpproxy-fixture:test"
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// Makes sure the engine answers and the fixture image exists (building it with
    /// scripts/build-test-images.sh when missing). Fails loudly instead of skipping.
    static let ready: Result<Void, ProxyError> = {
        let env = ProcessInfo.processInfo.environment
        guard let docker = CommandRunner.resolveExecutable("docker", path: env["PATH"]) else {
            return .failure(ProxyError(.unavailable, "docker CLI not on PATH: run scripts/setup.sh (installs docker.io)"))
        }
        let info = CommandRunner.runBlocking(docker, ["info", "--format", "{{.ServerVersion}}"], environment: env, timeout: 30, onLine: nil)
        guard info.status == 0 else {
            return .failure(ProxyError(.unavailable, "no Docker engine answers (\(info.stderr)): run scripts/setup.sh (starts dockerd)"))
        }
        let build = CommandRunner.runBlocking("/bin/bash", ["\(repoRoot)/scripts/build-test-images.sh"], environment: env, timeout: 900, onLine: nil)
        guard build.status == 0 else {
            return .failure(ProxyError(.unavailable, "scripts/build-test-images.sh failed: \(build.stderr) \(build.stdout)"))
        }
        return .success(())
    }()

    static func requireReady() throws {
        if case .failure(let e) = ready { Issue.record("Docker engine not ready: \(e)"); throw e }
    }

    static func docker(_ args: [String], env: [String: String]? = nil, timeout: Double = 60) -> CommandRunner.Result {
        let e = env ?? ProcessInfo.processInfo.environment
        let docker = CommandRunner.resolveExecutable("docker", path: e["PATH"]) ?? "/usr/bin/docker"
        return CommandRunner.runBlocking(docker, args, environment: e, timeout: timeout, onLine: nil)
    }

    static func context(instance: String = "test-\(UUID().uuidString.prefix(8))", proxyPID: Int32 = getpid(),
                        hostEnv: [String: String]? = nil) -> LaunchContext {
        let runtime = NSTemporaryDirectory() + "mcpproxy-docker-tests-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: runtime, withIntermediateDirectories: true)
        return LaunchContext(dataDir: NSHomeDirectory() + "/.mcpproxy", instanceID: instance, proxyPID: proxyPID,
                             hostEnvironment: hostEnv ?? ProcessInfo.processInfo.environment, sandboxLauncher: nil,
                             runtimeDir: runtime, homeDir: NSHomeDirectory(),
                             launchID: String(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)))
    }

    static func server(_ name: String, env: [String: String] = [:], _ configure: (inout ServerIsolationConfig) -> Void = { _ in }) -> ServerConfig {
        var s = ServerConfig(name: name)
        s.command = "/fixture"
        s.env = env
        var iso = ServerIsolationConfig()
        iso.mode = .docker
        iso.image = image
        iso.networkMode = "none"
        configure(&iso)
        s.isolation = iso
        return s
    }

    static func plan(_ server: ServerConfig, context: LaunchContext, config: ProxyConfig = ProxyConfig()) throws -> LaunchPlan {
        try Launcher.plan(server: server, config: config, context: context)
    }

    /// Docker-inspects `id` and returns the decoded object.
    static func inspect(_ id: String) throws -> [String: Any] {
        let r = docker(["inspect", id])
        guard r.status == 0, let list = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]],
              let first = list.first else {
            throw ProxyError(.notFound, "docker inspect \(id) failed: \(r.stderr)")
        }
        return first
    }

    /// Ids of containers carrying `label` (key=value), running or not.
    static func containers(label: String) -> [String] {
        docker(["ps", "-a", "-q", "--no-trunc", "--filter", "label=\(label)"]).stdout
            .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }
}

/// A launched plan: the docker client as a child process, with line-framed stdio.
final class DockerStdioSession: @unchecked Sendable {
    let process = Process()
    private let stdinPipe = Pipe(), stdoutPipe = Pipe(), stderrPipe = Pipe()
    private let lock = NSLock()
    private var lines: [String] = []
    private var errLines: [String] = []
    private let available = DispatchSemaphore(value: 0)
    private let done = DispatchGroup()

    init(_ plan: LaunchPlan) throws {
        guard let exe = CommandRunner.resolveExecutable(plan.executable, path: plan.environment["PATH"]) else {
            throw ProxyError(.notFound, "\(plan.executable) not found")
        }
        process.executableURL = URL(fileURLWithPath: exe)
        process.arguments = plan.arguments
        process.environment = plan.environment
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        try process.run()
        pump(stdoutPipe) { [self] line in lock.lock(); lines.append(line); lock.unlock(); available.signal() }
        pump(stderrPipe) { [self] line in lock.lock(); errLines.append(line); lock.unlock() }
    }

    private func pump(_ pipe: Pipe, _ onLine: @escaping @Sendable (String) -> Void) {
        done.enter()
        DispatchQueue.global().async { [done] in
            var buffer = Data()
            let handle = pipe.fileHandleForReading
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
                while let nl = buffer.firstIndex(of: 0x0A) {
                    onLine(String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self))
                    buffer.removeSubrange(buffer.startIndex...nl)
                }
            }
            done.leave()
        }
    }

    func send(_ object: [String: Any]) throws {
        var data = try JSONSerialization.data(withJSONObject: object)
        data.append(0x0A)
        stdinPipe.fileHandleForWriting.write(data)
    }

    /// Sends a request and waits for the response with the same id.
    func request(_ id: Int, _ method: String, _ params: [String: Any] = [:], timeout: Double = 30) throws -> [String: Any] {
        try send(["jsonrpc": "2.0", "id": id, "method": method, "params": params])
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            lock.lock()
            let index = lines.firstIndex { line in
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return false }
                return (o["id"] as? Int) == id
            }
            let line = index.map { lines.remove(at: $0) }
            lock.unlock()
            if let line, let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] { return o }
            _ = available.wait(timeout: .now() + 0.2)
        }
        throw ProxyError(.timeout, "no response to \(method) (id \(id)) within \(timeout) s; stderr: \(stderr)")
    }

    /// The text of a tools/call result.
    func callTool(_ id: Int, _ name: String, _ arguments: [String: Any] = [:]) throws -> (text: String, isError: Bool) {
        let r = try request(id, "tools/call", ["name": name, "arguments": arguments])
        let result = r["result"] as? [String: Any]
        let text = ((result?["content"] as? [[String: Any]])?.first?["text"] as? String) ?? "\(r)"
        return (text, result?["isError"] as? Bool ?? true)
    }

    func initialize() throws -> [String: Any] {
        let r = try request(1, "initialize", ["protocolVersion": "2025-06-18", "capabilities": [:] as [String: Any],
                                              "clientInfo": ["name": "docker-tests", "version": "1"]], timeout: 60)
        try send(["jsonrpc": "2.0", "method": "notifications/initialized"])
        return r
    }

    func closeStdin() { try? stdinPipe.fileHandleForWriting.close() }

    /// Waits for the docker client to exit; returns its status, or nil when it did not.
    func waitExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { return nil }
        _ = done.wait(timeout: .now() + 2)
        return process.terminationStatus
    }

    var stderr: [String] { lock.lock(); defer { lock.unlock() }; return errLines }

    func terminate() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        _ = waitExit(timeout: 5)
    }
}

/// Collects log lines from `@Sendable` callbacks.
final class DockerLogSink: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func append(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return items }
    var log: @Sendable (String) -> Void { { [self] in append($0) } }
}
