import Foundation

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
    /// `monitor`: the runtime monitor (docs/monitoring.md).
    public var monitor: MonitorConfig = .init()
    /// `tracing`: OpenTelemetry export (nil: off).
    public var tracing: TracingConfig? = nil
    public var servers: [ServerConfig] = []
    /// `workspaces`: named tenants (docs/workspaces.md), in name order.
    public var workspaces: [WorkspaceConfig] = []

    public init() {}

    /// The server with this name, if configured.
    public func server(named name: String) -> ServerConfig? { servers.first { $0.name == name } }
}
