import Foundation
import ProxyCore

/// A container engine driven through its CLI (docker, podman): where its binary is found (one
/// trust rule), which environment variables its client reads, how it is asked for an OOM event,
/// and what its error messages mean. Every engine command of the project (the container
/// lifecycle, scanner plugins, `mcpproxy audit`, `mcpproxy containers`) goes through this type.
///
/// An engine is a value in the registry `ContainerEngines.all`; each lives in its own file under
/// `Container/Engines/`. Engines share the `docker run` option grammar the planner speaks.
public struct ContainerEngine: Sendable, Equatable {
    /// The config name (`isolation.engine`) and the CLI's file name: "docker", "podman".
    public var name: String
    /// How messages name the engine's server side: "Docker daemon", "Podman service".
    public var daemonName: String
    /// How to install the CLI, for the "not found" message.
    public var installHint: String
    /// Host variables the CLI reads (it gets only these; a server env variable of one of these
    /// names goes through an env file, so it cannot redirect the client).
    public var clientVariables: Set<String>
    /// Variables that point the client at another engine, shown in "unreachable" messages.
    public var endpointVariables: [String]
    /// Arguments of the engine's event query for container `id`'s events up to `until` (Unix
    /// seconds), printing one event name per line; nil when the engine keeps no OOM event.
    public var oomEventQuery: (@Sendable (_ id: String, _ until: String) -> [String])?
    /// The event name that means "OOM-killed".
    public var oomEventName: String
    /// Directories searched for the CLI, in order. See `trustedDirectories`.
    public var searchDirectories: [String]
    /// True when the client must run in the host's PID namespace (`LaunchPlan.ownPIDNamespace`):
    /// a daemonless engine whose client starts the container itself. Its containers then do
    /// not die with the client by the kernel's hand; the stop ladder and orphan cleanup
    /// (labels, owner pid) end them.
    public var clientNeedsHostPIDs: Bool
    /// An engine query run before an unprivileged proxy's first start of a container, and the
    /// pure reading of its output: why the engine would not enforce the plan's limits, or nil.
    /// nil when the engine needs no such check.
    public var limitsCheck: LimitsCheck?

    /// See `limitsCheck`.
    public struct LimitsCheck: Sendable {
        /// The CLI arguments of the query.
        public var arguments: [String]
        /// The problem the query's stdout shows, or nil.
        public var problem: @Sendable (String) -> String?
        public init(arguments: [String], problem: @escaping @Sendable (String) -> String?) {
            self.arguments = arguments
            self.problem = problem
        }
    }

    public init(name: String, daemonName: String, installHint: String, clientVariables: Set<String>,
                endpointVariables: [String], oomEventName: String = "oom",
                oomEventQuery: (@Sendable (_ id: String, _ until: String) -> [String])? = nil,
                searchDirectories: [String] = ContainerEngine.trustedDirectories, clientNeedsHostPIDs: Bool = false,
                limitsCheck: LimitsCheck? = nil) {
        self.name = name
        self.daemonName = daemonName
        self.installHint = installHint
        self.clientVariables = clientVariables
        self.endpointVariables = endpointVariables
        self.oomEventName = oomEventName
        self.oomEventQuery = oomEventQuery
        self.searchDirectories = searchDirectories
        self.clientNeedsHostPIDs = clientNeedsHostPIDs
        self.limitsCheck = limitsCheck
    }

    public static func == (a: ContainerEngine, b: ContainerEngine) -> Bool {
        a.name == b.name && a.searchDirectories == b.searchDirectories
    }

    // MARK: - Finding the CLI

    /// The one trust rule for engine binaries: the engine CLI is looked up in these system
    /// directories only, in the order of Debian's default PATH (then snap and Homebrew), never on
    /// the `PATH` the proxy was started with. Whoever runs the engine CLI commands the engine
    /// (root-equivalent with a rootful engine), so a PATH entry another user or a project can
    /// write (`./node_modules/.bin`, `~/bin`, a venv) must not decide which binary that is.
    /// Servers' own commands still resolve on their configured PATH.
    public static let trustedDirectories = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin",
                                            "/snap/bin", "/opt/homebrew/bin"]

    /// The same engine, looking for its CLI in `directories` (tests: a machine without the CLI).
    public func searching(_ directories: [String]) -> ContainerEngine {
        var e = self
        e.searchDirectories = directories
        return e
    }

    /// The absolute path of the CLI, or nil when it is not installed in a trusted directory.
    public func executable() -> String? {
        for dir in searchDirectories {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// The CLI's path, or `.unavailable` saying where it was looked for and how to install it.
    public func requireExecutable(server: String) throws -> String {
        guard let path = executable() else {
            throw ProxyError(.unavailable, "server \"\(server)\": isolation mode docker with engine \(name) needs the \(name) CLI, which is not installed in \(searchDirectories.joined(separator: ", ")) (PATH is not searched for engine binaries); install it (\(installHint)) or choose isolation mode sandbox or none")
        }
        return path
    }

    // MARK: - Running it

    /// The client's environment: only the variables it reads, with a PATH.
    public func clientEnvironment(_ environment: [String: String]) -> [String: String] {
        EnvironmentPolicy.filtered(environment, allowed: clientVariables)
    }

    /// Runs the CLI with `arguments` (see `CommandRunner.run`); status -1 with a message in
    /// stderr when the CLI is not installed.
    public func run(_ arguments: [String], environment: [String: String], timeout: Double, input: Data? = nil,
                    onLine: (@Sendable (String) -> Void)? = nil) async -> CommandRunner.Result {
        guard let exe = executable() else { return notInstalled }
        return await CommandRunner.run(exe, arguments, environment: clientEnvironment(environment), timeout: timeout,
                                       input: input, onLine: onLine)
    }

    /// `run` on the calling thread.
    public func runBlocking(_ arguments: [String], environment: [String: String], timeout: Double,
                            input: Data? = nil) -> CommandRunner.Result {
        guard let exe = executable() else { return notInstalled }
        return CommandRunner.runBlocking(exe, arguments, environment: clientEnvironment(environment), timeout: timeout,
                                         input: input)
    }

    private var notInstalled: CommandRunner.Result {
        CommandRunner.Result(status: -1, stdout: "", stderr: "\(name) CLI not found in \(searchDirectories.joined(separator: ":"))", timedOut: false)
    }

    /// Which engine endpoint the client talks to, for messages.
    public func endpointDescription(_ env: [String: String]) -> String {
        for key in endpointVariables { if let v = env[key] { return "\(key)=\(v)" } }
        return "the current \(name) context"
    }

    // MARK: - Reading its errors

    /// What an engine CLI error message means.
    public enum ErrorKind: String, Sendable, Equatable {
        case daemonUnreachable, imageMissing, noSuchContainer, notATTY, commandNotFound, permissionDenied
    }

    /// Classifies engine CLI stderr text (docker's and podman's wordings); nil when it matches
    /// nothing known.
    public static func classify(stderr: String) -> ErrorKind? {
        let t = stderr.lowercased()
        if t.contains("cannot connect to the docker daemon") || t.contains("is the docker daemon running")
            || t.contains("error during connect") || t.contains("docker.sock: connect: permission denied")
            || (t.contains("context") && t.contains("does not exist"))
            || t.contains("cannot connect to podman") || t.contains("unable to connect to podman") {
            return .daemonUnreachable
        }
        if t.contains("input device is not a tty") || t.contains("not a tty") { return .notATTY }
        if t.contains("unable to find image") || t.contains("pull access denied") || t.contains("manifest unknown")
            || t.contains("repository does not exist") || t.contains("no such image") || t.contains("manifest for ") && t.contains("not found")
            || t.contains("image not known") {
            return .imageMissing
        }
        if t.contains("no such container") || t.contains("no such object") { return .noSuchContainer }
        if t.contains("executable file not found") || t.contains("no such file or directory") && t.contains("exec") {
            return .commandNotFound
        }
        if t.contains("permission denied") && t.contains("exec") { return .permissionDenied }
        return nil
    }

    /// The error for an engine that does not answer.
    public func unreachable(server: String, env: [String: String], stderr: String) -> ProxyError {
        ProxyError(.unavailable, "server \"\(server)\": the \(daemonName) is unreachable (\(endpointDescription(env))): \(CommandRunner.lastLine(stderr) ?? ""); start it, or point \(endpointVariables.joined(separator: " / ")) at a running engine")
    }
}
