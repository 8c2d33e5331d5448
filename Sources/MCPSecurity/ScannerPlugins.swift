import Foundation
import Isolation
import ProxyCore

/// Planning for Docker-based scanner plugins: whether one may run for a server, and the hardened
/// `docker run` arguments when it does.
public enum ScannerPluginPlanner {
    /// Why a plugin does not run under `mode`, or nil when it runs: the mode's backend says
    /// (only the container backend runs them; the other modes promise not to use an engine).
    public static func skipReason(_ plugin: ScannerPluginConfig, mode: IsolationMode,
                                  backends: IsolationBackends = .standard) -> String? {
        backends.backend(for: mode).scannerPluginSkipReason(plugin)
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
            "--ulimit", DockerPlanner.defaultUlimits[0], "--ulimit", DockerPlanner.defaultUlimits[1],
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

/// Runs plugins with a container engine's CLI (docker by default; `docker_isolation.engine`
/// chooses), hardened as `ScannerPluginPlanner.dockerArguments` says.
public struct DockerScannerRunner: ScannerPluginRunning {
    /// The engine that runs the plugins.
    public var engine: ContainerEngine

    public init(engine: ContainerEngine = .docker) { self.engine = engine }

    public func run(_ plugin: ScannerPluginConfig, input: Data) async throws -> Data {
        let name = "mcpproxy-scan-\(plugin.name.filter { $0.isLetter || $0.isNumber || $0 == "-" })-\(UUID().uuidString.prefix(8).lowercased())"
        let args = ScannerPluginPlanner.dockerArguments(plugin, containerName: name)
        guard engine.executable() != nil else {
            throw ProxyError(.unavailable, "scanner plugin \"\(plugin.name)\": the \(engine.name) CLI is not installed in \(engine.searchDirectories.joined(separator: ", ")); is \(engine.name) installed?")
        }
        // The engine CLI needs no secrets of ours: only the variables that say which engine.
        let env = ProcessSettings.current.only(Set(engine.endpointVariables))
        let r = await engine.run(args, environment: env, timeout: plugin.timeout, input: input)
        if r.timedOut {
            // Teardown that always finishes: the CLI is killed; remove the container it started.
            _ = await engine.run(["rm", "-f", name], environment: env, timeout: 30)
            throw ProxyError(.timeout, "scanner plugin \"\(plugin.name)\" did not finish within \(Int(plugin.timeout)) s")
        }
        if r.status != 0 {
            let tail = String(r.stderr.suffix(400)).trimmingCharacters(in: .whitespacesAndNewlines)
            throw ProxyError(.upstreamFailed, "scanner plugin \"\(plugin.name)\" exited with status \(r.status)", detail: tail)
        }
        return Data(r.stdout.utf8)
    }
}
