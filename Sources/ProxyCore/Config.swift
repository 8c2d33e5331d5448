import Foundation

/// Isolation modes for stdio servers (seed 001).
public enum IsolationMode: String, Sendable, Codable, CaseIterable, Equatable {
    case docker, sandbox, none
}

/// Upstream transport protocols.
public enum UpstreamProtocol: String, Sendable, Codable, CaseIterable, Equatable {
    case stdio
    /// Streamable HTTP (POST with JSON or SSE replies).
    case http
    /// Legacy HTTP+SSE (GET an event stream, POST to the announced endpoint).
    case sse
    /// Pick from the config: `command` → stdio, `url` → http.
    case auto
}

/// How upstream tools are exposed to clients.
public enum RoutingMode: String, Sendable, Codable, Equatable {
    /// Only the built-in tools (`retrieve_tools`, `call_tool`, ...).
    case retrieveTools = "retrieve_tools"
    /// Every upstream tool as `server__tool`, plus the built-ins.
    case direct
}

/// The whole configuration file, as parsed and validated.
public struct ProxyConfig: Sendable, Equatable {
    /// `host:port` for the HTTP endpoint.
    public var listen: String = "127.0.0.1:8080"
    /// `metrics_listen`: a second, loopback-only `host:port` serving `GET /metrics` without a
    /// credential (nil: `/metrics` only on the main listener, with the admin key).
    public var metricsListen: String? = nil
    public var routingMode: RoutingMode = .retrieveTools
    /// Largest accepted request body, bytes.
    public var maxRequestBodyBytes: Int = 4 * 1024 * 1024
    /// Timeout of one tools/call to an upstream, seconds.
    public var callTimeout: Double = 120
    /// Seconds a client connection may sit idle or half-sent before it is closed.
    public var clientIdleTimeout: Double = 60
    /// Origins allowed to call `/mcp` from a browser (besides localhost ones).
    public var allowedOrigins: [String] = []
    /// Whether the activity log records tool call arguments verbatim (default: size and hash only).
    public var logCallArguments: Bool = false
    public var dockerIsolation: DockerIsolationConfig = .init()
    public var sandbox: SandboxGlobalConfig = .init()
    /// Authentication, TLS and Host checks of the HTTP endpoint (`mcp_auth`, `oauth`, ...).
    public var auth: GatewayAuthConfig = .init()
    /// `security`: the security layer's settings (scanner plugins).
    public var security: SecurityConfig = .init()
    /// `supervision`: how upstream servers are watched and restarted.
    public var supervision: SupervisionConfig = .init()
    /// `tracing`: OpenTelemetry export (nil: off).
    public var tracing: TracingConfig? = nil
    public var servers: [ServerConfig] = []

    public init() {}

    /// The server with this name, if configured.
    public func server(named name: String) -> ServerConfig? { servers.first { $0.name == name } }
}

/// `docker_isolation`: the global isolation settings (the key name is historical: `mode` selects
/// any of the three modes).
public struct DockerIsolationConfig: Sendable, Equatable {
    public var mode: IsolationMode? = nil
    /// Legacy switch: true → docker, false → none (only when `mode` is absent).
    public var enabled: Bool? = nil
    public var memoryLimit: String = "512m"
    public var cpuLimit: String = "1.0"
    /// Container start through `initialize`, seconds.
    public var timeout: Double = 30
    public var networkMode: String = "bridge"
    public var registry: String = "docker.io"
    public var defaultImages: [String: String] = DockerIsolationConfig.seedImages
    public var extraArgs: [String] = []
    /// Container user (uid:gid); non-root by default.
    public var user: String = "65534:65534"
    public var pidsLimit: Int = 256
    /// Size of the `/tmp` tmpfs in the read-only container.
    public var tmpfsSize: String = "64m"
    /// `engine`: the container engine whose CLI runs the containers, "docker" or "podman"
    /// (names checked against the Isolation layer's engine registry when a server is planned).
    public var engine: String = "docker"
    /// `oci_runtime`: the OCI runtime the engine starts containers with, "runc" (the engine's
    /// default) or "runsc" (gVisor).
    public var ociRuntime: String = "runc"

    public init() {}

    /// The runtime-to-image table of seed 000.
    public static let seedImages: [String: String] = [
        "python": "python:3.11", "python3": "python:3.11", "uvx": "python:3.11",
        "pip": "python:3.11", "pipx": "python:3.11",
        "node": "node:20", "npm": "node:20", "npx": "node:20", "yarn": "node:20",
        "go": "golang:1.21-alpine", "cargo": "rust:1.75-slim", "rustc": "rust:1.75-slim",
        "ruby": "ruby:3.2-alpine", "gem": "ruby:3.2-alpine",
        "php": "php:8.2-cli-alpine", "composer": "php:8.2-cli-alpine",
        "binary": "alpine:3.18", "sh": "alpine:3.18", "bash": "alpine:3.18",
    ]
}

/// `sandbox`: global settings of the native sandbox mode.
public struct SandboxGlobalConfig: Sendable, Equatable {
    /// Start servers even when the kernel cannot enforce the whole policy (logged at warn).
    public var allowDegraded: Bool = false
    public var readPaths: [String] = []
    public var writePaths: [String] = []
    /// Address-space cap, e.g. "4g" (the default leaves room for runtimes that reserve a lot).
    public var memoryLimit: String? = nil
    public var maxOpenFiles: Int = 1024
    public var maxProcesses: Int = 256
    /// CPU seconds (RLIMIT_CPU); nil = no cap.
    public var cpuSeconds: Int? = nil
    /// Numeric "uid:gid" every sandboxed server drops to when the proxy runs as root (per-server
    /// `isolation.user` overrides it). nil (the default): each server gets its own uid from
    /// `uidRange`, so RLIMIT_NPROC and signals are per server.
    public var user: String? = nil
    /// "FIRST-LAST": the uids (gid = uid) handed to sandboxed servers, one per server, when the
    /// proxy runs as root and no user is configured. The default lies above systemd's container
    /// ranges and below 2^31, away from login users and subordinate-uid ranges.
    public var uidRange: String = "1900000000-1900065535"
    /// Size of each server's private HOME and TMPDIR: a tmpfs of this size when root, else the
    /// per-file limit RLIMIT_FSIZE.
    public var homeSize: String = "512m"

    public init() {}
}

/// `supervision`: health checks and crash-loop limits of upstream servers (docs/architecture.md,
/// "Per-server lifecycle").
public struct SupervisionConfig: Sendable, Equatable {
    /// Seconds between health pings of a ready server (`ping_interval`).
    public var pingInterval: Double = 30
    /// Pings in a row that may go unanswered while no call is in flight (`ping_misses`).
    public var pingMisses: Int = 3
    /// Failed starts in a row after which a server stays `failed` until its config changes or a
    /// person restarts it (`max_failed_starts`).
    public var maxFailedStarts: Int = 5
    /// Calls in a row that time out, with the process alive, before the server is reported
    /// `unresponsive` (`unresponsive_after`).
    public var unresponsiveAfter: Int = 3

    public init() {}
}

/// `security`: settings of the security layer.
public struct SecurityConfig: Sendable, Equatable {
    /// Docker-based scanner plugins, run hardened (no network, read-only, no capabilities) only for
    /// servers in isolation mode docker; skipped (scan status "degraded") otherwise.
    public var scanners: [ScannerPluginConfig] = []

    public init() {}
}

/// One Docker-based scanner plugin (`security.scanners[]`): reads `{"server", "tools"}` JSON on
/// stdin, writes `{"findings": [...]}` JSON on stdout. See docs/security.md.
public struct ScannerPluginConfig: Sendable, Equatable {
    public var name: String
    /// A locally available image.
    public var image: String
    public var args: [String] = []
    /// Seconds before the plugin run is abandoned.
    public var timeout: Double = 60

    public init(name: String, image: String, args: [String] = [], timeout: Double = 60) {
        self.name = name
        self.image = image
        self.args = args
        self.timeout = timeout
    }
}

/// Per-server `isolation` block. Every field is optional: absent means "inherit".
public struct ServerIsolationConfig: Sendable, Equatable {
    public var mode: IsolationMode? = nil
    public var enabled: Bool? = nil
    // docker
    public var image: String? = nil
    public var memoryLimit: String? = nil
    public var cpuLimit: String? = nil
    public var networkMode: String? = nil
    public var workingDir: String? = nil
    public var extraArgs: [String]? = nil
    public var volumes: [String]? = nil
    public var user: String? = nil
    public var pidsLimit: Int? = nil
    /// Container engine for this server (overrides `docker_isolation.engine`).
    public var engine: String? = nil
    /// OCI runtime for this server (overrides `docker_isolation.oci_runtime`).
    public var ociRuntime: String? = nil
    /// Named, loudly-logged relaxations and opt-ins (e.g. "writable_rootfs", "privileged",
    /// "docker_socket", "host_network"). See docs/configuration.md.
    public var allow: [String] = []
    // sandbox
    public var readPaths: [String]? = nil
    public var writePaths: [String]? = nil
    public var allowTCPConnect: [Int]? = nil

    public init() {}
}

/// A server-to-client request an upstream may be allowed to make.
public enum ClientRequestKind: String, Sendable, CaseIterable {
    case sampling, elicitation, roots

    /// The MCP method of this kind.
    public var method: String {
        switch self {
        case .sampling: return "sampling/createMessage"
        case .elicitation: return "elicitation/create"
        case .roots: return "roots/list"
        }
    }

    public init?(method: String) {
        guard let k = Self.allCases.first(where: { $0.method == method }) else { return nil }
        self = k
    }
}

/// One upstream server.
public struct ServerConfig: Sendable, Equatable {
    public var name: String
    public var command: String? = nil
    public var args: [String] = []
    public var env: [String: String] = [:]
    public var url: String? = nil
    public var headers: [String: String] = [:]
    public var protocolKind: UpstreamProtocol = .auto
    public var enabled: Bool = true
    public var workingDir: String? = nil
    public var isolation: ServerIsolationConfig? = nil
    /// nil: not stated in the file (a new server: quarantined). false: approved.
    public var quarantined: Bool? = nil
    /// Startup timeout (spawn through `initialize`), seconds; nil = the default.
    public var startupTimeout: Double? = nil
    /// Requests this server may send to the client whose call is in flight (`allow_client_requests`).
    /// Empty by default: sampling spends the user's model, elicitation asks the user, roots
    /// reveal paths; each is granted per server.
    public var clientRequests: Set<ClientRequestKind> = []

    public init(name: String) { self.name = name }

    /// The protocol after resolving `auto`.
    public var effectiveProtocol: UpstreamProtocol {
        if protocolKind != .auto { return protocolKind }
        return command != nil ? .stdio : .http
    }
}
