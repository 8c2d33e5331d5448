import ArgumentParser
import Foundation
import Gateway
import Logging
import ProxyCore
import Upstream

/// `mcpproxy`: the root command.
public struct RootCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "mcpproxy",
        abstract: "An MCP gateway: federates MCP servers behind one endpoint and confines each stdio server.",
        version: ProxyVersion.current,
        subcommands: [ServeCommand.self, DoctorCommand.self, UpstreamCommand.self, TokenCommand.self, SecretCommand.self, WorkspaceCommand.self, ScanCommand.self, StatusCommand.self, AuditCommand.self, ContainersCommand.self, SandboxExecCommand.self],
        defaultSubcommand: ServeCommand.self)
    public init() {}
}

/// Shared `--config` / `--data-dir` resolution: flag, then environment, then ~/.mcpproxy.
struct PathOptions: ParsableArguments {
    @Option(name: .long, help: "Config file (default: $MCPPROXY_CONFIG or ~/.mcpproxy/mcp_config.json).")
    var config: String?
    @Option(name: .customLong("data-dir"), help: "Data directory for logs, key and state (default: $MCPPROXY_DATA_DIR or ~/.mcpproxy).")
    var dataDir: String?

    var home: String { ProcessSettings.current.home }
    var resolvedDataDir: String {
        absolute(dataDir ?? ProcessSettings.current.defaultDataDir)
    }
    var resolvedConfig: String {
        absolute(config ?? ProcessSettings.current.defaultConfigPath)
    }
    func absolute(_ p: String) -> String {
        let e = p.hasPrefix("~/") ? home + p.dropFirst(1) : p
        return e.hasPrefix("/") ? e : FileManager.default.currentDirectoryPath + "/" + e
    }
}

/// `mcpproxy serve`
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the proxy (HTTP at /mcp, or --stdio).")
    @OptionGroup var paths: PathOptions
    @Option(name: .long, help: "HOST:PORT to listen on (default: the config's listen, 127.0.0.1:8080).")
    var listen: String?
    @Option(name: .customLong("log-level"), help: "debug, info, warn or error.")
    var logLevel: String = "info"
    @Flag(name: .long, help: "Serve one MCP client over stdin/stdout instead of HTTP.")
    var stdio = false
    @Option(name: .customLong("token-file"), help: "With --stdio: a file holding an agent token; the client gets that token's scope (default: full).")
    var tokenFile: String?

    func validate() throws {
        guard Self.level(logLevel) != nil else { throw ValidationError("--log-level must be debug, info, warn or error") }
        if let listen, ListenAddress.parse(listen) == nil { throw ValidationError("--listen must be HOST:PORT (port 0-65535)") }
        if tokenFile != nil && !stdio { throw ValidationError("--token-file is for --stdio; HTTP clients send their token in the Authorization header") }
    }

    static func level(_ s: String) -> Logger.Level? {
        switch s.lowercased() {
        case "debug": return .debug
        case "info": return .info
        case "warn", "warning": return .warning
        case "error": return .error
        default: return nil
        }
    }

    func run() async throws {
        let options = ServeOptions(configPath: paths.resolvedConfig, dataDir: paths.resolvedDataDir, listen: listen,
                                   logLevel: Self.level(logLevel)!, stdio: stdio, tokenFile: tokenFile.map(paths.absolute))
        do {
            let runtime = try ProxyRuntime(options: options) { try Plugins.make(dataDir: options.dataDir, config: $0, logs: $1) }
            try await runtime.run()
        } catch let e as ProxyError {
            ConsoleSink.standardError.write("mcpproxy: \(e.description)")
            ConsoleSink.standardError.flush(timeout: 2)
            throw ExitCode(e.code)
        }
    }
}

