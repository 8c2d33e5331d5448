import Foundation

/// How many instances of a server run (`"instance"` in a server entry; docs/workspaces.md).
public enum InstanceScope: String, Sendable, CaseIterable, Equatable {
    /// One instance for every caller (the default, and the only choice for http/sse servers).
    case shared
    /// One instance per workspace that uses the server: started on its first call, stopped after
    /// `idle_timeout`, never shared across workspaces.
    case workspace
    /// One instance per client session (not built yet: refused by the loader).
    case session
}

/// A named tenant: members (agent tokens, JWT subjects), the servers it may use, its own
/// server instances, volumes, sandbox homes and secrets (docs/workspaces.md).
public struct WorkspaceConfig: Sendable, Equatable {
    public var name: String
    /// Agent token names (`NAME` or `token:NAME`) and JWT subjects (`jwt:SUBJECT`).
    public var members: [String] = []
    /// Servers its members may use; nil: no limit from the workspace's side.
    public var servers: [String]? = nil
    /// Highest intent its members may call (`read`, `write`, `destructive`); nil: no limit.
    public var intent: String? = nil

    public init(name: String, members: [String] = [], servers: [String]? = nil, intent: String? = nil) {
        self.name = name
        self.members = members
        self.servers = servers
        self.intent = intent
    }

    /// Keys of one workspace entry (the loader's known keys and did-you-mean list).
    public static let keys: Set<String> = ["members", "servers", "intent"]

    /// Workspace names end up in container, volume and network names: lower-case letters,
    /// digits, `-` and `_`, starting with a letter or digit, at most 32 characters.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.count <= 32 else { return false }
        func ok(_ c: Unicode.Scalar) -> Bool { (c >= "a" && c <= "z") || (c >= "0" && c <= "9") }
        return ok(first) && name.unicodeScalars.allSatisfy { ok($0) || $0 == "-" || $0 == "_" }
    }

    /// A member entry in its canonical form: `token:NAME` or `jwt:SUBJECT` (a bare name is a token).
    public static func canonicalMember(_ m: String) -> String {
        if m.hasPrefix("token:") || m.hasPrefix("jwt:") { return m }
        return "token:\(m)"
    }

    /// True when `member` (`token:NAME`, `jwt:SUBJECT`) belongs to this workspace.
    public func has(member: String) -> Bool { members.contains { Self.canonicalMember($0) == member } }
}

extension ProxyConfig {
    /// The workspace `member` (`token:NAME`, `jwt:SUBJECT`) belongs to, if any.
    public func workspace(ofMember member: String) -> WorkspaceConfig? {
        workspaces.first { $0.has(member: member) }
    }
    public func workspace(named name: String) -> WorkspaceConfig? { workspaces.first { $0.name == name } }
}

/// Names of what a workspace owns outside the config, in one place: the planners create them,
/// `workspace delete` and orphan cleanup find them. Pure.
public enum WorkspaceNames {
    /// Label on every container, volume and network made for a workspace.
    public static let label = "mcpproxy.workspace"
    /// The per-workspace docker network.
    public static func network(_ workspace: String) -> String { "mcpproxy-ws-\(workspace)" }
    /// The per-workspace, per-server docker volume.
    public static func volume(workspace: String, server: String) -> String {
        "mcpproxy-ws-\(workspace)-\(sanitized(server))"
    }
    /// Where a workspace instance's volume is mounted when `isolation.working_dir` is unset.
    public static let defaultMount = "/workspace"
    /// The per-workspace, per-server sandbox home under `root` (the proxy's workspace root).
    public static func sandboxHome(root: String, workspace: String, server: String) -> String {
        "\(root)/\(workspace)/sandbox/\(sanitized(server))/home"
    }
    /// The host directory behind a docker workspace instance's volume.
    public static func dockerData(root: String, workspace: String, server: String) -> String {
        "\(root)/\(workspace)/docker/\(sanitized(server))"
    }
    /// The directory holding everything on disk of one workspace.
    public static func directory(root: String, workspace: String) -> String { "\(root)/\(workspace)" }

    /// Where workspaces keep files on this host: `DATA_DIR/workspaces` for a non-root proxy; for
    /// root, `/var/lib/mcpproxy/ws-HASH` (HASH of the data dir), because sandboxed servers run
    /// as unprivileged uids that cannot enter the 0700 data dir.
    public static func root(dataDir: String, isRoot: Bool) -> String {
        guard isRoot else { return (dataDir as NSString).appendingPathComponent("workspaces") }
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in dataDir.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return "/var/lib/mcpproxy/ws-" + String(h, radix: 16)
    }

    /// Creates `root` when a workspace instance first needs it (not at every start): as root its
    /// parent and itself are 0711, so sandboxed servers' unprivileged uids can reach their own
    /// homes inside without listing anything.
    public static func ensureRoot(_ root: String, isRoot: Bool) {
        if isRoot {
            for dir in [(root as NSString).deletingLastPathComponent, root] {
                mkdir(dir, 0o711)
                chmod(dir, 0o711)
            }
        } else {
            try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
    }

    static func sanitized(_ s: String) -> String {
        String(s.lowercased().unicodeScalars.map { c -> Character in
            (c >= "a" && c <= "z") || (c >= "0" && c <= "9") || c == "-" || c == "_" || c == "." ? Character(c) : "_"
        })
    }
}
