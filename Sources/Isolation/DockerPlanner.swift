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
        let global = config.dockerIsolation
        let iso = server.isolation ?? ServerIsolationConfig()
        let owner = owner ?? ContainerOwner.probe(pid: context.proxyPID)
        let where_ = "mcpServers[\"\(server.name)\"].isolation"
        var ctx = Checks(server: server.name, where_: where_, allow: Set(iso.allow), context: context,
                         resolve: resolveSymlinks ?? { resolveExistingPrefix($0) })

        for name in iso.allow.sorted() where Allowance(rawValue: name) == nil {
            ctx.warnings.append("server \"\(server.name)\": \(where_).allow entry \"\(name)\" is not a docker-mode name; ignored (known: \(Allowance.allCases.map(\.rawValue).joined(separator: ", ")))")
        }

        let choice = image(for: command, isolation: iso, global: global)
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
            if isRootUser(user) {
                ctx.optIn(.rootUser, "user \"\(user)\" is root inside the container",
                          granted: "the server runs as root inside the container")
            }
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
        args += ["--tmpfs", "/tmp:rw,nosuid,nodev,size=\(global.tmpfsSize)"]
        enforcement["tmpfs"] = "/tmp size=\(global.tmpfsSize)"
        let pids = iso.pidsLimit ?? global.pidsLimit
        if ctx.relax(.noPidsLimit, "no --pids-limit: a fork bomb in the server is not contained") {
            enforcement["pids_limit"] = "none"
        } else {
            args += ["--pids-limit", String(pids)]; enforcement["pids_limit"] = String(pids)
        }
        let memory = iso.memoryLimit ?? global.memoryLimit
        let cpus = iso.cpuLimit ?? global.cpuLimit
        // --memory-swap equal to --memory: no swap on top of the limit, so the limit is the limit.
        args += ["--memory", memory, "--memory-swap", memory, "--cpus", cpus]
        enforcement["memory"] = memory; enforcement["cpus"] = cpus
        let network = iso.networkMode ?? global.networkMode
        checkNetwork(network, &ctx, origin: "\(where_).network_mode")
        args += ["--network", network]; enforcement["network"] = network
        if ctx.relax(.containerLogs, "the daemon's log driver stores the server's stdout (the MCP traffic) on the host") {
            enforcement["log_driver"] = "daemon default"
        } else {
            args += ["--log-driver", "none"]; enforcement["log_driver"] = "none"
        }
        if let dir = iso.workingDir {
            if !dir.hasPrefix("/") {
                ctx.invalid("\(where_).working_dir must be an absolute path inside the container, found \"\(dir)\"")
            }
            args += ["--workdir", dir]
        }
        if server.workingDir != nil {
            ctx.warnings.append("server \"\(server.name)\": working_dir is a host path and is not used in docker mode; set \(where_).working_dir (a path inside the container)")
        }

        // Environment: names on the command line, values in the docker client's environment
        // (docker copies `-e NAME` from it), so no value shows in `ps` or in the logged argv.
        // Names the docker client itself reads (PATH, DOCKER_HOST, ...) cannot go that way
        // without redirecting the client, so they go through a 0600 env file instead.
        var clientEnv = EnvironmentPolicy.filtered(context.hostEnvironment, allowed: EnvironmentPolicy.dockerClient)
        var envFileLines: [String] = []
        let declaresHome = server.env["HOME"] != nil
        if !declaresHome && !ctx.allows(.imageUser) {
            // The unprivileged uid has no passwd entry (HOME would be "/", read-only): give
            // runtimes that cache under $HOME (uv, npm) the writable tmpfs.
            args += ["--env", plannedHome]
        }
        for key in server.env.keys.sorted() {
            let value = server.env[key]!
            if EnvironmentPolicy.dockerClient.contains(key) {
                if value.contains("\n") || value.contains("\r") {
                    ctx.invalid("mcpServers[\"\(server.name)\"].env.\(key): a multi-line value cannot be passed to a container for this name (it would redirect the docker client); use another variable name")
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

        // Volumes: read-only unless marked rw; dangerous sources refused unless opted in.
        for (i, spec) in (iso.volumes ?? []).enumerated() {
            if let normalized = checkVolume(spec, &ctx, origin: "\(where_).volumes[\(i)]") {
                args += ["--volume", normalized]
            }
        }
        // Extra args: global then per-server, inspected for the same dangers.
        let globalExtras = checkExtraArgs(global.extraArgs, &ctx, origin: "docker_isolation.extra_args")
        let serverExtras = checkExtraArgs(iso.extraArgs ?? [], &ctx, origin: "\(where_).extra_args")
        args += globalExtras.args + serverExtras.args

        args.append(choice.image)
        args.append(command)
        args += server.args

        if !ctx.refusals.isEmpty {
            let list = ctx.refusals.map { "  - \($0)" }.joined(separator: "\n")
            throw ProxyError(.refused, "server \"\(server.name)\": docker isolation refuses to start the container:\n\(list)")
        }
        if !ctx.invalids.isEmpty {
            throw ProxyError(.invalidConfig, "server \"\(server.name)\": " + ctx.invalids.joined(separator: "; "))
        }

        var secrets = server.env
        for (i, value) in (globalExtras.secretValues + serverExtras.secretValues).enumerated() { secrets["extra_args_env_\(i)"] = value }
        let redacted = redactArgv(["docker"] + args, secrets: secrets)
        return LaunchPlan(executable: "docker", arguments: args, environment: clientEnv, workingDirectory: nil,
                          decision: decision, redactedCommandLine: redacted,
                          container: ContainerPlan(name: name, image: choice.image, cidFile: cidFile, labels: labels),
                          warnings: ctx.warnings, enforcement: enforcement, files: files)
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

    /// True when `user` (`uid[:gid]` or `name[:group]`) is root.
    public static func isRootUser(_ user: String) -> Bool {
        let first = user.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? user
        return first == "0" || first.lowercased() == "root" || first.isEmpty
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
            }
        }

        mutating func invalid(_ message: String) { invalids.append(message) }
    }

    static func checkNetwork(_ network: String, _ ctx: inout Checks, origin: String) {
        if network.lowercased() == "host" {
            ctx.optIn(.hostNetwork, "\(origin): network \"host\"",
                      granted: "the server shares the host's network stack, including services bound to localhost")
        } else if network.lowercased().hasPrefix("container:") {
            ctx.warnings.append("server \"\(ctx.server)\": \(origin): network \"\(network)\" joins another container's network namespace")
        }
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

    static let systemDirectories = ["/etc", "/proc", "/sys", "/dev", "/boot", "/root"]

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
        if dockerSocketPaths(ctx.context).contains(where: { isAncestorOrSame(source, of: $0) }) || source.hasSuffix("docker.sock") {
            ctx.optIn(.dockerSocket, "\(origin): mount of \(shown) exposes the Docker socket",
                      granted: "whoever controls the server controls the Docker engine, which is root on the host")
        }
        if source == "/" || isAncestorOrSame(source, of: home) {
            ctx.optIn(.broadMount, "\(origin): mount of \(shown) covers the home directory \(home)",
                      granted: "the server can read every file of the user, including credentials")
        } else if isAncestorOrSame(source, of: dataDir) || isAncestorOrSame(dataDir, of: source) {
            ctx.optIn(.broadMount, "\(origin): mount of \(shown) overlaps the proxy's data directory \(dataDir)",
                      granted: "the server can read the proxy's own state and keys")
        } else if let sys = systemDirectories.first(where: { isAncestorOrSame($0, of: source) }) {
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
        if options.contains("rw") {
            ctx.warnings.append("server \"\(ctx.server)\": \(origin): \"\(source)\" is mounted read-write (:rw)")
        } else if !options.contains("ro") {
            options.append("ro")
        }
        return "\(source):\(target):\(options.joined(separator: ","))"
    }

    /// Checks and normalizes a `--mount` value: bind sources checked like volumes, `readonly`
    /// added unless a `readonly`/`ro` key is present (`readonly=false` keeps it writable).
    static func checkMount(_ value: String, _ ctx: inout Checks, origin: String) -> String? {
        var fields = value.split(separator: ",").map(String.init)
        var type = "volume"
        var hasReadonly = false
        var sourceIndex: Int? = nil
        for (i, field) in fields.enumerated() {
            let kv = field.split(separator: "=", maxSplits: 1).map(String.init)
            let key = kv[0].lowercased()
            switch key {
            case "type": type = kv.count > 1 ? kv[1].lowercased() : type
            case "source", "src": sourceIndex = i
            case "readonly", "ro":
                hasReadonly = true
                if kv.count > 1, ["false", "0"].contains(kv[1].lowercased()) {
                    ctx.warnings.append("server \"\(ctx.server)\": \(origin): mount \"\(value)\" is read-write")
                }
            default: break
            }
        }
        if type == "bind", let i = sourceIndex {
            let kv = fields[i].split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, let checked = checkHostSource(kv[1], &ctx, origin: origin) else {
                if kv.count != 2 { ctx.invalid("\(origin): mount \"\(value)\" has an empty source") }
                return nil
            }
            fields[i] = "\(kv[0])=\(checked)"
        }
        if !hasReadonly && type != "tmpfs" { fields.append("readonly") }
        return fields.joined(separator: ",")
    }

    /// The HOME the planner gives the unprivileged container user (not a secret).
    static let plannedHome = "HOME=/tmp"

    /// The result of inspecting extra args.
    struct ExtraArgs {
        var args: [String] = []
        /// Values given inline with `-e NAME=value` (redacted from the logged argv).
        var secretValues: [String] = []
    }

    /// Flags (long names, without dashes) whose value is the next token when not given with `=`.
    /// Every `docker run` option that takes a value (docker 20.10 through 28), so that a value
    /// is never mistaken for an option or for the image.
    static let valueFlags: Set<String> = [
        "add-host", "annotation", "attach", "blkio-weight", "blkio-weight-device", "cap-add", "cap-drop",
        "cgroup-parent", "cgroupns", "cidfile", "cpu-count", "cpu-percent", "cpu-period", "cpu-quota",
        "cpu-rt-period", "cpu-rt-runtime", "cpu-shares", "cpus", "cpuset-cpus", "cpuset-mems", "detach-keys",
        "device", "device-cgroup-rule", "device-read-bps", "device-read-iops", "device-write-bps",
        "device-write-iops", "dns", "dns-option", "dns-opt", "dns-search", "domainname", "entrypoint", "env",
        "env-file", "expose", "gpus", "group-add", "health-cmd", "health-interval", "health-retries",
        "health-start-interval", "health-start-period", "health-timeout", "hostname", "io-maxbandwidth",
        "io-maxiops", "ip", "ip6", "ipc", "isolation", "kernel-memory", "label", "label-file", "link",
        "link-local-ip", "log-driver", "log-opt", "mac-address", "memory", "memory-reservation", "memory-swap",
        "memory-swappiness", "mount", "name", "network", "net", "network-alias", "net-alias", "oom-score-adj",
        "pid", "pids-limit", "platform", "publish", "pull", "restart", "runtime", "security-opt", "shm-size",
        "stop-signal", "stop-timeout", "storage-opt", "sysctl", "tmpfs", "ulimit", "user", "userns", "uts",
        "volume", "volume-driver", "volumes-from", "workdir",
    ]
    static let shortFlags: [Character: String] = [
        "v": "volume", "u": "user", "e": "env", "l": "label", "w": "workdir", "m": "memory",
        "p": "publish", "h": "hostname", "c": "cpu-shares", "a": "attach",
    ]
    static let booleanShorts: Set<Character> = ["i", "t", "d", "P", "q"]
    static let booleanLongs: Set<String> = [
        "interactive", "tty", "detach", "rm", "init", "read-only", "privileged", "publish-all", "oom-kill-disable",
        "no-healthcheck", "sig-proxy", "quiet", "disable-content-trust", "use-api-socket",
    ]

    /// Inspects `docker run` extra args: refuses what would undo the container boundary or
    /// break the stdio plan, normalizes volumes to read-only, and notes inline env values.
    static func checkExtraArgs(_ input: [String], _ ctx: inout Checks, origin: String) -> ExtraArgs {
        var out = ExtraArgs()
        var i = 0
        while i < input.count {
            let token = input[i]
            i += 1
            guard token.hasPrefix("-"), token != "-", token != "--" else {
                ctx.invalid("\(origin): unexpected argument \"\(token)\": extra_args holds docker run options only (the image and command are planned)")
                continue
            }
            var flag: String
            var inlineValue: String? = nil
            if token.hasPrefix("--") {
                let body = String(token.dropFirst(2))
                if let eq = body.firstIndex(of: "=") {
                    flag = String(body[..<eq]); inlineValue = String(body[body.index(after: eq)...])
                } else { flag = body }
            } else {
                let body = Array(token.dropFirst())
                if let long = shortFlags[body[0]] {
                    flag = long
                    if body.count > 1 {
                        var rest = String(body.dropFirst())
                        if rest.hasPrefix("=") { rest.removeFirst() }
                        inlineValue = rest
                    }
                } else if body.allSatisfy({ booleanShorts.contains($0) }) {
                    if body.contains("t") {
                        ctx.invalid("\(origin): \"\(token)\" asks for a TTY, which breaks the stdio JSON-RPC stream (\"the input device is not a TTY\")")
                    }
                    if body.contains("d") {
                        ctx.invalid("\(origin): \"\(token)\" detaches the container; the proxy talks to it over the attached stdio")
                    }
                    out.args.append(token)
                    continue
                } else {
                    flag = String(body)
                }
            }
            var value: String? = inlineValue
            let takesValue = valueFlags.contains(flag) && !booleanLongs.contains(flag)
            if value == nil && takesValue {
                if i < input.count { value = input[i]; i += 1 } else {
                    ctx.invalid("\(origin): \"\(token)\" needs a value")
                    continue
                }
            }
            let v = value ?? ""
            switch flag {
            case "tty", "detach":
                if value == nil || ["true", "1"].contains(v.lowercased()) {
                    ctx.invalid("\(origin): \"\(token)\" conflicts with the attached stdio the proxy uses")
                }
            case "name", "cidfile", "rm", "interactive", "sig-proxy", "attach":
                ctx.invalid("\(origin): \"\(token)\" conflicts with what the planner sets (container name, cid file, --rm, -i and the attached stdio)")
            case "restart":
                ctx.invalid("\(origin): \"\(token)\": a restart policy lets the engine revive the container behind the proxy's back; the proxy restarts servers itself")
            case "use-api-socket":
                if value == nil || ["true", "1"].contains(v.lowercased()) {
                    ctx.optIn(.dockerSocket, "\(origin): --use-api-socket mounts the Docker API socket",
                              granted: "whoever controls the server controls the Docker engine, which is root on the host")
                }
            case "publish", "publish-all":
                ctx.warnings.append("server \"\(ctx.server)\": \(origin): \"\(token)\" publishes container ports on the host; the server becomes reachable from the network unless bound to 127.0.0.1")
            case "label", "label-file":
                if flag == "label-file" || v.lowercased().hasPrefix("mcpproxy.") {
                    ctx.invalid("\(origin): \"\(token)\" may not set mcpproxy.* labels (they decide which containers the proxy removes)")
                }
            case "privileged":
                if value == nil || ["true", "1"].contains(v.lowercased()) {
                    ctx.optIn(.privileged, "\(origin): --privileged", granted: "the container gets every capability and every host device")
                }
            case "cap-add":
                for cap in v.split(separator: ",").map({ $0.uppercased().replacingOccurrences(of: "CAP_", with: "") }) {
                    switch cap {
                    case "ALL": ctx.optIn(.privileged, "\(origin): --cap-add ALL", granted: "the container gets every capability")
                    case "SYS_ADMIN": ctx.optIn(.capSysAdmin, "\(origin): --cap-add SYS_ADMIN", granted: "mount, namespaces and many kernel interfaces: a known container-escape path")
                    case "NET_ADMIN": ctx.optIn(.capNetAdmin, "\(origin): --cap-add NET_ADMIN", granted: "the server can reconfigure the container's network and firewall")
                    case "SYS_PTRACE": ctx.optIn(.capSysPtrace, "\(origin): --cap-add SYS_PTRACE", granted: "the server can trace and inject into processes it can see")
                    default: ctx.warnings.append("server \"\(ctx.server)\": \(origin): adds capability \(cap)")
                    }
                }
            case "network", "net":
                checkNetwork(v, &ctx, origin: origin)
            case "pid":
                if v.lowercased() == "host" { ctx.optIn(.hostPID, "\(origin): --pid host", granted: "the server sees and can signal every host process") }
            case "ipc":
                if v.lowercased() == "host" { ctx.optIn(.hostIPC, "\(origin): --ipc host", granted: "the server shares the host's shared memory and IPC") }
            case "userns", "uts", "cgroupns":
                if v.lowercased() == "host" { ctx.optIn(.unconfined, "\(origin): --\(flag) host", granted: "a host namespace is shared with the container") }
            case "security-opt":
                let s = v.lowercased().replacingOccurrences(of: ":", with: "=")
                if s.hasPrefix("no-new-privileges=false") {
                    ctx.optIn(.newPrivileges, "\(origin): --security-opt \(v)", granted: "setuid binaries in the image can gain privileges")
                } else if ["seccomp=unconfined", "apparmor=unconfined", "label=disable", "systempaths=unconfined"].contains(s) {
                    ctx.optIn(.unconfined, "\(origin): --security-opt \(v)", granted: "a kernel confinement layer of the container is switched off")
                }
            case "device", "device-cgroup-rule", "gpus":
                ctx.optIn(.devices, "\(origin): --\(flag) \(v)", granted: "host devices are reachable from the container")
            case "volumes-from":
                ctx.optIn(.broadMount, "\(origin): --volumes-from \(v)", granted: "every mount of another container is shared with this one")
            case "user":
                if isRootUser(v) { ctx.optIn(.rootUser, "\(origin): --user \(v) is root inside the container", granted: "the server runs as root inside the container") }
            case "read-only":
                if ["false", "0"].contains(v.lowercased()) {
                    ctx.optIn(.writableRootfs, "\(origin): --read-only=false", granted: "the container's root filesystem is writable")
                }
            case "pids-limit":
                if let n = Int(v), n <= 0 { ctx.optIn(.noPidsLimit, "\(origin): --pids-limit \(v)", granted: "a fork bomb in the server is not contained") }
            case "volume":
                if let normalized = checkVolume(v, &ctx, origin: origin) {
                    out.args += ["--volume", normalized]
                }
                continue
            case "mount":
                if let normalized = checkMount(v, &ctx, origin: origin) {
                    out.args += ["--mount", normalized]
                }
                continue
            case "env":
                if let eq = v.firstIndex(of: "=") {
                    let secret = String(v[v.index(after: eq)...])
                    if !secret.isEmpty { out.secretValues.append(secret) }
                    ctx.warnings.append("server \"\(ctx.server)\": \(origin): \"-e \(v[..<eq])=...\" puts a value on the docker command line, visible in ps; declare it in the server's env instead")
                }
            default:
                break
            }
            if let value, inlineValue == nil {
                out.args += [token, value]
            } else {
                out.args.append(token)
            }
        }
        return out
    }

    /// The argv for logs: declared env values and inline `-e NAME=value` values replaced.
    static func redactArgv(_ argv: [String], secrets: [String: String]) -> [String] {
        var out = Redactor.redactEnvAssignments(argv, secrets: secrets)
        // Inline env assignments in extra args: keep the name, hide the value, whatever its length.
        var i = 0
        while i < out.count {
            let t = out[i]
            if (t == "-e" || t == "--env"), i + 1 < out.count, out[i + 1] != plannedHome,
               let eq = out[i + 1].firstIndex(of: "=") {
                out[i + 1] = String(out[i + 1][..<eq]) + "=***"
                i += 2; continue
            }
            for prefix in ["--env=", "-e"] where t.hasPrefix(prefix) && t.count > prefix.count {
                let rest = t.dropFirst(prefix.count)
                if let eq = rest.firstIndex(of: "=") { out[i] = prefix + String(rest[..<eq]) + "=***" }
            }
            i += 1
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
