import Foundation
import ProxyCore


/// How far a caller may go, from reading to destroying. Ordered: a ceiling of `write` allows
/// read and write tools.
public enum IntentLevel: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    case read = 0, write, destructive

    public static func < (a: IntentLevel, b: IntentLevel) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .read: return "read"
        case .write: return "write"
        case .destructive: return "destructive"
        }
    }

    public init?(name: String) {
        switch name.lowercased() {
        case "read": self = .read
        case "write": self = .write
        case "destructive": self = .destructive
        default: return nil
        }
    }

    /// The level a tool needs, from its annotations with the MCP spec's defaults
    /// (`readOnlyHint` false, `destructiveHint` true): read-only tools are `read`; tools that say
    /// `destructiveHint: false` are `write`; everything else, unannotated tools included, may
    /// destroy and is `destructive`.
    public static func required(by tool: ToolDefinition) -> IntentLevel {
        if tool.readOnlyHint == true { return .read }
        if tool.destructiveHint == false { return .write }
        return .destructive
    }
}

/// Who is calling: the admin API key, an agent token, a JWT subject, or the stdio pipe.
/// Everything a caller sees and may call follows from this one value (docs/security.md,
/// "Identities and scoping").
public struct Identity: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The admin API key (also `--stdio` without `--token-file`, and `mcp_auth: none`).
        case admin
        /// An agent token (`mcpproxy token create`).
        case token
        /// A JWT access token from the configured OAuth issuer.
        case jwt
    }

    public var kind: Kind
    /// The token name or the JWT subject; "admin" for the admin key.
    public var name: String
    /// Servers it may use; nil: every server.
    public var servers: Set<String>?
    /// The highest intent it may call.
    public var ceiling: IntentLevel
    /// May use the `upstream_servers` tool.
    public var manageServers: Bool
    /// What sessions are bound to: stable for one credential holder, different across holders.
    public var key: String
    /// The workspace it belongs to (docs/workspaces.md); nil: none.
    public var workspace: String? = nil

    public init(kind: Kind, name: String, servers: Set<String>?, ceiling: IntentLevel, manageServers: Bool, key: String,
                workspace: String? = nil) {
        self.kind = kind
        self.name = name
        self.servers = servers
        self.ceiling = ceiling
        self.manageServers = manageServers
        self.key = key
        self.workspace = workspace
    }

    /// How a workspace member is named in `members`: `token:NAME` or `jwt:SUBJECT`; nil for the
    /// admin key (never a member).
    public var memberName: String? { kind == .admin ? nil : "\(kind.rawValue):\(name)" }

    /// The one authorization rule (shared/DECISIONS.md): a member of `workspace` may use the
    /// workspace's servers ∩ its own (either absent: no limit from that side), up to the lower of
    /// the two intent ceilings. Every identity passes through here once, when it is resolved.
    public func scoped(by workspace: WorkspaceConfig?) -> Identity {
        guard let workspace else { return self }
        var out = self
        out.workspace = workspace.name
        if let ws = workspace.servers.map(Set.init) {
            out.servers = servers.map { $0.intersection(ws) } ?? ws
        }
        if let cap = workspace.intent.flatMap(IntentLevel.init(name:)) { out.ceiling = min(ceiling, cap) }
        return out
    }

    /// The full-power identity of the admin key.
    public static let admin = Identity(kind: .admin, name: "admin", servers: nil, ceiling: .destructive,
                                       manageServers: true, key: "admin")

    /// How it is shown in the activity log and REST: `admin`, `token:NAME`, `jwt:SUBJECT`.
    public var label: String {
        let base = kind == .admin ? "admin" : "\(kind.rawValue):\(name)"
        return workspace.map { "\(base)@\($0)" } ?? base
    }

    /// True when this identity may use `server`.
    public func mayUse(server: String) -> Bool { servers?.contains(server) ?? true }

    /// True when a notification of `routingKey` (a server, or `server@workspace` from a
    /// workspace instance) may reach this identity's sessions.
    public func mayReceive(from routingKey: String) -> Bool {
        guard let at = routingKey.firstIndex(of: "@") else { return mayUse(server: routingKey) }
        return workspace == String(routingKey[routingKey.index(after: at)...]) && mayUse(server: String(routingKey[..<at]))
    }

    /// True when this identity may see and call `tool` of `server`.
    public func allows(server: String, tool: ToolDefinition) -> Bool {
        mayUse(server: server) && IntentLevel.required(by: tool) <= ceiling
    }

    /// True when nothing is filtered away (the common single-user case: no per-tool checks).
    public var isUnrestricted: Bool { servers == nil && ceiling == .destructive }
}
