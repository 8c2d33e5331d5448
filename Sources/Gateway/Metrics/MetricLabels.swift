import Foundation

/// Keeps metric label values bounded (docs/metrics.md, "Label bounds"). Every series costs
/// memory in the proxy and in Prometheus, and a label fed from a caller's input would let a
/// client create series without end: server labels come only from the config, tool labels only
/// from the catalogue, methods only from a fixed list, and each has a cap past which new values
/// are counted under `other`.
public struct MetricLabelBudget: Sendable {
    /// The value counted for anything outside the bounds.
    public static let other = "other"
    /// Distinct server labels at most (configured servers beyond it count as `other`).
    public let maxServers: Int
    /// Distinct (server, tool) label pairs at most.
    public let maxToolSeries: Int
    /// Longer names are counted as `other` (MCP tool names are short; a long one is unusual).
    public let maxLength: Int

    private(set) var servers: Set<String> = []
    private(set) var tools: Set<ToolKey> = []

    struct ToolKey: Hashable, Sendable {
        var server: String
        var tool: String
    }

    public init(maxServers: Int = 256, maxToolSeries: Int = 2000, maxLength: Int = 128) {
        self.maxServers = maxServers
        self.maxToolSeries = maxToolSeries
        self.maxLength = maxLength
    }

    /// The label of `name`: itself when it is a configured server and the budget has room (or it
    /// already has its label), else `other`.
    public mutating func server(_ name: String, configured: Bool) -> String {
        guard configured, !name.isEmpty, name.utf8.count <= maxLength else { return Self.other }
        if servers.contains(name) { return name }
        guard servers.count < maxServers else { return Self.other }
        servers.insert(name)
        return name
    }

    /// The label of `tool` of the server labelled `serverLabel`: itself when the tool is in the
    /// catalogue, its server has its own label, and the budget has room; else `other`.
    public mutating func tool(_ tool: String, serverLabel: String, inCatalogue: Bool) -> String {
        guard inCatalogue, serverLabel != Self.other, !tool.isEmpty, tool.utf8.count <= maxLength else { return Self.other }
        let key = ToolKey(server: serverLabel, tool: tool)
        if tools.contains(key) { return tool }
        guard tools.count < maxToolSeries else { return Self.other }
        tools.insert(key)
        return tool
    }

    /// Gives back a removed server's labels (its series are unregistered too).
    public mutating func release(server: String) {
        servers.remove(server)
        tools = tools.filter { $0.server != server }
    }

    public var serverCount: Int { servers.count }
    public var toolSeriesCount: Int { tools.count }

    /// The MCP methods counted by name; any other method is counted as `other`.
    public static let knownMethods: [String] = [
        "initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/templates/list",
        "resources/read", "prompts/list", "prompts/get", "completion/complete", "logging/setLevel",
    ]

    /// The label of an MCP request method.
    public static func method(_ m: String) -> String { knownMethods.contains(m) ? m : other }
}

/// How a tool call ended, as counted in `mcpproxy_tool_calls_total`.
public enum CallOutcome: Int, Sendable, CaseIterable {
    /// The upstream answered with a result that is not `isError: true`.
    case ok
    /// The upstream answered with a JSON-RPC error or an `isError: true` result, or failed
    /// (its process died, the connection broke) before answering.
    case error
    /// The proxy did not forward the call: unknown tool, outside the caller's scope, held for
    /// approval, quarantined, awaiting approval, intent conflict, server not ready.
    case refused
    /// No answer within `call_tool_timeout`.
    case timeout

    public var label: String {
        switch self {
        case .ok: return "ok"
        case .error: return "error"
        case .refused: return "refused"
        case .timeout: return "timeout"
        }
    }
}

/// Why a request was refused before it reached MCP or REST (`mcpproxy_auth_failures_total`).
public enum AuthFailureReason: Int, Sendable, CaseIterable {
    /// No credential (HTTP 401).
    case missing
    /// A credential that is not valid: unknown, revoked, expired, bad signature (HTTP 401).
    case invalid
    /// A valid JWT with no usable scope (HTTP 403 on /mcp).
    case insufficientScope
    /// A valid non-admin credential on an admin-only route: REST, /metrics or the console sign-in (HTTP 403).
    case forbidden

    public var label: String {
        switch self {
        case .missing: return "missing"
        case .invalid: return "invalid"
        case .insufficientScope: return "insufficient_scope"
        case .forbidden: return "forbidden"
        }
    }
}

/// Which front door refused (`endpoint` label of `mcpproxy_auth_failures_total`).
public enum AuthEndpoint: Int, Sendable, CaseIterable {
    /// `ui`: sign-ins to the web console (`POST /ui/login`).
    case mcp, rest, metrics, ui
    public var label: String {
        switch self {
        case .mcp: return "mcp"
        case .rest: return "rest"
        case .metrics: return "metrics"
        case .ui: return "ui"
        }
    }
}
