import Foundation
import ProxyCore

/// One isolation mechanism behind one seam: how a stdio server of its mode is planned, prepared,
/// observed, stopped, cleaned up after and diagnosed. The Upstream supervisor talks to its
/// server's backend only through this protocol and never names a mode; the backend for a mode
/// comes from `IsolationBackends`.
///
/// Planning is pure (config and launch context in, `LaunchPlan` out). Everything else is the
/// thin doing side around the spawn, which the supervisor performs itself:
///
///     plan → prepare → spawn (Upstream) → started → initialized → ... → stop ∥ process stop ladder → cleanUp
///                                                      ↘ exit → diagnose
///
/// Every hook has a do-nothing default, so a backend states only what it does.
public protocol IsolationBackend: Sendable {
    /// The mode this backend implements (its registry key).
    var mode: IsolationMode { get }

    /// Plans the launch of `server` (pure). Throws `.refused` when the isolation policy forbids
    /// what the server asks for, `.invalidConfig` for a malformed setting, `.unsupported` when
    /// the mode cannot run here.
    func plan(server: ServerConfig, command: String, config: ProxyConfig, decision: IsolationDecision,
              context: LaunchContext) throws -> LaunchPlan

    /// Spawn through `initialize`, seconds, for a server without its own `startup_timeout`.
    func startupTimeout(_ config: ProxyConfig) -> Double

    /// Whether a change of the proxy-wide settings from `old` to `new` must restart this
    /// backend's servers (their own config unchanged).
    func settingsChanged(from old: ProxyConfig, to new: ProxyConfig) -> Bool

    /// The log line that shows what is launched (secrets redacted).
    func launchLogLine(_ plan: LaunchPlan) -> String

    /// Before spawn and before the startup timer: writes the plan's files, fetches what the
    /// launch needs. Returns the plan to spawn (e.g. with an engine CLI's absolute path).
    func prepare(_ plan: LaunchPlan, log: @escaping @Sendable (String) -> Void) async throws -> LaunchPlan

    /// After spawn: observes the launch; returns a handle of what was started besides the
    /// process (a container id), or nil. May wait up to `timeout` seconds.
    func started(_ plan: LaunchPlan, timeout: Double) async -> String?

    /// The server answered `initialize`: what was needed only to start it (a secret file) can go.
    func initialized(_ plan: LaunchPlan)

    /// Stops what the backend started besides the process; runs concurrently with the
    /// process's own stop ladder and ends within the backend's bound.
    func stop(_ plan: LaunchPlan, handle: String?, grace: Double) async

    /// After the process is gone: removes what the launch left on the host (files, cgroups).
    /// Returns warnings for the server's log. Blocking steps run off the cooperative pool.
    func cleanUp(_ plan: LaunchPlan) async -> [String]

    /// A failed start or an exit explained in words (OOM, image missing, engine down), or nil.
    func diagnose(_ plan: LaunchPlan, handle: String?, exitStatus: Int32, stderrTail: [String]) async -> String?

    /// Once at proxy start, before any server starts: removes what an earlier proxy that died
    /// left behind. Returns how many resources were removed.
    func cleanupOrphans(instanceID: String, config: ProxyConfig, environment: [String: String],
                        log: @escaping @Sendable (String) -> Void) async -> Int

    /// What the isolation enforces for `plan`, key → value, for the API and `doctor`.
    func enforcement(_ plan: LaunchPlan) -> [String: String]

    /// Why a container-based scanner plugin cannot run for a server of this backend, or nil when
    /// it can.
    func scannerPluginSkipReason(_ plugin: ScannerPluginConfig) -> String?

    /// Where the running server's resource use can be read (`pid`: the process the proxy
    /// spawned; `handle`: what `started` returned).
    func resources(_ plan: LaunchPlan, handle: String?, pid: Int32?) async -> ResourceSource

    /// `doctor`: whether `command` resolves where the planned server will run, starting nothing.
    func checkCommand(_ plan: LaunchPlan, command: String, hostEnvironment: [String: String]) async -> CommandCheck
}

extension IsolationBackend {
    public func startupTimeout(_ config: ProxyConfig) -> Double { 30 }
    public func settingsChanged(from old: ProxyConfig, to new: ProxyConfig) -> Bool { false }
    public func launchLogLine(_ plan: LaunchPlan) -> String {
        "launching: " + JSONValue.array(plan.redactedCommandLine.map { .string($0) }).serialized()
    }
    public func prepare(_ plan: LaunchPlan, log: @escaping @Sendable (String) -> Void) async throws -> LaunchPlan {
        try PlannedFiles.write(plan)
        return plan
    }
    public func started(_ plan: LaunchPlan, timeout: Double) async -> String? { nil }
    public func initialized(_ plan: LaunchPlan) {}
    public func stop(_ plan: LaunchPlan, handle: String?, grace: Double) async {}
    public func cleanUp(_ plan: LaunchPlan) async -> [String] {
        PlannedFiles.remove(plan)
        return []
    }
    public func diagnose(_ plan: LaunchPlan, handle: String?, exitStatus: Int32, stderrTail: [String]) async -> String? { nil }
    public func cleanupOrphans(instanceID: String, config: ProxyConfig, environment: [String: String],
                               log: @escaping @Sendable (String) -> Void) async -> Int { 0 }
    public func enforcement(_ plan: LaunchPlan) -> [String: String] { plan.enforcement }
    public func resources(_ plan: LaunchPlan, handle: String?, pid: Int32?) async -> ResourceSource {
        pid.map { .process($0) } ?? .unknown
    }
    public func checkCommand(_ plan: LaunchPlan, command: String, hostEnvironment: [String: String]) async -> CommandCheck {
        HostCommand.check(command, environment: hostEnvironment)
    }
    public func scannerPluginSkipReason(_ plugin: ScannerPluginConfig) -> String? {
        "isolation mode \(mode.rawValue) runs no Docker, so the Docker-based scanner \"\(plugin.name)\" was skipped and the scan is incomplete; "
            + "use isolation mode docker on a host with a working Docker engine to run it (see MCPX_DOCKER_SNAP_APPARMOR for snap-docker hosts)"
    }
}

/// The backends by mode. Adding a backend: its own file (or folder) under `Backends/`, and one
/// entry in `standard`.
public struct IsolationBackends: Sendable {
    private let byMode: [IsolationMode: any IsolationBackend]
    /// Every registered backend, in registration order.
    public let all: [any IsolationBackend]

    public init(_ backends: [any IsolationBackend]) {
        var map: [IsolationMode: any IsolationBackend] = [:]
        for b in backends { map[b.mode] = b }
        byMode = map
        all = backends
    }

    /// The backends of this build.
    public static let standard = IsolationBackends([
        NoneBackend(),
        SandboxBackend(),
        ContainerBackend(),
    ])

    /// The backend of `mode`; one that refuses to plan when none is registered.
    public func backend(for mode: IsolationMode) -> any IsolationBackend {
        byMode[mode] ?? UnavailableBackend(mode: mode)
    }
}

/// Stands in for a mode with no backend in the registry: every plan fails clearly.
struct UnavailableBackend: IsolationBackend {
    let mode: IsolationMode
    func plan(server: ServerConfig, command: String, config: ProxyConfig, decision: IsolationDecision,
              context: LaunchContext) throws -> LaunchPlan {
        throw ProxyError(.unsupported, "server \"\(server.name)\": isolation mode \(mode.rawValue) is not available in this build")
    }
}
