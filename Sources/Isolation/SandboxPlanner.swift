import Foundation
import ProxyCore

/// Mode `sandbox`: runs the server under the `mcpproxy-sandbox` launcher, which confines itself
/// (Landlock allowlist, rlimits, cgroup, network namespace, uid drop, no_new_privs, seccomp) and
/// then execs the server, keeping the raw stdio pipes. Planning is pure: every fact about the
/// machine comes from a `SandboxHost` and a `SandboxKernel`.
public enum SandboxPlanner {
    /// Launcher exit statuses (see csandbox.h), for the Upstream layer's error messages.
    public enum ExitStatus {
        /// The launcher's command line was malformed (a planner bug).
        public static let usage: Int32 = 120
        /// A confinement step failed (the launcher's stderr says which).
        public static let setup: Int32 = 121
        /// The kernel cannot enforce the whole policy and `sandbox.allow_degraded` is false.
        public static let degraded: Int32 = 122
        /// The server could not be executed (not found, or not allowed by the policy).
        public static let exec: Int32 = 123

        /// A one-line explanation of a launcher exit status, or nil for a status the server chose.
        public static func describe(_ status: Int32) -> String? {
            switch status {
            case usage: return "the sandbox launcher rejected its policy arguments"
            case setup: return "the sandbox could not be set up (see the server log for the launcher's message)"
            case degraded: return "the kernel cannot enforce the whole sandbox policy and sandbox.allow_degraded is false"
            case exec: return "the sandboxed command could not be executed"
            default: return nil
            }
        }
    }

    /// Named `isolation.allow` opt-in: a read/write path may cover a denied secret (logged at warn).
    public static let broadPathsOptIn = "broad_paths"
    /// Named `isolation.allow` opt-in: the sandbox may run the server as uid 0.
    public static let rootOptIn = "root"
    /// Named `isolation.allow` opt-in: the declared env may set variables that steer the dynamic
    /// loader or libc (`LD_PRELOAD`, `GCONV_PATH`, ...). They reach the server only at execve,
    /// after confinement; the launcher never sees them as such.
    public static let loaderEnvOptIn = "loader_env"
    /// Named `isolation.allow` opt-in: the server may create unix sockets. Pathname sockets are
    /// then confined only by a private mount view (root), else the server is degraded.
    public static let unixSocketsOptIn = "unix_sockets"
    /// Address-space cap when `sandbox.memory_limit` is absent: generous, because runtimes such as
    /// node and the JVM reserve far more virtual memory than they touch.
    public static let defaultAddressSpace = "8g"
    /// The cgroup memory.max of a server without `isolation.memory_limit` (all its processes together).
    public static let defaultCgroupMemory = "2g"
    /// The cgroup cpu.max of a server without `isolation.cpu_limit`, in CPUs.
    public static let defaultCgroupCPUs = "1"

    /// System locations the server may read and execute.
    public static let systemPaths = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"]
    /// The parts of /etc a runtime needs; /etc as a whole is never granted (shadow, ssh host keys).
    public static let etcPaths = [
        "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/ssl", "/etc/ca-certificates",
        "/etc/ca-certificates.conf", "/etc/pki", "/etc/resolv.conf", "/etc/hosts", "/etc/host.conf",
        "/etc/nsswitch.conf", "/etc/gai.conf", "/etc/services", "/etc/protocols", "/etc/passwd", "/etc/group",
        "/etc/localtime", "/etc/timezone", "/etc/mime.types", "/etc/alternatives", "/etc/os-release",
        "/etc/debian_version", "/etc/locale.alias", "/etc/python3", "/etc/npmrc", "/etc/pip.conf",
    ]
    /// Kernel interfaces runtimes read (cpu count, memory, cgroup limits, /proc/self).
    public static let kernelReadPaths = ["/proc", "/sys/devices/system/cpu", "/sys/fs/cgroup"]
    /// Device files the server may read and write.
    public static let devicePaths = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]
    /// Secrets under the home directory that no grant may cover (without `broad_paths`).
    public static let homeSecrets = [".ssh", ".aws", ".gnupg", ".config/gcloud", ".docker", ".kube",
                                     ".azure", ".netrc", ".git-credentials", ".pypirc", ".npmrc"]

    /// Plans with the real machine (`LiveSandboxHost`, `SandboxKernel.current`); called by `Launcher.plan`.
    public static func plan(server: ServerConfig, command: String, config: ProxyConfig,
                            decision: IsolationDecision, context: LaunchContext) throws -> LaunchPlan {
        try plan(server: server, command: command, config: config, decision: decision, context: context,
                 host: LiveSandboxHost(), kernel: .current)
    }

    /// Plans the launch of `server` under the sandbox, with the machine's facts passed in.
    /// Throws `.unavailable` when the launcher is missing, `.notFound` when the command is not on
    /// PATH, `.invalidConfig` for a malformed user, `.refused` when a configured path would expose
    /// a secret or the server would run as root without opt-in, and `.unsupported` when the kernel
    /// cannot enforce the policy and `sandbox.allow_degraded` is false.
    public static func plan(server: ServerConfig, command: String, config: ProxyConfig,
                            decision: IsolationDecision, context: LaunchContext,
                            host: SandboxHost, kernel: SandboxKernel) throws -> LaunchPlan {
        let name = server.name
        guard context.platform == "linux" else {
            if server.egress != nil {
                throw ProxyError(.unsupported, "server \"\(name)\": egress in isolation mode sandbox needs Linux (a network namespace); use isolation mode docker")
            }
            // Seed 001's platform matrix: a documented no-op elsewhere, said loudly.
            var plan = NonePlanner.plan(server: server, command: command, decision: decision, context: context)
            plan.warnings.append("server \"\(name)\": isolation mode sandbox needs Linux (Landlock); on \(context.platform) the server runs unconfined, as with mode none. Use isolation mode docker to confine it.")
            plan.enforcement = ["isolation": "none", "sandbox": "not available on \(context.platform)",
                                "not_enforced": "filesystem, network, resources, uid"]
            return plan
        }
        guard let launcher = context.sandboxLauncher else {
            throw ProxyError(.unavailable, "server \"\(name)\": isolation mode sandbox needs the mcpproxy-sandbox launcher, which is not installed next to the mcpproxy binary; reinstall mcpproxy or choose isolation mode docker or none")
        }
        let iso = server.isolation ?? ServerIsolationConfig()
        let sandbox = config.sandbox
        let home = context.homeDir
        let optIns = Set(iso.allow)
        var warnings: [String] = []

        // Private per-server directories: HOME (package caches live there), TMPDIR, default cwd.
        // A workspace instance: its home is the workspace's own and outlives the instance (it
        // is removed with the workspace); TMPDIR stays per instance.
        let privateRoot = join(context.runtimeDir, "sandbox", sanitized(name) + (context.workspace.map { "@" + sanitized($0) } ?? ""))
        let workspaceHome = context.workspace.map { WorkspaceNames.sandboxHome(root: context.workspaceRoot, workspace: $0, server: name) }
        let privateHome = workspaceHome ?? join(privateRoot, "home")
        let privateTmp = join(privateRoot, "tmp")

        var env = EnvironmentPolicy.serverEnvironment(host: context.hostEnvironment, declared: [:])
        env["HOME"] = privateHome
        env["TMPDIR"] = privateTmp
        env["XDG_CACHE_HOME"] = join(privateHome, ".cache")
        env["XDG_CONFIG_HOME"] = join(privateHome, ".config")
        env["XDG_DATA_HOME"] = join(privateHome, ".local/share")
        let loaderVars = server.env.keys.filter(isLoaderVariable).sorted()
        if !loaderVars.isEmpty {
            let what = "server \"\(name)\": env \(loaderVars.joined(separator: ", ")) would steer the dynamic loader or libc"
            guard optIns.contains(loaderEnvOptIn) else {
                throw ProxyError(.refused, "\(what); remove it, or add \"\(loaderEnvOptIn)\" to isolation.allow (the server then sees it, confined, at exec; the launcher never does)")
            }
            warnings.append("\(what); passed to the confined server only (allowed by isolation.allow \"\(loaderEnvOptIn)\")")
        }
        env.merge(server.env) { _, declared in declared }

        let configuredWorkDir = (iso.workingDir ?? server.workingDir).map { absolute(expandTilde($0, home: home), base: privateHome) }
        let workDir = configuredWorkDir ?? privateHome

        // The command and the runtime it needs.
        let executable = try resolveCommand(command, path: env["PATH"] ?? EnvironmentPolicy.defaultPath,
                                            workDir: workDir, host: host, server: name)
        let denied = deniedPaths(home: home, dataDir: context.dataDir)
        var rx: [String] = []   // read + execute
        var rw: [String] = []   // read + write + execute
        for p in systemPaths where host.exists(p) { rx.append(p) }
        var ro = etcPaths.filter { host.exists($0) } + kernelReadPaths.filter { host.exists($0) }
        let devices = devicePaths.filter { host.exists($0) }
        for grant in runtimeGrants(executable: executable, path: env["PATH"] ?? EnvironmentPolicy.defaultPath,
                                   host: host, denied: denied, already: rx) where !rx.contains(grant) {
            rx.append(grant)
        }

        // Configured grants: each is checked against the secrets.
        let broad = optIns.contains(broadPathsOptIn)
        func checked(_ raw: String, key: String) throws -> String? {
            let path = absolute(expandTilde(raw, home: home), base: workDir)
            let real = host.realPath(path)
            for candidate in Set([path, real].compactMap { $0 }) {
                if let secret = exposedSecret(candidate, denied: denied, host: host) {
                    let what = "server \"\(name)\": \(key) entry \"\(raw)\" would expose \(secret)"
                    guard broad else {
                        throw ProxyError(.refused, "\(what); narrow the path, or add \"\(broadPathsOptIn)\" to isolation.allow to accept the risk")
                    }
                    warnings.append("\(what) (allowed by isolation.allow \"\(broadPathsOptIn)\")")
                }
            }
            return real ?? path
        }
        // working_dir and write_paths: never a system directory or another user's home.
        func writable(_ raw: String, key: String) throws -> String? {
            let path = absolute(expandTilde(raw, home: home), base: workDir)
            for candidate in Set([path, host.realPath(path)].compactMap { $0 }) {
                if let why = systemDirectory(candidate, home: home) {
                    throw ProxyError(.refused, "server \"\(name)\": \(key) entry \"\(raw)\" is \(why), which a sandboxed server may not write; use a directory of your own")
                }
            }
            return try checked(raw, key: key)
        }
        // The private dirs are the proxy's own (they may sit inside its data dir): not checked.
        let workDirGrant = try configuredWorkDir.flatMap { try writable($0, key: "working_dir") }
        for raw in sandbox.readPaths + (iso.readPaths ?? []) {
            guard let p = try checked(raw, key: "read_paths") else { continue }
            if host.exists(p) { ro.append(p) } else { warnings.append("server \"\(name)\": read_paths entry \"\(raw)\" does not exist; skipped") }
        }
        for raw in sandbox.writePaths + (iso.writePaths ?? []) {
            guard let p = try writable(raw, key: "write_paths") else { continue }
            if host.exists(p) { rw.append(p) } else { warnings.append("server \"\(name)\": write_paths entry \"\(raw)\" does not exist; skipped") }
        }
        rw.append(contentsOf: [privateHome, privateTmp])
        if let w = workDirGrant, !rw.contains(w) { rw.append(w) }

        // Identity: a root proxy hands the server to an unprivileged uid so RLIMIT_NPROC holds.
        var args: [String] = ["--name", name]
        var enforcement: [String: String] = ["isolation": "sandbox"]
        var notEnforced: [String] = []
        let userSpec = iso.user ?? sandbox.user
        let isRoot = host.effectiveUID == 0
        var dropUID: UInt32? = nil, dropGID: UInt32 = 0
        if isRoot {
            let uid: UInt32, gid: UInt32
            if let userSpec {
                (uid, gid) = try parseUser(userSpec, server: name)
                enforcement["uid"] = "\(uid):\(gid) (configured\(iso.user == nil ? " sandbox.user, shared by every server without isolation.user" : ""))"
            } else {
                guard let range = ConfigLoader.parseUIDRange(sandbox.uidRange) else {
                    throw ProxyError(.invalidConfig, "sandbox.uid_range \"\(sandbox.uidRange)\" is not \"FIRST-LAST\"")
                }
                uid = try serverUID(name, servers: config.servers.map(\.name), range: range)
                gid = uid
                enforcement["uid"] = "\(uid):\(gid) (own uid from sandbox.uid_range)"
            }
            if uid == 0 || gid == 0 {
                guard optIns.contains(rootOptIn) else {
                    throw ProxyError(.refused, "server \"\(name)\": sandbox user \"\(userSpec ?? "\(uid):\(gid)")\" is root; use an unprivileged uid:gid (or none: each server then gets its own uid from sandbox.uid_range), or add \"\(rootOptIn)\" to isolation.allow")
                }
                warnings.append("server \"\(name)\": sandboxed server runs as root (uid \(uid)) by isolation.allow \"\(rootOptIn)\"; RLIMIT_NPROC does not hold for root")
                notEnforced.append("uid drop")
            } else {
                dropUID = uid
                dropGID = gid
            }
            args += ["--uid", String(uid), "--gid", String(gid)]
        } else {
            enforcement["uid"] = "unchanged: proxy runs as uid \(host.effectiveUID) (not root), no drop needed"
        }

        // The dropped uid must be able to reach the command and its runtime (issue 16: an
        // interpreter under /root, mode 0700, fails with a bare "Permission denied" otherwise).
        if let uid = dropUID {
            let runtime = [executable] + rx.filter { !systemPaths.contains($0) }
            for p in unique(runtime + [host.realPath(executable) ?? executable]) {
                if let blocked = host.unsearchableAncestor(of: p, uid: uid, gid: dropGID) {
                    throw ProxyError(.refused, "server \"\(name)\": the sandboxed server runs as the unprivileged uid \(uid), which cannot enter \(blocked) to reach \(p); install the server and its interpreter where other users can read them (e.g. under /opt or /usr/local, not under /root or a 0700 home), or run the proxy as a non-root user")
                }
            }
            if let w = configuredWorkDir, let blocked = host.unsearchableAncestor(of: w, uid: uid, gid: dropGID) {
                throw ProxyError(.refused, "server \"\(name)\": working_dir \(w) lies under \(blocked), which the sandbox uid \(uid) cannot enter; choose a directory that uid can reach")
            }
        }

        // Filesystem.
        for d in unique([privateHome, privateTmp] + (configuredWorkDir.map { [$0] } ?? [])) { args += ["--mkdir", d] }
        for p in unique(rx) { args += ["--rx", p] }
        for p in unique(ro) where !rx.contains(p) { args += ["--ro", p] }
        for p in devices { args += ["--dev", p] }
        for p in unique(rw) { args += ["--rw", p] }
        args += ["--chdir", workDir]

        // Network.
        let networkMode = (iso.networkMode ?? config.dockerIsolation.networkMode).lowercased()
        var ports = iso.allowTCPConnect ?? []
        let proxyPorts = ports.filter { context.proxyListenPorts.contains($0) }
        if !proxyPorts.isEmpty {
            ports.removeAll { proxyPorts.contains($0) }
            warnings.append("server \"\(name)\": allow_tcp_connect lists \(proxyPorts.map(String.init).joined(separator: ", ")), the proxy's own listen port; dropped (a confined server never reaches the gateway)")
        }
        var egressPlan: EgressPlan? = nil
        if let rules = server.egress {
            // `egress` wins over network_mode and allow_tcp_connect (DECISIONS.md): the server's
            // own network namespace, whose one interface is a veth to the gateway's egress proxy.
            guard isRoot else {
                throw ProxyError(.unsupported, "server \"\(name)\": egress in isolation mode sandbox needs a root proxy (it creates the server's network namespace and veth pair); run the proxy as root or use isolation mode docker")
            }
            for variable in EgressPlan.proxyVariables where server.env[variable] != nil {
                throw ProxyError(.invalidConfig, "mcpServers.\(name).env.\(variable): egress sets the proxy variables; remove this one")
            }
            if iso.allowTCPConnect != nil {
                warnings.append("server \"\(name)\": egress is set, so allow_tcp_connect is ignored (the server's only way out is the egress proxy)")
            }
            if iso.networkMode != nil {
                warnings.append("server \"\(name)\": egress is set, so network_mode \"\(networkMode)\" is ignored (the server runs in its own network namespace behind the egress proxy)")
            }
            let plan = EgressPlan.forSandbox(server: name, launchID: context.launchID, ownerPID: context.proxyPID, rules: rules)
            egressPlan = plan
            args += ["--net", "netns:/run/netns/\(plan.network)"]
            enforcement["network"] = "egress: own network namespace \(plan.network), one veth to the gateway and no default route; out only through the egress proxy"
            enforcement["egress"] = rules.isEmpty ? "none (no destination allowed)" : rules.map(\.description).joined(separator: ",")
        } else {
        switch networkMode {
        case "none":
            args += ["--net", "none"]
            if kernel.canUnshareNetwork { enforcement["network"] = "none (fresh network namespace)" }
            else if kernel.landlockABI >= 4 { enforcement["network"] = "none for TCP (Landlock; no network namespace: UDP not confined)" }
            else { enforcement["network"] = "NOT confined"; notEnforced.append("network none (no network namespace, Landlock ABI < 4)") }
            if !ports.isEmpty { warnings.append("server \"\(name)\": allow_tcp_connect has no effect with network_mode none") }
        case "bridge", "default", "host", "":
            args += ["--net", "host"]
            enforcement["network"] = "host network"
        default:
            args += ["--net", "host"]
            enforcement["network"] = "host network"
            warnings.append("server \"\(name)\": network_mode \"\(networkMode)\" names a Docker network, which means nothing to the native sandbox; the server keeps the host network (use \"none\" to cut it off)")
        }
        }
        let listsPorts = iso.allowTCPConnect?.isEmpty == false && egressPlan == nil
        if networkMode != "none" && listsPorts {
            for port in ports { args += ["--tcp-connect", String(port)] }
            if ports.isEmpty {
                // Every listed port was the proxy's: an allowlist with nothing on it.
                args += ["--tcp-connect-none"]
            }
            if kernel.landlockABI >= 4 {
                enforcement["tcp_connect"] = ports.isEmpty ? "no port" : "only ports " + ports.map(String.init).joined(separator: ", ")
            } else { notEnforced.append("tcp connect allowlist (Landlock ABI < 4)") }
        }
        if !context.proxyListenPorts.isEmpty && egressPlan == nil {
            if networkMode == "none" { enforcement["proxy_port"] = "unreachable (no network)" }
            else if listsPorts && kernel.landlockABI >= 4 { enforcement["proxy_port"] = "unreachable (not in allow_tcp_connect)" }
            else { enforcement["proxy_port"] = "reachable: host network without allow_tcp_connect (authentication is the guard)" }
        }

        // Unix sockets: Landlock (ABI <= 7) does not mediate connect() to a pathname socket.
        if optIns.contains(unixSocketsOptIn) {
            let grants = unique(rx + ro + rw + devices + [workDir])
            var hidden: [String] = [], exposed: [String] = []
            for dir in unique(socketDirectories.map { host.realPath($0) ?? $0 }) where host.isDirectory(dir) {
                if grants.contains(where: { isWithin($0, dir) || isWithin(dir, $0) }) { exposed.append(dir) } else { hidden.append(dir) }
            }
            if isRoot {
                for d in hidden { args += ["--hide", d] }
                for d in exposed { notEnforced.append("pathname unix sockets under \(d) (it holds granted paths)") }
                enforcement["unix_sockets"] = "allowed by isolation.allow \"\(unixSocketsOptIn)\"; hidden: \(hidden.isEmpty ? "none" : hidden.joined(separator: ", ")); sockets elsewhere stay reachable"
            } else {
                notEnforced.append("pathname unix sockets (isolation.allow \"\(unixSocketsOptIn)\" without root: no private mount view)")
                enforcement["unix_sockets"] = "allowed by isolation.allow \"\(unixSocketsOptIn)\"; NOT confined"
            }
            warnings.append("server \"\(name)\": may create unix sockets (isolation.allow \"\(unixSocketsOptIn)\"); a pathname socket outside the hidden dirs is reachable")
        } else {
            args += ["--deny-unix"]
            enforcement["unix_sockets"] = "denied (socket(AF_UNIX) fails; socketpair allowed)"
        }

        // Resources.
        let asSpec = sandbox.memoryLimit ?? defaultAddressSpace
        guard let asBytes = ConfigLoader.parseByteSize(asSpec) else {
            throw ProxyError(.invalidConfig, "sandbox.memory_limit \"\(asSpec)\" is not a size like \"4g\"")
        }
        let nproc = iso.pidsLimit ?? sandbox.maxProcesses
        args += ["--rlimit", "as=\(asBytes)", "--rlimit", "nofile=\(sandbox.maxOpenFiles)", "--rlimit", "nproc=\(nproc)"]
        var rlimits = ["as=\(asSpec)", "nofile=\(sandbox.maxOpenFiles)", "nproc=\(nproc)", "core=0"]
        if let cpu = sandbox.cpuSeconds {
            args += ["--rlimit", "cpu=\(cpu)"]
            rlimits.append("cpu=\(cpu)s")
        }
        // A cgroup per launch, with limits even when the config sets none; removed after stop.
        let leaf = "\(sanitized(name))-\(sanitized(context.launchID))"
        args += ["--cgroup", leaf]
        let mem = iso.memoryLimit ?? defaultCgroupMemory
        let memNote = iso.memoryLimit == nil ? ", default" : ""
        guard let memBytes = ConfigLoader.parseByteSize(mem) else {
            throw ProxyError(.invalidConfig, "server \"\(name)\": isolation.memory_limit \"\(mem)\" is not a size like \"512m\"")
        }
        args += ["--cgroup-memory", String(memBytes)]
        enforcement["memory"] = kernel.cgroupsWritable ? "\(mem) (cgroup\(memNote))" : "\(mem) (RLIMIT_AS per process\(memNote); no writable cgroup)"
        let cpus = iso.cpuLimit ?? defaultCgroupCPUs
        args += ["--cgroup-cpus", cpus]
        if iso.cpuLimit == nil { args.append("--cgroup-optional") }
        if kernel.cgroupsWritable { enforcement["cpu"] = "\(cpus) cpus (cgroup\(iso.cpuLimit == nil ? ", default" : ""))" }
        else if iso.cpuLimit == nil { enforcement["cpu"] = "no limit (default \(cpus) cpus needs a writable cgroup)" }
        else { enforcement["cpu"] = "NOT enforced"; notEnforced.append("cpu_limit \(cpus) (no writable cgroup)") }
        args += ["--cgroup-pids", String(nproc)]
        enforcement["pids"] = kernel.cgroupsWritable ? "\(nproc) (cgroup pids.max and RLIMIT_NPROC)" : "\(nproc) (RLIMIT_NPROC)"
        var cgroupDirs: [String] = []
        if kernel.cgroupsWritable {
            cgroupDirs = kernel.cgroupV2 ? ["/sys/fs/cgroup/mcpproxy/\(leaf)"]
                                         : ["memory", "cpu", "pids"].map { "/sys/fs/cgroup/\($0)/mcpproxy/\(leaf)" }
        }

        // A bounded private home and TMPDIR.
        guard let homeBytes = ConfigLoader.parseByteSize(sandbox.homeSize) else {
            throw ProxyError(.invalidConfig, "sandbox.home_size \"\(sandbox.homeSize)\" is not a size like \"512m\"")
        }
        if let ws = context.workspace {
            if isRoot { args += ["--tmpfs", "\(privateTmp)=\(homeBytes)"] }
            else { args += ["--rlimit", "fsize=\(homeBytes)"]; rlimits.append("fsize=\(sandbox.homeSize)") }
            enforcement["home"] = "\(privateHome) (workspace \(ws), kept until the workspace is deleted)"
            enforcement["tmpdir"] = "\(privateTmp)"
        } else if isRoot {
            args += ["--tmpfs", "\(privateHome)=\(homeBytes)", "--tmpfs", "\(privateTmp)=\(homeBytes)"]
            enforcement["home"] = "\(privateHome) (private tmpfs, size \(sandbox.homeSize))"
            enforcement["tmpdir"] = "\(privateTmp) (private tmpfs, size \(sandbox.homeSize))"
        } else {
            args += ["--rlimit", "fsize=\(homeBytes)"]
            rlimits.append("fsize=\(sandbox.homeSize)")
            enforcement["home"] = "\(privateHome) (files up to \(sandbox.homeSize) each, RLIMIT_FSIZE; no total quota without root)"
            enforcement["tmpdir"] = "\(privateTmp) (files up to \(sandbox.homeSize) each, RLIMIT_FSIZE)"
        }
        enforcement["rlimits"] = rlimits.joined(separator: ", ")

        // Kernel features.
        let abi = kernel.landlockABI
        if abi == 0 {
            enforcement["landlock"] = "unavailable"
            notEnforced.append("filesystem allowlist (no Landlock in this kernel)")
        } else {
            enforcement["landlock"] = "abi \(abi)"
            if abi < 2 { notEnforced.append("cross-directory rename/link control (Landlock ABI < 2)") }
            if abi < 3 { notEnforced.append("truncate control (Landlock ABI < 3)") }
            if abi < 5 { notEnforced.append("device ioctl control (Landlock ABI < 5)") }
        }
        enforcement["filesystem"] = abi > 0 ? "allowlist: \(unique(rx + ro).count) read, \(unique(rw).count) write" : "NOT confined"
        if abi >= 6 { enforcement["scope"] = "signals and abstract unix sockets confined to the sandbox" }
        else { notEnforced.append("signal and abstract unix socket scoping (Landlock ABI < 6)") }
        enforcement["seccomp"] = "ptrace, mount, namespaces, kernel modules, keyctl, bpf, ... denied"
        enforcement["no_new_privs"] = "on"
        enforcement["process_group"] = "own session"
        enforcement["launcher_env"] = "loader and libc variables inert (prefixed) until the server's execve"

        if !notEnforced.isEmpty {
            enforcement["not_enforced"] = notEnforced.joined(separator: "; ")
            let summary = "server \"\(name)\": the sandbox is degraded on this machine: not enforced: \(notEnforced.joined(separator: "; "))"
            guard sandbox.allowDegraded else {
                throw ProxyError(.unsupported, "\(summary). Set \"sandbox\": {\"allow_degraded\": true} to start it anyway, or use isolation mode docker")
            }
            warnings.append("\(summary) (started because sandbox.allow_degraded is true)")
            args.append("--allow-degraded")
            enforcement["degraded"] = "yes (allowed by sandbox.allow_degraded)"
        } else {
            enforcement["degraded"] = "no"
            enforcement["not_enforced"] = "none"
        }

        let arguments = args + ["--", executable] + server.args
        // The launcher's own environment carries the server's only under a prefix that neither
        // the dynamic loader nor libc reads; the launcher strips it at the server's execve.
        var launcherEnv: [String: String] = [:]
        for (k, v) in env { launcherEnv[environmentPrefix + k] = v }
        var plan = LaunchPlan(executable: launcher, arguments: arguments, environment: launcherEnv,
                              workingDirectory: nil, decision: decision,
                              redactedCommandLine: Redactor.redactEnvAssignments([launcher] + arguments, secrets: server.env),
                              warnings: warnings, enforcement: enforcement, cgroupDirectories: cgroupDirs)
        plan.egress = egressPlan
        return plan
    }

    // MARK: - pieces (internal for tests)

    /// The secrets no grant may cover: credential dirs in the home directory, the proxy's data dir.
    static func deniedPaths(home: String, dataDir: String) -> [String] {
        homeSecrets.map { join(home, $0) } + [dataDir]
    }

    /// The denied path `path` would expose (a grant of `path` covers it or lies inside it), a
    /// `.env` file directly in `path`, or the whole file system; nil when none.
    static func exposedSecret(_ path: String, denied: [String], host: SandboxHost) -> String? {
        let p = normalized(path)
        if p == "/" { return "the whole file system" }
        for d in denied.map(normalized) {
            if isWithin(d, p) || isWithin(p, d) { return d }
        }
        if host.isDirectory(p), host.exists(join(p, ".env")) { return join(p, ".env") }
        return nil
    }

    /// Finds `command` as exec would: a path (relative to the working dir) or a name on PATH.
    static func resolveCommand(_ command: String, path: String, workDir: String, host: SandboxHost,
                               server: String) throws -> String {
        if command.contains("/") {
            let p = absolute(command, base: workDir)
            guard host.isExecutableFile(p) else {
                throw ProxyError(.notFound, "server \"\(server)\": command \"\(command)\" is not an executable file")
            }
            return p
        }
        for dir in path.split(separator: ":").map(String.init) where dir.hasPrefix("/") {
            let candidate = join(dir, command)
            if host.isExecutableFile(candidate) { return candidate }
        }
        throw ProxyError(.notFound, "server \"\(server)\": command \"\(command)\" was not found on PATH (\(path)); install it or give an absolute path")
    }

    /// Read+execute grants for the runtime of `executable` beyond the system paths: its install
    /// prefix (a `bin/` parent), a Python venv and its base install (pyvenv.cfg `home`), the
    /// interpreter of a `#!` script, and shared-library dirs such as the Swift runtime.
    static func runtimeGrants(executable: String, path: String, host: SandboxHost, denied: [String],
                              already: [String], depth: Int = 0) -> [String] {
        var grants: [String] = []
        func covered(_ p: String) -> Bool { (already + grants).contains { isWithin(p, $0) } }
        func grant(_ p: String) {
            guard !covered(p) else { return }
            grants.append(p)
        }
        // Grant the install prefix when it exposes nothing; else the directory; else the file.
        func grantInstall(of file: String) {
            guard !covered(file) else { return }
            let dir = parent(file)
            if (dir as NSString).lastPathComponent == "bin" {
                let prefix = parent(dir)
                if prefix != "/" && exposedSecret(prefix, denied: denied, host: host) == nil { grant(prefix); return }
            }
            if exposedSecret(dir, denied: denied, host: host) == nil { grant(dir) } else { grant(file) }
        }

        // A venv: bin/python next to ../pyvenv.cfg; `home` names the base install's bin dir.
        let binDir = parent(executable)
        let venvRoot = parent(binDir)
        if let cfg = host.readText(join(venvRoot, "pyvenv.cfg"), limit: 4096) {
            if exposedSecret(venvRoot, denied: denied, host: host) == nil { grant(venvRoot) }
            for line in cfg.split(whereSeparator: \.isNewline) {
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if parts.count == 2, parts[0] == "home", parts[1].hasPrefix("/") {
                    let baseBin = host.realPath(parts[1]) ?? parts[1]
                    grantInstall(of: join(baseBin, "python"))
                }
            }
        }
        let real = host.realPath(executable) ?? executable
        grantInstall(of: executable)
        if real != executable { grantInstall(of: real) }
        for dir in host.runtimeLibraryDirectories(forExecutable: real) { grant(dir) }

        // A script: its interpreter (`#!/usr/bin/env node` looks node up on PATH).
        if depth < 2, let head = host.readText(real, limit: 256), head.hasPrefix("#!") {
            let line = head.dropFirst(2).prefix { $0 != "\n" }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            var interpreter: String? = words.first
            if let first = words.first, (first as NSString).lastPathComponent == "env" {
                let name = words.dropFirst().first { !$0.hasPrefix("-") }
                interpreter = name.flatMap { n in
                    path.split(separator: ":").map { join(String($0), n) }.first { host.isExecutableFile($0) }
                }
            }
            if let interp = interpreter, interp.hasPrefix("/") {
                for g in runtimeGrants(executable: interp, path: path, host: host, denied: denied,
                                       already: already + grants, depth: depth + 1) { grant(g) }
            }
        }
        return grants
    }

    /// Parses a numeric "uid:gid" (or "uid", gid = uid).
    static func parseUser(_ spec: String, server: String) throws -> (UInt32, UInt32) {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), let uid = UInt32(parts[0]),
              let gid = parts.count == 2 ? UInt32(parts[1]) : Optional(uid) else {
            throw ProxyError(.invalidConfig, "server \"\(server)\": sandbox user \"\(spec)\" is not a numeric uid:gid such as \"65534:65534\"")
        }
        return (uid, gid)
    }

    static func sanitized(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
    }

    static func normalized(_ path: String) -> String {
        var p = (path as NSString).standardizingPath
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        return p
    }

    /// Whether `path` equals `dir` or lies beneath it.
    static func isWithin(_ path: String, _ dir: String) -> Bool {
        let p = normalized(path), d = normalized(dir)
        return p == d || d == "/" || p.hasPrefix(d + "/")
    }

    static func join(_ a: String, _ b: String...) -> String {
        var out = a
        for part in b where !part.isEmpty {
            out = out.hasSuffix("/") ? out + part : out + "/" + part
        }
        return out
    }

    static func parent(_ path: String) -> String { (path as NSString).deletingLastPathComponent }

    static func absolute(_ path: String, base: String) -> String {
        normalized(path.hasPrefix("/") ? path : join(base, path))
    }

    static func unique(_ paths: [String]) -> [String] {
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }
}
