import Foundation
import ProxyCore

/// Planning for Docker-based scanner plugins: whether one may run for a server, and the hardened
/// `docker run` arguments when it does.
public enum ScannerPluginPlanner {
    /// Why a plugin does not run under `mode`, or nil when it runs (docker mode only: the plugins
    /// need the Docker engine, and the other modes promise not to use it).
    public static func skipReason(_ plugin: ScannerPluginConfig, mode: IsolationMode) -> String? {
        switch mode {
        case .docker:
            return nil
        case .sandbox:
            return "isolation mode sandbox runs no Docker, so the Docker-based scanner \"\(plugin.name)\" was skipped and the scan is incomplete; "
                + "use isolation mode docker on a host with a working Docker engine to run it (see MCPX_DOCKER_SNAP_APPARMOR for snap-docker hosts)"
        case .none:
            return "isolation mode none runs no Docker, so the Docker-based scanner \"\(plugin.name)\" was skipped and the scan is incomplete; "
                + "use isolation mode docker on a host with a working Docker engine to run it (see MCPX_DOCKER_SNAP_APPARMOR for snap-docker hosts)"
        }
    }

    /// `docker` arguments that run the plugin with no network, a read-only root file system, no
    /// capabilities, no privilege escalation, an unprivileged user and bounded resources.
    public static func dockerArguments(_ plugin: ScannerPluginConfig, containerName: String) -> [String] {
        [
            "run", "-i", "--rm", "--name", containerName,
            "--network", "none",
            "--read-only", "--tmpfs", "/tmp:rw,noexec,nosuid,size=16m",
            "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges",
            "--user", "65534:65534",
            "--memory", "256m", "--pids-limit", "64", "--cpus", "1",
            "--label", "mcpproxy.role=scanner", "--label", "mcpproxy.scanner=\(plugin.name)",
            plugin.image,
        ] + plugin.args
    }

    /// The JSON a plugin reads on stdin: `{"server": NAME, "tools": [tool objects as sent]}`.
    public static func input(server: String, tools: [ToolDefinition]) -> Data {
        JSONValue.object(["server": .string(server), "tools": .array(tools.map(\.raw))]).data
    }

    /// Parses a plugin's stdout: `{"findings": [{"rule_id", "severity" (hard|soft), "tool", "field",
    /// "message", "excerpt"}]}`. Unknown severities count as hard: a plugin that cannot say how bad
    /// a finding is should not be able to make it pass.
    public static func parseOutput(_ data: Data, plugin: String) throws -> [Finding] {
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch {
            throw ProxyError(.upstreamFailed, "scanner plugin \"\(plugin)\" wrote output that is not JSON", cause: error)
        }
        guard let list = root["findings"]?.arrayValue else {
            throw ProxyError(.upstreamFailed, "scanner plugin \"\(plugin)\" output has no \"findings\" array")
        }
        return list.compactMap { f in
            guard let tool = f["tool"]?.stringValue else { return nil }
            let severity: Finding.Severity = f["severity"]?.stringValue?.lowercased() == "soft" ? .soft : .hard
            return Finding(ruleID: "plugin.\(plugin).\(f["rule_id"]?.stringValue ?? "finding")", severity: severity, tool: tool,
                           field: f["field"]?.stringValue ?? "description", span: .init(start: 0, end: 0),
                           excerpt: String((f["excerpt"]?.stringValue ?? "").prefix(200)),
                           message: f["message"]?.stringValue ?? "reported by scanner plugin \(plugin)", scanner: plugin)
        }
    }
}

/// Runs a scanner plugin and returns its stdout. A seam so the gate can be tested without Docker.
public protocol ScannerPluginRunning: Sendable {
    func run(_ plugin: ScannerPluginConfig, input: Data) async throws -> Data
}

/// Runs plugins with the Docker CLI, hardened as `ScannerPluginPlanner.dockerArguments` says.
public struct DockerScannerRunner: ScannerPluginRunning {
    /// The docker executable.
    public var docker: String

    public init(docker: String = DockerScannerRunner.defaultDocker()) { self.docker = docker }

    /// The first Docker CLI found in the usual places (the environment's PATH is not trusted).
    public static func defaultDocker() -> String {
        for p in ["/usr/bin/docker", "/usr/local/bin/docker", "/bin/docker"] where FileManager.default.isExecutableFile(atPath: p) {
            return p
        }
        return "/usr/bin/docker"
    }

    public func run(_ plugin: ScannerPluginConfig, input: Data) async throws -> Data {
        let name = "mcpproxy-scan-\(plugin.name.filter { $0.isLetter || $0.isNumber || $0 == "-" })-\(UUID().uuidString.prefix(8).lowercased())"
        let args = ScannerPluginPlanner.dockerArguments(plugin, containerName: name)
        let docker = self.docker
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do {
                    continuation.resume(returning: try DockerScannerRunner.runBlocking(docker: docker, args: args, input: input,
                                                                                       timeout: plugin.timeout, plugin: plugin.name,
                                                                                       container: name))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    static func runBlocking(docker: String, args: [String], input: Data, timeout: Double, plugin: String,
                            container: String) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: docker)
        process.arguments = args
        // The docker CLI needs no secrets of ours: give it a minimal environment.
        var env = ["PATH": "/usr/local/bin:/usr/bin:/bin"]
        if let h = ProcessInfo.processInfo.environment["DOCKER_HOST"] { env["DOCKER_HOST"] = h }
        process.environment = env
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        do { try process.run() } catch {
            throw ProxyError(.unavailable, "scanner plugin \"\(plugin)\": cannot run \(docker); is Docker installed?", cause: error)
        }
        // Read both pipes concurrently so a chatty plugin cannot dead-lock on a full pipe.
        let group = DispatchGroup()
        let outBox = DataBox(), errBox = DataBox()
        group.enter()
        DispatchQueue.global().async { outBox.data = stdout.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errBox.data = stderr.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        try? stdin.fileHandleForWriting.write(contentsOf: input)
        try? stdin.fileHandleForWriting.close()
        if group.wait(timeout: .now() + timeout) == .timedOut {
            // Teardown that always finishes: remove the container, then kill the CLI.
            let rm = Process()
            rm.executableURL = URL(fileURLWithPath: docker)
            rm.arguments = ["rm", "-f", container]
            rm.environment = env
            try? rm.run()
            rm.waitUntilExit()
            process.terminate()
            process.waitUntilExit()
            throw ProxyError(.timeout, "scanner plugin \"\(plugin)\" did not finish within \(Int(timeout)) s")
        }
        process.waitUntilExit()
        // group.wait() above ordered the reader threads' writes before these reads.
        let out = outBox.data, err = errBox.data
        if process.terminationStatus != 0 {
            let tail = String(decoding: err.suffix(400), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw ProxyError(.upstreamFailed, "scanner plugin \"\(plugin)\" exited with status \(process.terminationStatus)", detail: tail)
        }
        return out
    }
}

/// A buffer filled by one reader thread and read after `DispatchGroup.wait`.
private final class DataBox: @unchecked Sendable {
    var data = Data()
}
