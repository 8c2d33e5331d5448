import Foundation

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
    /// `monitor` of this server: the global `monitor` with this server's keys over it (nil: the
    /// global one applies as it is).
    public var monitor: MonitorConfig? = nil
    /// `egress`: the only destinations (host:port) a confined server may reach, through the
    /// gateway's forwarding proxy (docs/egress.md). nil: not set (the isolation's
    /// `network_mode` / `allow_tcp_connect` apply); an empty list: nothing is reachable.
    public var egress: [EgressRule]? = nil
    /// `instance`: one instance for everyone (`shared`) or one per workspace (`workspace`).
    public var instance: InstanceScope = .shared
    /// `idle_timeout`: a workspace instance with no call for this long is stopped, seconds;
    /// nil = `defaultIdleTimeout`.
    public var idleTimeout: Double? = nil
    public static let defaultIdleTimeout: Double = 600

    public init(name: String) { self.name = name }

    /// The protocol after resolving `auto`.
    public var effectiveProtocol: UpstreamProtocol {
        if protocolKind != .auto { return protocolKind }
        return command != nil ? .stdio : .http
    }
}
