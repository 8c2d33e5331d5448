import Foundation
import ProxyCore

/// Everything needed to start one stdio server: the seam between configuration and spawning.
/// Each isolation backend (`IsolationBackend`: none / sandbox / docker) plans with a pure
/// function from config to a plan; the Upstream layer executes plans through the backend.
public struct LaunchPlan: Sendable, Equatable {
    /// Program to exec: an absolute path, or a bare name resolved on `environment["PATH"]`.
    public var executable: String
    /// Arguments after argv[0].
    public var arguments: [String]
    /// The child's complete environment (never the proxy's own: see `EnvironmentPolicy`).
    public var environment: [String: String]
    /// Working directory of the spawned process (for docker: of the docker client).
    public var workingDirectory: String?
    /// The resolved isolation decision this plan implements.
    public var decision: IsolationDecision
    /// The command line with secret values replaced by `***`, for logs and `doctor`.
    public var redactedCommandLine: [String]
    /// Set when the plan runs a container (the container backend's part of the plan).
    public var container: ContainerPlan?
    /// Human-readable notes (relaxations, degradations) to log at warn when launching.
    public var warnings: [String]
    /// What the isolation enforces, key → value, for the API and `doctor` (e.g. "landlock": "abi 7").
    public var enforcement: [String: String]
    /// Files the plan needs on disk before launch (written 0600), e.g. a docker env file.
    public var files: [PlannedFile]
    /// cgroup directories the launch creates; removed (remaining processes killed) after the
    /// server stops. See `SandboxCgroup.remove`.
    public var cgroupDirectories: [String]
    /// When the proxy runs as root: spawn the process as PID 1 of a PID namespace of its own, so
    /// nothing it starts outlives it (docs/architecture.md, "Stopping"). False for a process that
    /// must see host pids in /proc: podman's client starts conmon and runc, which record and
    /// signal containers by host pid (in a PID namespace runc cannot even create one).
    public var ownPIDNamespace: Bool = true
    /// Secret values for a container, delivered through a file on a read-only memory-backed
    /// mount read by the launcher entrypoint (`SecretDelivery`); nil when there are none.
    public var secrets: SecretDelivery?
    /// Set when the server's way out is the gateway's egress proxy (server key `egress`).
    public var egress: EgressPlan? = nil

    public init(executable: String, arguments: [String], environment: [String: String],
                workingDirectory: String?, decision: IsolationDecision,
                redactedCommandLine: [String]? = nil, container: ContainerPlan? = nil,
                warnings: [String] = [], enforcement: [String: String] = [:], files: [PlannedFile] = [],
                cgroupDirectories: [String] = []) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.decision = decision
        self.redactedCommandLine = redactedCommandLine ?? [executable] + arguments
        self.container = container
        self.warnings = warnings
        self.enforcement = enforcement
        self.files = files
        self.cgroupDirectories = cgroupDirectories
    }

    public var mode: IsolationMode { decision.mode }
}

/// A file a plan needs written before launch and removed after the process exits.
public struct PlannedFile: Sendable, Equatable {
    public var path: String
    public var contents: String
    public var mode: Int
    public init(path: String, contents: String, mode: Int = 0o600) {
        self.path = path
        self.contents = contents
        self.mode = mode
    }
}

/// The container side of a container plan (mode docker, any engine).
public struct ContainerPlan: Sendable, Equatable {
    public var name: String
    public var image: String
    /// `--cidfile` path; the container id is read from it after start.
    public var cidFile: String
    public var labels: [String: String]
    /// The engine that runs it (`ContainerEngines`): "docker", "podman".
    public var engine: String
    /// The OCI runtime (`OCIRuntimes`): "runc", "runsc".
    public var runtime: String
    /// A workspace instance's own network and volume, created (labelled with the workspace)
    /// before the container starts; nil for shared instances or when not used.
    public var workspaceNetwork: String? = nil
    public var workspaceVolume: String? = nil
    /// The host directory behind `workspaceVolume` (a local bind-backed volume), and the
    /// container user that must own it ("uid:gid", nil: the image's user).
    public var workspaceVolumeDir: String? = nil
    public var workspaceVolumeOwner: String? = nil
    public init(name: String, image: String, cidFile: String, labels: [String: String],
                engine: String = ContainerEngines.defaultName, runtime: String = OCIRuntimes.defaultName) {
        self.name = name
        self.image = image
        self.cidFile = cidFile
        self.labels = labels
        self.engine = engine
        self.runtime = runtime
    }
}

/// Facts about the running proxy that planners need; passed in so planning stays pure.
public struct LaunchContext: Sendable, Equatable {
    /// The proxy's data directory (denied to sandboxed servers).
    public var dataDir: String
    /// Unique id of this proxy instance (container label `mcpproxy.instance`).
    public var instanceID: String
    /// This proxy's pid (container label `mcpproxy.owner_pid`).
    public var proxyPID: Int32
    /// The proxy's own environment; planners copy only allowlisted parts of it.
    public var hostEnvironment: [String: String]
    /// Path of the `mcpproxy-sandbox` launcher, or nil if it is not installed next to the binary.
    public var sandboxLauncher: String?
    /// Directory for per-launch runtime files (cid files, env files, per-server temp dirs).
    public var runtimeDir: String
    /// The current user's home directory.
    public var homeDir: String
    /// A short random id per launch (container name suffix).
    public var launchID: String
    /// Operating system name: "linux", "macos", ...
    public var platform: String
    /// TCP ports the proxy itself listens on: a sandboxed server is never granted them.
    public var proxyListenPorts: [Int]
    /// Names of the server's `env` variables whose values came from `${secret:NAME}` references
    /// (`SecretResolver.secretEnvironmentNames`): docker mode delivers them through a file
    /// (`SecretDelivery`), never on the engine's command line or in the container's config.
    public var secretEnvNames: Set<String> = []
    /// The memory-backed directory for secret files (`SecretDelivery.baseDirectory`), nil when
    /// this host has none.
    public var secretsBaseDir: String?
    /// The workspace an instance is launched for (`instance: "workspace"`); nil: shared.
    public var workspace: String? = nil
    /// Where workspaces keep their files on this host (sandbox homes); see
    /// `WorkspaceNames.sandboxHome`.
    public var workspaceRoot: String = ""

    public init(dataDir: String, instanceID: String, proxyPID: Int32, hostEnvironment: [String: String],
                sandboxLauncher: String?, runtimeDir: String, homeDir: String, launchID: String,
                platform: String = LaunchContext.currentPlatform, proxyListenPorts: [Int] = []) {
        self.dataDir = dataDir
        self.instanceID = instanceID
        self.proxyPID = proxyPID
        self.hostEnvironment = hostEnvironment
        self.sandboxLauncher = sandboxLauncher
        self.runtimeDir = runtimeDir
        self.homeDir = homeDir
        self.launchID = launchID
        self.platform = platform
        self.proxyListenPorts = proxyListenPorts
    }


    public static var currentPlatform: String {
        #if os(Linux)
        return "linux"
        #elseif os(macOS)
        return "macos"
        #else
        return "other"
        #endif
    }
}

/// Which parts of the proxy's environment a child may see. Secure default: a short allowlist of
/// locale/path variables plus the server's declared `env`; nothing else (no tokens, no cloud keys).
public enum EnvironmentPolicy {
    /// Host variables passed to unconfined and sandboxed servers.
    public static let passThrough: Set<String> = [
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM",
    ]
    /// Host variables the docker client itself needs (never forwarded into the container).
    public static let dockerClient: Set<String> = [
        "PATH", "HOME", "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH",
        "DOCKER_TLS_VERIFY", "DOCKER_API_VERSION", "XDG_RUNTIME_DIR",
    ]
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The host variables in `allowed`, with a PATH always present.
    public static func filtered(_ host: [String: String], allowed: Set<String>) -> [String: String] {
        var env = host.filter { allowed.contains($0.key) }
        if env["PATH"] == nil { env["PATH"] = defaultPath }
        return env
    }

    /// Environment of an unconfined or sandboxed server: allowlisted host variables, then the
    /// server's declared env (which wins).
    public static func serverEnvironment(host: [String: String], declared: [String: String]) -> [String: String] {
        filtered(host, allowed: passThrough).merging(declared) { _, new in new }
    }
}

/// Replaces values of declared env variables in text, for logs.
public enum Redactor {
    public static func redactEnvAssignments(_ argv: [String], secrets: [String: String]) -> [String] {
        argv.map { redact($0, secrets: secrets) }
    }

    public static func redact(_ text: String, secrets: [String: String]) -> String {
        var out = text
        for (key, value) in secrets {
            if out.hasPrefix("\(key)=") { out = "\(key)=***" }
            if value.count >= 4 { out = out.replacingOccurrences(of: value, with: "***") }
        }
        return out
    }
}
