import Foundation
import ProxyCore

/// Mode `docker`: wraps a stdio server in a hardened `docker run -i --rm`.
///
/// Planning is pure: the config, the launch context and the owner identity go in, the full
/// `docker` argv, the docker client's environment and the warnings come out. Nothing here talks
/// to the engine (that is `ContainerLifecycle`).
///
/// Defaults go past the seed (docs/docker-isolation.md): every capability dropped,
/// no-new-privileges, a read-only root filesystem with a size-capped `/tmp` tmpfs, a non-root
/// user, a pids limit, `--init`, and no daemon-side log of the MCP traffic. Each default can be
/// relaxed per server by a named `isolation.allow` entry, which is logged as a warning. Options
/// that undo the container boundary (privileged, the Docker socket, broad host mounts, host
/// namespaces, dangerous capabilities) are refused unless the server names them in `allow`.
public enum DockerPlanner {
    /// The names accepted in a server's `isolation.allow` by docker mode.
    public enum Allowance: String, CaseIterable, Sendable {
        // Relaxations of the hardened defaults.
        /// No `--read-only`: the container may write its root filesystem.
        case writableRootfs = "writable_rootfs"
        /// No `--user`: the image's own user (often root) runs the server.
        case imageUser = "image_user"
        /// A configured user that is root (`0`, `root`, `0:0`).
        case rootUser = "root_user"
        /// No `--cap-drop=ALL`: Docker's default capability set.
        case defaultCapabilities = "default_capabilities"
        /// No `no-new-privileges`: setuid binaries in the image can raise privileges.
        case newPrivileges = "new_privileges"
        /// No `--pids-limit` (or a non-positive one in extra_args): fork bombs are not contained.
        case noPidsLimit = "no_pids_limit"
        /// No `--init`: the server is PID 1 and may ignore SIGTERM.
        case noInit = "no_init"
        /// The daemon's default log driver: the MCP traffic is stored on the host.
        case containerLogs = "container_logs"
        // Opt-ins to options that undo the container boundary.
        /// `--privileged` (or `--cap-add ALL`).
        case privileged
        /// A mount of the Docker socket or of a directory that contains it.
        case dockerSocket = "docker_socket"
        /// A mount of `/`, the home directory or a parent of it, the proxy's data directory, or a
        /// system directory (`/etc`, `/proc`, `/sys`, `/dev`, `/boot`, `/root`); `--volumes-from`.
        case broadMount = "broad_mount"
        /// `--network host`.
        case hostNetwork = "host_network"
        /// `--cap-add SYS_ADMIN`.
        case capSysAdmin = "cap_sys_admin"
        /// `--cap-add NET_ADMIN`.
        case capNetAdmin = "cap_net_admin"
        /// `--cap-add SYS_PTRACE`.
        case capSysPtrace = "cap_sys_ptrace"
        /// `--pid host`.
        case hostPID = "host_pid"
        /// `--ipc host`.
        case hostIPC = "host_ipc"
        /// `--security-opt seccomp=unconfined`, `apparmor=unconfined`, `label=disable`,
        /// `systempaths=unconfined`, or `--userns host`.
        case unconfined
        /// `--device`, `--device-cgroup-rule` or `--gpus`.
        case devices
        /// `--cap-add` of a capability outside `safeCapabilities` that has no name of its own
        /// (SYS_MODULE, DAC_READ_SEARCH, SYS_RAWIO, BPF, ...).
        case extraCapabilities = "extra_capabilities"
        /// A seccomp, AppArmor or SELinux profile other than docker's default.
        case customSecurityProfile = "custom_security_profile"
        /// `--group-add` (root and docker groups need `root_user` / `docker_socket`).
        case groupAdd = "group_add"
        /// A mount of a host socket file (`*.sock`, `*.socket`) that is not the engine's.
        case hostSocket = "host_socket"

        /// True for the options that undo the container boundary (refused unless named).
        public var isOptIn: Bool {
            switch self {
            case .writableRootfs, .imageUser, .rootUser, .defaultCapabilities, .newPrivileges,
                 .noPidsLimit, .noInit, .containerLogs:
                return false
            default:
                return true
            }
        }
    }

    /// Container labels written by the planner and read by orphan cleanup.
    public enum Label {
        /// `true` on every container the proxy starts (seed 001).
        public static let managed = "mcpproxy.managed"
        /// The server name.
        public static let server = "mcpproxy.server"
        /// The proxy instance id.
        public static let instance = "mcpproxy.instance"
        /// Owner facts for dead-owner detection: pid, its start time, host name and boot id.
        public static let ownerPID = "mcpproxy.owner_pid"
        public static let ownerStart = "mcpproxy.owner_start"
        public static let ownerHost = "mcpproxy.owner_host"
        public static let ownerBoot = "mcpproxy.owner_boot"
        /// The workspace of a workspace instance (also on its volume and network).
        public static let workspace = WorkspaceNames.label
    }

    /// Where a container's image came from, for logs and `doctor`.
    public struct ImageChoice: Sendable, Equatable {
        /// The image reference passed to `docker run`.
        public var image: String
        /// Why this image: "per-server image", "runtime \"uvx\"", or the binary fallback.
        public var reason: String
    }

    /// Plans the `docker run` for `server`. `owner` identifies this proxy in the container labels;
    /// nil probes the running process (`ContainerOwner.probe(pid: context.proxyPID)`).
    /// `resolveSymlinks` maps a host path to its real path (nil: the real file system, via
    /// `resolveExistingPrefix`), so a mount source that is a symlink to a refused path is
    /// refused too; tests pass their own mapping.
    /// Throws `.refused` (listing every refused option and the `allow` name that would permit it)
    /// or `.invalidConfig` (a malformed volume, working dir or env value).
    public static func plan(server: ServerConfig, command: String, config: ProxyConfig,
                            decision: IsolationDecision, context: LaunchContext,
                            owner: ContainerOwner? = nil,
                            resolveSymlinks: ((String) -> String?)? = nil) throws -> LaunchPlan {
        let (plan, ctx) = assemble(server: server, command: command, config: config, decision: decision, context: context,
                                   owner: owner, resolveSymlinks: resolveSymlinks)
        if !ctx.refusals.isEmpty {
            let list = ctx.refusals.map { "  - \($0)" }.joined(separator: "\n")
            throw ProxyError(.refused, "server \"\(server.name)\": docker isolation refuses to start the container:\n\(list)")
        }
        if !ctx.invalids.isEmpty {
            throw ProxyError(.invalidConfig, "server \"\(server.name)\": " + ctx.invalids.joined(separator: "; "))
        }
        return plan
    }

    /// What the docker rules say about a server's config, without planning a launch: every
    /// refusal (with its JSON path and `allow` name), config error and warning. `mcpproxy audit`
    /// reports these, so an existing config can be migrated before the proxy refuses it.
    public struct Review: Sendable, Equatable {
        /// A refused option: the message (JSON path first) and the `allow` name that lifts it.
        public struct Refusal: Sendable, Equatable {
            public var message: String
            public var allow: String?
        }
        public var refusals: [Refusal]
        public var invalids: [String]
        public var warnings: [String]
    }

    /// Reviews `server` under the docker rules (symlinks resolved on the real file system unless
    /// `resolveSymlinks` is given).
    public static func review(server: ServerConfig, config: ProxyConfig, context: LaunchContext,
                              resolveSymlinks: ((String) -> String?)? = nil) -> Review {
        let owner = ContainerOwner(host: "review", bootID: "review", pid: context.proxyPID, startTime: nil)
        let (_, ctx) = assemble(server: server, command: server.command ?? "", config: config,
                                decision: IsolationDecision(mode: .docker, source: .perServerMode), context: context,
                                owner: owner, resolveSymlinks: resolveSymlinks)
        return Review(ctx)
    }

    /// Reviews the options of a server whose own command is `docker run ...` (the proxy does not
    /// wrap it): each option before the image under the same allowlist as `extra_args`, with
    /// JSON paths into `mcpServers.NAME.args`. Options the planner would set itself (`-i`,
    /// `--rm`, `--name`) are config errors there, not findings here.
    public static func reviewRunOptions(server: ServerConfig, context: LaunchContext) -> Review {
        var ctx = Checks(server: server.name, where_: "mcpServers.\(server.name).isolation", allow: [], context: context,
                         resolve: { resolveExistingPrefix($0) })
        guard let run = server.args.firstIndex(where: { $0 == "run" || $0 == "create" }) else { return Review(ctx) }
        let parsed = DockerCLI.parse(Array(server.args[(run + 1)...]))
        if let e = parsed.error {
            ctx.invalid("mcpServers.\(server.name).args[\(run + 1 + e.index)]: docker would reject it: \(e.message)")
            return Review(ctx)
        }
        var secrets: [String] = []
        for o in parsed.options {
            _ = checkOption(o, &ctx, origin: "mcpServers.\(server.name).args[\(run + 1 + o.index)]", declaredEnv: Set(server.env.keys), secrets: &secrets)
        }
        return Review(ctx)
    }

    /// Builds the plan and the findings of every check; `plan` throws when there are refusals
    /// or config errors, `review` reports them.
    static func assemble(server: ServerConfig, command: String, config: ProxyConfig,
                         decision: IsolationDecision, context: LaunchContext,
                         owner: ContainerOwner?, resolveSymlinks: ((String) -> String?)?) -> (LaunchPlan, Checks) {
        let global = config.dockerIsolation
        let iso = server.isolation ?? ServerIsolationConfig()
        let owner = owner ?? ContainerOwner.probe(pid: context.proxyPID)
        let where_ = "mcpServers.\(server.name).isolation"
        var ctx = Checks(server: server.name, where_: where_, allow: Set(iso.allow), context: context,
                         resolve: resolveSymlinks ?? { resolveExistingPrefix($0) })
        /// The JSON path of a setting that has a per-server and a global key.
        func field(_ key: String, perServer: Bool) -> String { perServer ? "\(where_).\(key)" : "docker_isolation.\(key)" }

        for name in iso.allow.sorted() where Allowance(rawValue: name) == nil {
            ctx.warnings.append("server \"\(server.name)\": \(where_).allow entry \"\(name)\" is not a docker-mode name; ignored (known: \(Allowance.allCases.map(\.rawValue).joined(separator: ", ")))")
        }

        // Engine and OCI runtime: names from the registries; an unknown one is a config error.
        let engineName = iso.engine ?? global.engine
        let engine = ContainerEngines.named(engineName)
        if engine == nil {
            ctx.invalid("\(field("engine", perServer: iso.engine != nil)): unknown container engine \"\(engineName)\" (known: \(ContainerEngines.all.map(\.name).joined(separator: ", ")))")
        }
        let runtimeName = iso.ociRuntime ?? global.ociRuntime
        let runtime = OCIRuntimes.named(runtimeName)
        if runtime == nil {
            ctx.invalid("\(field("oci_runtime", perServer: iso.ociRuntime != nil)): unknown OCI runtime \"\(runtimeName)\" (known: \(OCIRuntimes.all.map(\.name).joined(separator: ", ")))")
        }
        let clientVariables = (engine ?? .docker).clientVariables

        let choice = image(for: command, isolation: iso, global: global)
        if !DockerCLI.isValidImageReference(choice.image) {
            let origin = (iso.image?.isEmpty == false) ? "\(where_).image" : "docker_isolation.default_images / docker_isolation.registry"
            ctx.invalid("\(origin): \"\(choice.image)\" is not an image reference ([registry/]name[:tag][@digest], lower case, no leading -, no spaces)")
        }
        let name = containerName(server: server.name, launchID: context.launchID)
        let cidFile = (context.runtimeDir as NSString).appendingPathComponent("\(name).cid")
        var labels: [String: String] = [
            Label.managed: "true",
            Label.server: server.name,
            Label.instance: context.instanceID,
            Label.ownerPID: String(owner.pid),
            Label.ownerHost: owner.host,
            Label.ownerBoot: owner.bootID,
        ]
        if let start = owner.startTime { labels[Label.ownerStart] = start }
        if let ws = context.workspace { labels[Label.workspace] = ws }

        // Extra args first (they are placed after the planner's options, where the last
        // occurrence of a scalar option wins), so that a network given there replaces
        // network_mode instead of adding a second network.
        let declaredEnv = Set(server.env.keys)
        let globalExtras = checkExtraArgs(global.extraArgs, &ctx, base: "docker_isolation.extra_args", declaredEnv: declaredEnv)
        let serverExtras = checkExtraArgs(iso.extraArgs ?? [], &ctx, base: "\(where_).extra_args", declaredEnv: declaredEnv)

        var args = ["run", "-i", "--rm", "--name", name, "--cidfile", cidFile]
        for key in labels.keys.sorted() { args += ["--label", "\(key)=\(labels[key]!)"] }
        var enforcement: [String: String] = ["isolation": "docker", "image": choice.image, "image_source": choice.reason]

        // Hardening defaults, each relaxable by name.
        if ctx.relax(.noInit, "no --init: the server runs as PID 1, where SIGTERM is ignored unless it installs a handler") {
            enforcement["init"] = "false"
        } else {
            args.append("--init"); enforcement["init"] = "true"
        }
        let user = iso.user ?? global.user
        if ctx.relax(.imageUser, "no --user: the image's own user runs the server (often root)") {
            enforcement["user"] = "image default"
        } else {
            checkUser(user, &ctx, origin: field("user", perServer: iso.user != nil))
            args += ["--user", user]; enforcement["user"] = user
        }
        if ctx.relax(.defaultCapabilities, "Docker's default capabilities are kept (no --cap-drop=ALL)") {
            enforcement["cap_drop"] = "none"
        } else {
            args.append("--cap-drop=ALL"); enforcement["cap_drop"] = "ALL"
        }
        if ctx.relax(.newPrivileges, "no-new-privileges is off: setuid binaries in the image can gain privileges") {
            enforcement["no_new_privileges"] = "false"
        } else {
            args += ["--security-opt", "no-new-privileges"]; enforcement["no_new_privileges"] = "true"
        }
        if ctx.relax(.writableRootfs, "the container's root filesystem is writable (no --read-only)") {
            enforcement["read_only_rootfs"] = "false"
        } else {
            args.append("--read-only"); enforcement["read_only_rootfs"] = "true"
        }
        if let n = DockerCLI.parseBytes(global.tmpfsSize), n > 0, global.tmpfsSize.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == ".") }) {
        } else {
            ctx.invalid("docker_isolation.tmpfs_size: \"\(global.tmpfsSize)\" must be a positive size such as 64m")
        }
        args += ["--tmpfs", "/tmp:rw,noexec,nosuid,nodev,size=\(global.tmpfsSize)"]
        enforcement["tmpfs"] = "/tmp size=\(global.tmpfsSize) noexec"
        let pids = iso.pidsLimit ?? global.pidsLimit
        if ctx.relax(.noPidsLimit, "no --pids-limit: a fork bomb in the server is not contained") {
            enforcement["pids_limit"] = "none"
        } else {
            if pids <= 0 {
                ctx.optIn(.noPidsLimit, "\(field("pids_limit", perServer: iso.pidsLimit != nil)): \(pids)", granted: "a fork bomb in the server is not contained")
            }
            args += ["--pids-limit", String(pids)]; enforcement["pids_limit"] = String(pids)
        }
        let allExtras = globalExtras.args + serverExtras.args
        let extraUlimits = Set(DockerRunFacts.of(runArguments: allExtras).ulimits.keys)
        for ulimit in defaultUlimits where !extraUlimits.contains(String(ulimit.split(separator: "=")[0])) {
            args += ["--ulimit", ulimit]
        }
        enforcement["ulimits"] = defaultUlimits.joined(separator: ",")
        let memory = serverExtras.memory ?? globalExtras.memory ?? iso.memoryLimit ?? global.memoryLimit
        let cpus = serverExtras.cpus ?? globalExtras.cpus ?? iso.cpuLimit ?? global.cpuLimit
        // --memory-swap equal to --memory: no swap on top of the limit, so the limit is the limit.
        let swap = serverExtras.memorySwap ?? globalExtras.memorySwap ?? memory
        if serverExtras.memory == nil && globalExtras.memory == nil, DockerCLI.parseBytes(memory).map({ $0 <= 0 }) ?? true {
            ctx.invalid("\(field("memory_limit", perServer: iso.memoryLimit != nil)): \"\(memory)\" must be a positive size such as 512m")
        }
        if serverExtras.cpus == nil && globalExtras.cpus == nil, DockerCLI.parseNanoCPUs(cpus).map({ $0 <= 0 }) ?? true {
            ctx.invalid("\(field("cpu_limit", perServer: iso.cpuLimit != nil)): \"\(cpus)\" must be a positive number of CPUs such as 1.0")
        }
        if let m = DockerCLI.parseBytes(memory), let s = DockerCLI.parseBytes(swap), s < m {
            ctx.invalid("extra_args: --memory-swap \(swap) is below the memory limit \(memory) (docker refuses that; swap includes memory)")
        }
        args += ["--memory", memory, "--memory-swap", swap, "--cpus", cpus]
        enforcement["memory"] = memory; enforcement["cpus"] = cpus
        let network: String
        var workspaceNetwork: String? = nil
        var egress: EgressPlan? = nil
        if let rules = server.egress {
            // `egress` wins over network_mode (DECISIONS.md): an internal network of this launch
            // whose only way out is the gateway's forwarding proxy.
            let plan = EgressPlan.forContainer(server: server.name, launchID: context.launchID, rules: rules, labels: labels)
            egress = plan
            network = plan.network
            if let n = serverExtras.network ?? globalExtras.network {
                ctx.invalid("mcpServers.\(server.name).egress: an extra_args --network \(n) would replace the egress network; remove it (egress decides the network)")
            }
            if iso.networkMode != nil {
                ctx.warnings.append("server \"\(server.name)\": egress is set, so \(where_).network_mode \"\(iso.networkMode!)\" is ignored (the server runs on its own internal network behind the egress proxy)")
            }
            for name in EgressPlan.proxyVariables where server.env[name] != nil {
                ctx.invalid("mcpServers.\(server.name).env.\(name): egress sets the proxy variables; remove this one")
            }
            args += ["--network", network]
            args += EgressPlan.proxyVariables.flatMap { ["--env", $0] }
            enforcement["network"] = "egress: internal network \(network), out only through the egress proxy"
            enforcement["egress"] = rules.isEmpty ? "none (no destination allowed)" : rules.map(\.description).joined(separator: ",")
        } else if let n = serverExtras.network ?? globalExtras.network {
            network = n  // checked with its extra_args path
            if globalExtras.network != nil && serverExtras.network != nil && globalExtras.network != serverExtras.network {
                ctx.warnings.append("server \"\(server.name)\": the per-server extra_args --network \(n) replaces the global one")
            }
        } else if let ws = context.workspace, iso.networkMode == nil {
            // A workspace instance: its workspace's internal network unless the server names one.
            network = WorkspaceNames.network(ws)
            workspaceNetwork = network
        } else {
            network = iso.networkMode ?? global.networkMode
            checkNetwork(network, &ctx, origin: field("network_mode", perServer: iso.networkMode != nil))
        }
        if egress == nil {
            args += ["--network", network]
            enforcement["network"] = workspaceNetwork != nil ? "\(network) (workspace network, internal: no route out)" : network
        }
        if let runtime {
            if let option = runtime.runtimeOption { args += ["--runtime", option] }
            enforcement.merge(runtime.enforcement) { _, new in new }
            if runtime.supportedNetworks != nil, egress != nil {
                ctx.invalid("mcpServers.\(server.name).egress: egress with oci_runtime \(runtime.name) is not supported: \(runtime.networkLimit)")
            } else if let supported = runtime.supportedNetworks, !supported.contains(network) {
                ctx.invalid("\(field("network_mode", perServer: iso.networkMode != nil)): network \"\(network)\" with oci_runtime \(runtime.name): \(runtime.networkLimit); set network_mode to \(supported.sorted().map { "\"\($0)\"" }.joined(separator: " or "))")
            }
        }
        if let engine, engine.name != ContainerEngines.defaultName { enforcement["engine"] = engine.name }
        if ctx.relax(.containerLogs, "the daemon's log driver stores the server's stdout (the MCP traffic) on the host") {
            enforcement["log_driver"] = "daemon default"
        } else {
            args += ["--log-driver", "none"]; enforcement["log_driver"] = "none"
        }
        if let dir = iso.workingDir {
            if !dir.hasPrefix("/") || dir.contains("\n") || dir.contains("\0") {
                ctx.invalid("\(where_).working_dir must be an absolute path inside the container, found \"\(dir)\"")
            }
            args += ["--workdir", dir]
        }
        // A workspace instance keeps its data in its workspace's own named volume.
        var workspaceVolume: String? = nil
        if let ws = context.workspace {
            let dir = iso.workingDir ?? WorkspaceNames.defaultMount
            let volume = WorkspaceNames.volume(workspace: ws, server: server.name)
            workspaceVolume = volume
            // nocopy: the engine would otherwise copy the image's (root-owned) mount point
            // ownership onto the empty volume, and the container's user could not write it.
            args += ["--volume", "\(volume):\(dir):nocopy"]
            if iso.workingDir == nil { args += ["--workdir", dir] }
            enforcement["workspace"] = "\(ws): volume \(volume) at \(dir)"
        }
        if server.workingDir != nil {
            ctx.warnings.append("server \"\(server.name)\": working_dir is a host path and is not used in docker mode; set \(where_).working_dir (a path inside the container)")
        }

        // Environment: names on the command line, values in the docker client's environment
        // (docker copies `-e NAME` from it), so no value shows in `ps` or in the logged argv.
        // Names the docker client itself reads (PATH, DOCKER_HOST, ...) cannot go that way
        // without redirecting the client, so they go through a 0600 env file instead.
        var clientEnv = EnvironmentPolicy.filtered(context.hostEnvironment, allowed: clientVariables)
        var envFileLines: [String] = []
        let declaresHome = server.env["HOME"] != nil
        if !declaresHome && !ctx.allows(.imageUser) {
            // The unprivileged uid has no passwd entry (HOME would be "/", read-only): give
            // runtimes that cache and install under $HOME (uv, npm) their own exec-able tmpfs.
            args += ["--tmpfs", "\(plannedHomeDir):rw,exec,nosuid,nodev,size=\(global.tmpfsSize)", "--env", plannedHome]
            enforcement["home"] = "\(plannedHomeDir) tmpfs size=\(global.tmpfsSize) exec"
        }
        var secretVariables: [String: String] = [:]
        for key in server.env.keys.sorted() {
            let value = server.env[key]!
            if key.isEmpty || key.contains("=") || key.hasPrefix("-") {
                ctx.invalid("mcpServers.\(server.name).env: \"\(key)\" is not a variable name")
                continue
            }
            if context.secretEnvNames.contains(key) {
                // A `${secret:NAME}` value: through the launcher's file, never the engine's
                // command line, environment or the container's config (SecretDelivery).
                secretVariables[key] = value
            } else if clientVariables.contains(key) {
                if value.contains("\n") || value.contains("\r") {
                    ctx.invalid("mcpServers.\(server.name).env.\(key): a multi-line value cannot be passed to a container for this name (it would redirect the docker client); use another variable name")
                }
                envFileLines.append("\(key)=\(value)")
            } else {
                args += ["--env", key]
                clientEnv[key] = value
            }
        }
        var files: [PlannedFile] = []
        if !envFileLines.isEmpty {
            let envFile = (context.runtimeDir as NSString).appendingPathComponent("\(name).env")
            files.append(PlannedFile(path: envFile, contents: envFileLines.joined(separator: "\n") + "\n", mode: 0o600))
            args += ["--env-file", envFile]
        }

        var secrets: SecretDelivery?
        if !secretVariables.isEmpty {
            secrets = planSecrets(secretVariables, server: server.name, name: name, user: ctx.allows(.imageUser) ? nil : user,
                                  extras: allExtras, &ctx)
            if let secrets {
                args += secrets.runOptions
                enforcement["secrets"] = "\(secrets.names.count) via read-only tmpfs file, removed after start"
            }
        }

        // Volumes: read-only unless marked rw; dangerous sources refused unless opted in.
        for (i, spec) in (iso.volumes ?? []).enumerated() {
            if let normalized = checkVolume(spec, &ctx, origin: "\(where_).volumes[\(i)]") {
                args += ["--volume", normalized]
            }
        }
        // Extra args: global then per-server, checked above, in their canonical spelling.
        args += allExtras

        args.append(choice.image)
        if secrets != nil { args += SecretDelivery.launcherArguments }
        args.append(command)
        args += server.args

        let cli = (engine ?? .docker).name
        let redacted = redactArgv([cli] + args)
        var plan = LaunchPlan(executable: cli, arguments: args, environment: clientEnv, workingDirectory: nil,
                              decision: decision, redactedCommandLine: redacted,
                              container: {
                                  var c = ContainerPlan(name: name, image: choice.image, cidFile: cidFile, labels: labels,
                                                        engine: cli, runtime: runtime?.name ?? runtimeName)
                                  c.workspaceNetwork = workspaceNetwork
                                  c.workspaceVolume = workspaceVolume
                                  if let ws = context.workspace, workspaceVolume != nil {
                                      c.workspaceVolumeDir = WorkspaceNames.dockerData(root: context.workspaceRoot, workspace: ws, server: server.name)
                                      c.workspaceVolumeOwner = ctx.allows(.imageUser) ? nil : user
                                  }
                                  return c
                              }(),
                              warnings: ctx.warnings, enforcement: enforcement, files: files)
        plan.ownPIDNamespace = !(engine?.clientNeedsHostPIDs ?? false)
        plan.secrets = secrets
        plan.egress = egress
        return (plan, ctx)
    }

    /// The secret delivery for `variables` (docs/security.md, "Secrets"), or nil with the reason
    /// recorded: no memory-backed directory, no launcher, an `--entrypoint` or `--user` in
    /// extra args that would bypass or misdirect it, a NUL byte in a value.
    static func planSecrets(_ variables: [String: String], server: String, name: String, user: String?,
                            extras: [String], _ ctx: inout Checks) -> SecretDelivery? {
        let names = variables.keys.sorted()
        let what = "env \(names.joined(separator: ", ")) (from ${secret:...})"
        guard let base = ctx.context.secretsBaseDir else {
            ctx.invalid("\(what): no memory-backed directory (tmpfs) for the secret file on this host (looked for /run, $XDG_RUNTIME_DIR and /dev/shm on tmpfs); mount a tmpfs at /run or /dev/shm")
            return nil
        }
        guard let launcher = ctx.context.sandboxLauncher else {
            ctx.invalid("\(what): the static launcher mcpproxy-sandbox is not installed next to mcpproxy; it is the container entrypoint that reads the secret file")
            return nil
        }
        let extraFacts = DockerRunFacts.of(runArguments: extras)
        if DockerCLI.parse(extras).options.contains(where: { $0.name == "entrypoint" }) {
            ctx.invalid("\(what): extra_args set --entrypoint, which would bypass the launcher that delivers secrets; remove it (the image's entrypoint is kept automatically)")
            return nil
        }
        let effectiveUser = extraFacts.user ?? user
        let encoded = SecretDelivery.encode(variables)
        if let bad = encoded.bad {
            ctx.invalid("mcpServers.\(server).env.\(bad): a NUL byte cannot be passed in an environment variable")
            return nil
        }
        let owner = SecretDelivery.numericOwner(effectiveUser)
        let dir = (base as NSString).appendingPathComponent("\(ctx.context.proxyPID)-\(name)")
        return SecretDelivery(hostDir: dir, hostLauncher: launcher, contents: encoded.contents, names: names,
                              uid: owner?.uid, gid: owner?.gid)
    }

    /// What the planner believes the engine will do with `plan`: its argv read by the same
    /// parser docker's rules are modelled in. The real-engine test compares this with
    /// `docker inspect`.
    public static func facts(of plan: LaunchPlan) -> DockerRunFacts {
        DockerRunFacts.of(runArguments: plan.arguments)
    }

    /// The log line the seed's troubleshooting guide greps for: `docker_run_args: ["run", ...]`,
    /// with declared env values redacted.
    public static func runArgsLogLine(_ plan: LaunchPlan) -> String {
        let args = Array(plan.redactedCommandLine.dropFirst())
        let data = (try? JSONSerialization.data(withJSONObject: args, options: [.withoutEscapingSlashes])) ?? Data()
        return "docker_run_args: " + String(decoding: data, as: UTF8.self)
    }

    /// The image for `command`: the per-server `image` verbatim; else the runtime table entry for
    /// the command's base name (also tried without a version suffix: `python3.12` → `python3` →
    /// `python`), else the table's `binary` entry. Table images get the configured registry as a
    /// prefix unless it is Docker Hub or the image already names a registry.
    public static func image(for command: String, isolation: ServerIsolationConfig,
                             global: DockerIsolationConfig) -> ImageChoice {
        if let image = isolation.image, !image.isEmpty {
            return ImageChoice(image: image, reason: "per-server image")
        }
        var base = (command as NSString).lastPathComponent.lowercased()
        if base.hasSuffix(".exe") { base = String(base.dropLast(4)) }
        var candidates = [base]
        var stripped = base
        while let last = stripped.last, last.isNumber || last == "." {
            stripped.removeLast()
            if !stripped.isEmpty, !candidates.contains(stripped), stripped.last?.isNumber == false, stripped.last != "." {
                candidates.append(stripped)
            }
        }
        if base.hasPrefix("python") && !candidates.contains("python") { candidates.append("python") }
        for candidate in candidates {
            if let image = global.defaultImages[candidate] {
                return ImageChoice(image: withRegistry(image, global.registry), reason: "runtime \"\(candidate)\"")
            }
        }
        let binary = global.defaultImages["binary"] ?? "alpine:3.18"
        return ImageChoice(image: withRegistry(binary, global.registry), reason: "unknown command \"\(base)\": binary image")
    }

    /// `image` with `registry/` in front, unless the registry is Docker Hub (the engine's default)
    /// or the image already starts with a registry host (`host.domain/...`, `host:port/...`,
    /// `localhost/...`).
    public static func withRegistry(_ image: String, _ registry: String) -> String {
        let reg = registry.trimmingCharacters(in: CharacterSet(charactersIn: "/ "))
        if reg.isEmpty || ["docker.io", "index.docker.io", "registry-1.docker.io"].contains(reg.lowercased()) { return image }
        if let slash = image.firstIndex(of: "/") {
            let first = image[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" { return image }
        }
        return "\(reg)/\(image)"
    }

    /// `mcpproxy-<server>-<launch id, 12 chars>`, restricted to the characters Docker accepts.
    public static func containerName(server: String, launchID: String) -> String {
        func clean(_ s: String) -> String {
            String(s.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-") ? $0 : "_" })
        }
        return "mcpproxy-\(clean(server))-\(clean(String(launchID.prefix(12))))"
    }

    /// True when `user` (`uid[:gid]` or `name[:group]`) is root in the user or the group.
    /// Empty parts count as root (the image's user applies, often root); so do `0`, `00`,
    /// `+0`, `-0` and `root` as user or as group.
    public static func isRootUser(_ user: String) -> Bool {
        guard let u = DockerCLI.User(user) else { return true }
        return u.isRoot
    }

    // MARK: - Checks

    /// What the checks collect while planning one server.
    struct Checks {
        let server: String
        let where_: String
        let allow: Set<String>
        let context: LaunchContext
        let resolve: (String) -> String?
        var warnings: [String] = []
        var refusals: [String] = []
        /// The `allow` name that would lift each refusal (nil: none can).
        var refusalAllows: [String?] = []
        var invalids: [String] = []

        init(server: String, where_: String, allow: Set<String>, context: LaunchContext,
             resolve: @escaping (String) -> String? = { _ in nil }) {
            self.server = server
            self.where_ = where_
            self.allow = allow
            self.context = context
            self.resolve = resolve
        }

        func allows(_ a: Allowance) -> Bool { allow.contains(a.rawValue) }

        /// A relaxation of a default: applied (and warned about) only when named in `allow`.
        mutating func relax(_ a: Allowance, _ consequence: String) -> Bool {
            guard allows(a) else { return false }
            warnings.append("server \"\(server)\": SECURITY: hardening relaxed by \(where_).allow \"\(a.rawValue)\": \(consequence)")
            return true
        }

        /// A dangerous option the config asks for: refused unless named in `allow`, then warned.
        mutating func optIn(_ a: Allowance, _ what: String, granted: String) {
            if allows(a) {
                warnings.append("server \"\(server)\": SECURITY: \(what); allowed by \(where_).allow \"\(a.rawValue)\": \(granted)")
            } else {
                refusals.append("\(what) (\(granted)); if this is really intended, add \"\(a.rawValue)\" to \(where_).allow")
                refusalAllows.append(a.rawValue)
            }
        }

        mutating func invalid(_ message: String) { invalids.append(message) }

        /// A policy refusal no `allow` name can lift.
        mutating func refuse(_ message: String) { refusals.append(message); refusalAllows.append(nil) }
    }

    /// Docker socket paths the engine may be listening on (a mount of any of them, or of a
    /// directory containing one, hands the server the engine, i.e. root on the host).
    static func dockerSocketPaths(_ context: LaunchContext) -> [String] {
        var paths = ["/var/run/docker.sock", "/run/docker.sock"]
        if let host = context.hostEnvironment["DOCKER_HOST"], host.hasPrefix("unix://") {
            paths.append(normalizePath(String(host.dropFirst("unix://".count))))
        }
        if let xdg = context.hostEnvironment["XDG_RUNTIME_DIR"], xdg.hasPrefix("/") {
            paths.append(normalizePath(xdg + "/docker.sock"))
        }
        return paths
    }


    /// Checks a host bind-mount source; returns nothing, records refusals.
    static func checkHostSource(_ rawSource: String, _ ctx: inout Checks, origin: String) -> String? {
        let expanded = expandTilde(rawSource, home: ctx.context.homeDir)
        guard expanded.hasPrefix("/") else {
            ctx.invalid("\(origin): volume source \"\(rawSource)\" must be an absolute host path (or ~/...) or a volume name")
            return nil
        }
        let source = normalizePath(expanded)
        let before = ctx.refusals.count
        checkHostPath(source, shown: "\"\(source)\"", &ctx, origin: origin)
        // Docker follows symlinks in bind sources: check where the path really leads as well.
        if ctx.refusals.count == before, let real = ctx.resolve(source).map(normalizePath), real != source {
            checkHostPath(real, shown: "\"\(source)\" (a symlink to \"\(real)\")", &ctx, origin: origin)
        }
        return source
    }

    /// The dangerous-mount checks of one normalized absolute host path.
    static func checkHostPath(_ source: String, shown: String, _ ctx: inout Checks, origin: String) {
        let home = normalizePath(ctx.context.homeDir)
        let dataDir = normalizePath(expandTilde(ctx.context.dataDir, home: ctx.context.homeDir))
        let base = (source as NSString).lastPathComponent
        var engine = true
        if dockerSocketPaths(ctx.context).contains(where: { isAncestorOrSame(source, of: $0) }) || engineSocketNames.contains(base) {
            ctx.optIn(.dockerSocket, "\(origin): mount of \(shown) exposes the Docker socket",
                      granted: "whoever controls the server controls the Docker engine, which is root on the host")
        } else if let state = engineStatePaths.first(where: { isAncestorOrSame(source, of: $0) || isAncestorOrSame($0, of: source) }) {
            ctx.optIn(.dockerSocket, "\(origin): mount of \(shown) exposes container-engine state or sockets (\(state))",
                      granted: "the engine's sockets and state let the server control the engine, which is root on the host")
        } else {
            engine = false
            if base.hasSuffix(".sock") || base.hasSuffix(".socket") {
                ctx.optIn(.hostSocket, "\(origin): mount of \(shown) is a host socket",
                          granted: "the server can talk to a host service over its socket")
            }
        }
        if source == "/" || isAncestorOrSame(source, of: home) {
            ctx.optIn(.broadMount, "\(origin): mount of \(shown) covers the home directory \(home)",
                      granted: "the server can read every file of the user, including credentials")
        } else if isAncestorOrSame(source, of: dataDir) || isAncestorOrSame(dataDir, of: source) {
            ctx.optIn(.broadMount, "\(origin): mount of \(shown) overlaps the proxy's data directory \(dataDir)",
                      granted: "the server can read the proxy's own state and keys")
        } else if !engine, let sys = systemDirectories.first(where: { isAncestorOrSame($0, of: source) }) ?? (isAncestorOrSame(source, of: "/var/lib") || isAncestorOrSame(source, of: "/run") ? source : nil) {
            ctx.optIn(.broadMount, "\(origin): mount of \(shown) exposes the system directory \(sys)",
                      granted: "the server can read host system configuration or kernel interfaces")
        }
    }

    /// The real path of `path`: symlinks resolved in its longest existing prefix, the rest
    /// appended (a mount source may not exist yet). Nil when nothing of it resolves.
    public static func resolveExistingPrefix(_ path: String) -> String? {
        var head = normalizePath(path)
        var tail: [String] = []
        while true {
            if let real = realpath(head, nil) {
                defer { free(real) }
                let resolved = String(cString: real)
                return tail.isEmpty ? resolved : normalizePath(resolved + "/" + tail.reversed().joined(separator: "/"))
            }
            if head == "/" { return nil }
            tail.append((head as NSString).lastPathComponent)
            head = (head as NSString).deletingLastPathComponent
            if head.isEmpty { head = "/" }
        }
    }

    /// Checks and normalizes one `-v` spec `source:target[:options]`: host paths expanded and
    /// normalized, `ro` added unless `rw` is given. Returns nil (with a recorded problem) when
    /// the spec is malformed.
    static func checkVolume(_ spec: String, _ ctx: inout Checks, origin: String) -> String? {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 1, parts.count <= 3, !parts[0].isEmpty else {
            ctx.invalid("\(origin): expected \"SOURCE:TARGET[:ro|rw]\", found \"\(spec)\"")
            return nil
        }
        if parts.count == 1 {
            // An anonymous volume at a container path: no host data is involved.
            guard parts[0].hasPrefix("/") else {
                ctx.invalid("\(origin): expected \"SOURCE:TARGET[:ro|rw]\", found \"\(spec)\"")
                return nil
            }
            return spec
        }
        var source = parts[0]
        let target = parts[1]
        guard target.hasPrefix("/") else {
            ctx.invalid("\(origin): the target \"\(target)\" must be an absolute path inside the container")
            return nil
        }
        if isVolumeName(source) {
            // A named volume: data lives in the engine, not in a host directory.
        } else {
            guard let checked = checkHostSource(source, &ctx, origin: origin) else { return nil }
            source = checked
        }
        var options = parts.count == 3 ? parts[2].split(separator: ",").map(String.init) : []
        let knownOptions: Set<String> = ["ro", "rw", "z", "Z", "nocopy", "private", "rprivate", "slave", "rslave", "consistent", "cached", "delegated"]
        if let bad = options.first(where: { !knownOptions.contains($0) }) {
            if ["shared", "rshared"].contains(bad) {
                ctx.refuse("\(origin): volume option \"\(bad)\": shared propagation lets mounts cross between the container and the host")
            } else {
                ctx.invalid("\(origin): volume option \"\(bad)\" is not one of \(knownOptions.sorted().joined(separator: ", "))")
            }
            return nil
        }
        if options.contains("rw") && options.contains("ro") {
            ctx.invalid("\(origin): volume \"\(spec)\" is both ro and rw")
            return nil
        }
        if options.contains("rw") {
            ctx.warnings.append("server \"\(ctx.server)\": \(origin): \"\(source)\" is mounted read-write (:rw)")
        } else if !options.contains("ro") {
            options.append("ro")
        }
        return "\(source):\(target):\(options.joined(separator: ","))"
    }

    /// The HOME the planner gives the unprivileged container user: its own tmpfs, exec-able
    /// (package runners install and run programs there), separate from the `noexec` /tmp.
    public static let plannedHomeDir = "/home/mcpproxy"
    static let plannedHome = "HOME=\(plannedHomeDir)"
    /// Default ulimits (podman applies the host's otherwise): open files per process, and a
    /// per-uid process backstop for engines without a pids controller (`--pids-limit` is the
    /// per-container bound; RLIMIT_NPROC counts every process of the uid on the host, so it is
    /// set high enough that containers sharing a uid do not starve each other).
    public static let defaultUlimits = ["nofile=4096:4096", "nproc=8192:8192"]

    /// The result of inspecting extra args.
    struct ExtraArgs {
        var args: [String] = []
        /// Values given inline with `-e NAME=value` (redacted from the logged argv).
        var secretValues: [String] = []
        /// A `--network` given in extra args (it replaces network_mode).
        var network: String?
        /// `--memory`, `--memory-swap`, `--cpus` given in extra args (they replace the limits).
        var memory: String?
        var memorySwap: String?
        var cpus: String?
    }

    /// The argv for logs: the value of every `--env NAME=VALUE` / `-e NAME=VALUE` before the
    /// image replaced by `***` (the planner's own HOME kept). Declared env values never appear
    /// in the argv (they travel in the docker client's environment or the env file), and no
    /// other word is touched, so the logged command can be copied to debug.
    static func redactArgv(_ argv: [String]) -> [String] {
        var out = argv
        let start = out.first.map { ContainerEngines.named($0) != nil } == true ? 1 : 0
        var rest = Array(out[start...])
        if rest.first == "run" || rest.first == "create" { rest.removeFirst() }
        let offset = out.count - rest.count
        let parsed = DockerCLI.parse(rest)
        for o in parsed.options where o.name == "env" && o.value != plannedHome {
            guard let eq = o.value.firstIndex(of: "=") else { continue }
            let masked = String(o.value[..<eq]) + "=***"
            let i = offset + o.index
            if out[i] == o.spelled, o.spelled.hasSuffix(o.value) {
                out[i] = String(o.spelled.dropLast(o.value.count)) + masked  // -eX=1, --env=X=1
            } else if i + 1 < out.count, out[i + 1] == o.value {
                out[i + 1] = masked
            }
        }
        return out
    }

    /// Removes `.`, `..`, duplicate and trailing slashes from an absolute path, lexically (no
    /// symlinks are resolved: planning does not touch the file system).
    public static func normalizePath(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/") {
            if part == "." || part.isEmpty { continue }
            if part == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// True when `a` is `b` or a directory above it (both absolute, normalized).
    public static func isAncestorOrSame(_ a: String, of b: String) -> Bool {
        if a == "/" { return true }
        return b == a || b.hasPrefix(a + "/")
    }

    /// True when `name` is a Docker volume name rather than a host path.
    static func isVolumeName(_ name: String) -> Bool {
        guard let first = name.first, first.isLetter || first.isNumber else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-") }
    }
}

/// Identifies the proxy that launched a container, so a later proxy can tell whether the
/// owner is still alive: a pid alone is meaningful only on the same host and the same boot,
/// and only while the pid has not been reused (its start time matches).
public struct ContainerOwner: Sendable, Equatable {
    /// Host name of the machine the proxy runs on.
    public var host: String
    /// The kernel boot id (`/proc/sys/kernel/random/boot_id`).
    public var bootID: String
    /// The proxy's pid.
    public var pid: Int32
    /// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot), if readable.
    public var startTime: String?

    /// Owner facts as given (tests); see `probe(pid:)` for the running process.
    public init(host: String, bootID: String, pid: Int32, startTime: String?) {
        self.host = host
        self.bootID = bootID
        self.pid = pid
        self.startTime = startTime
    }

    /// The owner facts of process `pid` on this machine.
    public static func probe(pid: Int32) -> ContainerOwner {
        ContainerOwner(host: currentHostName(), bootID: currentBootID(), pid: pid, startTime: processStartTime(pid))
    }

    /// This machine's host name.
    public static func currentHostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count) == 0 else { return "unknown" }
        return String(cString: buf)
    }

    /// The kernel's boot id (Linux), or "unknown".
    public static func currentBootID() -> String {
        let text = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? ""
        let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return id.isEmpty ? "unknown" : id
    }

    /// Field 22 of `/proc/<pid>/stat`, or nil when the process does not exist (or not Linux).
    public static func processStartTime(_ pid: Int32) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
        return parseStartTime(statLine: text)
    }

    /// The start-time field of a `/proc/<pid>/stat` line (the command name may contain spaces
    /// and parentheses, so fields are counted after the last `)`).
    public static func parseStartTime(statLine: String) -> String? {
        guard let close = statLine.lastIndex(of: ")") else { return nil }
        let fields = statLine[statLine.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // fields[0] is field 3 (state); field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        return String(fields[19]).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

extension DockerPlanner.Review {
    init(_ ctx: DockerPlanner.Checks) {
        refusals = zip(ctx.refusals, ctx.refusalAllows).map { Refusal(message: $0.0, allow: $0.1) }
        invalids = ctx.invalids
        warnings = ctx.warnings
    }
}
