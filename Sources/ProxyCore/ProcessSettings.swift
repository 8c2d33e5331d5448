import Foundation

/// The process environment, read once (on first use) into typed settings: the one place mcpproxy
/// reads its own environment variables. Servers never inherit it: planners get `environment` as
/// their host environment and pass on only what `EnvironmentPolicy` allows.
public struct ProcessSettings: Sendable {
    /// The whole environment, for planners (host facts, engine endpoint variables).
    public let environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    /// This process's settings, read once.
    public static let current = ProcessSettings(environment: ProcessInfo.processInfo.environment)

    /// `HOME`, else the account's home directory.
    public var home: String { environment["HOME"] ?? NSHomeDirectory() }
    /// `PATH`, else the usual system directories.
    public var path: String { environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin" }
    /// `MCPPROXY_API_KEY`: the admin key, instead of the data dir's `api_key` file (nil when unset or empty).
    public var apiKey: String? { nonEmpty("MCPPROXY_API_KEY") }
    /// `MCPPROXY_CONFIG`: the config file when `--config` is not given.
    public var configPath: String? { nonEmpty("MCPPROXY_CONFIG") }
    /// `MCPPROXY_DATA_DIR`: the data dir when `--data-dir` is not given.
    public var dataDir: String? { nonEmpty("MCPPROXY_DATA_DIR") }
    /// The default config file: `MCPPROXY_CONFIG`, else `~/.mcpproxy/mcp_config.json`.
    public var defaultConfigPath: String { configPath ?? "\(home)/.mcpproxy/mcp_config.json" }
    /// The default data dir: `MCPPROXY_DATA_DIR`, else `~/.mcpproxy`.
    public var defaultDataDir: String { dataDir ?? "\(home)/.mcpproxy" }

    /// Only the variables in `names` (e.g. a container engine's endpoint variables).
    public func only(_ names: Set<String>) -> [String: String] { environment.filter { names.contains($0.key) } }

    func nonEmpty(_ name: String) -> String? {
        guard let v = environment[name], !v.isEmpty else { return nil }
        return v
    }
}
