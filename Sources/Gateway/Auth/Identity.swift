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

    public init(kind: Kind, name: String, servers: Set<String>?, ceiling: IntentLevel, manageServers: Bool, key: String) {
        self.kind = kind
        self.name = name
        self.servers = servers
        self.ceiling = ceiling
        self.manageServers = manageServers
        self.key = key
    }

    /// The full-power identity of the admin key.
    public static let admin = Identity(kind: .admin, name: "admin", servers: nil, ceiling: .destructive,
                                       manageServers: true, key: "admin")

    /// How it is shown in the activity log and REST: `admin`, `token:NAME`, `jwt:SUBJECT`.
    public var label: String { kind == .admin ? "admin" : "\(kind.rawValue):\(name)" }

    /// True when this identity may use `server`.
    public func mayUse(server: String) -> Bool { servers?.contains(server) ?? true }

    /// True when this identity may see and call `tool` of `server`.
    public func allows(server: String, tool: ToolDefinition) -> Bool {
        mayUse(server: server) && IntentLevel.required(by: tool) <= ceiling
    }

    /// True when nothing is filtered away (the common single-user case: no per-tool checks).
    public var isUnrestricted: Bool { servers == nil && ceiling == .destructive }
}
