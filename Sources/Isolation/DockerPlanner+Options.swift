import Foundation
import ProxyCore

/// The allowlist of `docker run` options a config may add (`extra_args`) and the checks of every
/// config field that becomes a docker argument. Options are read by `DockerCLI` exactly as the
/// docker CLI reads them; an option not on the list is refused, naming its JSON path.
extension DockerPlanner {
    /// Capabilities `--cap-add` may add without an `allow` entry: none of them reaches beyond
    /// the container's own files and processes.
    public static let safeCapabilities: Set<String> = [
        "CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
    ]

    /// Options accepted as they are (values only checked for line breaks): harmless to the
    /// container boundary and to the stdio plan.
    static let plainOptions: Set<String> = [
        "add-host", "disable-content-trust", "dns", "dns-option", "dns-search", "domainname",
        "entrypoint", "expose", "health-cmd", "health-interval", "health-retries", "health-start-interval",
        "health-start-period", "health-timeout", "hostname", "ip", "ip6", "log-opt", "mac-address",
        "network-alias", "no-healthcheck", "platform", "quiet", "stop-signal", "stop-timeout",
    ]

    /// Every option name extra_args may use (the rest are refused as not on the allowlist).
    public static let allowedOptions: Set<String> = plainOptions.union([
        "cap-add", "cap-drop", "cgroupns", "cpu-period", "cpu-quota", "cpu-shares", "cpus", "cpuset-cpus", "cpuset-mems",
        "detach", "device", "device-cgroup-rule", "env", "gpus", "group-add", "init", "interactive", "ipc", "label",
        "log-driver", "memory", "memory-reservation", "memory-swap", "memory-swappiness", "mount", "network",
        "oom-kill-disable", "oom-score-adj", "pid", "pids-limit", "privileged", "publish", "publish-all", "pull",
        "read-only", "runtime", "security-opt", "shm-size", "storage-opt", "sysctl", "tmpfs", "tty", "ulimit",
        "use-api-socket", "user", "userns", "uts", "volume", "volumes-from", "workdir", "blkio-weight",
    ])

    /// Engine state and sockets: a mount of any of these (or of a directory above one) hands the
    /// server the container engine, i.e. root on the host.
    static let engineStatePaths = [
        "/var/lib/docker", "/var/lib/containerd", "/run/containerd", "/var/run/containerd", "/run/docker",
        "/var/run/docker", "/var/lib/containers", "/run/podman", "/var/run/podman", "/run/crio", "/var/run/crio",
        "/run/runc", "/var/lib/kubelet",
    ]
    /// Socket file names of container engines, refused wherever they are.
    static let engineSocketNames: Set<String> = ["docker.sock", "containerd.sock", "podman.sock", "crio.sock", "dockershim.sock", "buildkitd.sock"]

    /// Host directories a server never mounts without `broad_mount`.
    static let systemDirectories = [
        "/etc", "/proc", "/sys", "/dev", "/boot", "/root", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
        "/libx32", "/var/lib", "/var/log", "/var/spool", "/var/run", "/run", "/snap",
    ]

    /// Kernel parameters `--sysctl` may set: the namespaced ones docker itself accepts.
    static let sysctlPrefixes = ["net.", "kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue."]
    static let ulimitNames: Set<String> = [
        "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio",
        "rttime", "sigpending", "stack",
    ]

    /// The JSON path of argument `index` of an extra_args list at `base`.
    static func path(_ base: String, _ index: Int) -> String { "\(base)[\(index)]" }

    /// Inspects one level of `extra_args` (`base` is its JSON path): parses it as docker does,
    /// refuses whatever is not on the allowlist (naming the `allow` entry where one exists), and
    /// returns the accepted options in a canonical spelling (`--name value`, `--flag=false`).
    static func checkExtraArgs(_ input: [String], _ ctx: inout Checks, base: String, declaredEnv: Set<String>) -> ExtraArgs {
        var out = ExtraArgs()
        let parsed = DockerCLI.parse(input, stopAtPositional: false)
        if let e = parsed.error {
            ctx.invalid("\(path(base, e.index)): \"\(input[e.index])\": docker would reject it: \(e.message)")
            return out
        }
        if let dd = parsed.doubleDash {
            ctx.invalid("\(path(base, dd)): \"--\" ends docker's options; extra_args holds docker run options only (the image and command are planned)")
        }
        for p in parsed.positionals where parsed.doubleDash == nil || p.index < parsed.doubleDash! {
            ctx.invalid("\(path(base, p.index)): unexpected argument \"\(p.value)\": extra_args holds docker run options only (the image and command are planned)")
        }
        let networks = parsed.options.filter { $0.name == "network" }
        if networks.count > 1 {
            ctx.invalid("\(path(base, networks[1].index)): more than one --network; give one network (or use network_mode)")
        }
        for o in parsed.options {
            let origin = path(base, o.index)
            if let emitted = checkOption(o, &ctx, origin: origin, declaredEnv: declaredEnv, secrets: &out.secretValues) {
                // Settings the planner emits itself are taken over (the last one wins, as in
                // docker) rather than repeated: a second --network would add a network, and a
                // --memory above the planner's --memory-swap would make docker refuse the run.
                switch o.name {
                case "network": out.network = o.value
                case "memory": out.memory = o.value
                case "memory-swap": out.memorySwap = o.value
                case "cpus": out.cpus = o.value
                default: out.args += emitted
                }
            }
        }
        let utsHost = parsed.options.last { $0.name == "uts" }?.value.lowercased() == "host"
        if utsHost, let h = parsed.options.first(where: { $0.name == "hostname" || $0.name == "domainname" }) {
            ctx.invalid("\(path(base, h.index)): --\(h.name) conflicts with --uts host (docker refuses both)")
        }
        return out
    }

    /// Checks one parsed option; returns its canonical arguments, or nil when it is refused or
    /// invalid (recorded in `ctx`).
    static func checkOption(_ o: DockerCLI.Option, _ ctx: inout Checks, origin: String, declaredEnv: Set<String>,
                            secrets: inout [String]) -> [String]? {
        let v = o.value
        let shown = "\(o.spelled)" + (o.spelled.contains(v) || DockerCLI.flags[o.name] == .bool ? "" : " \(v)")
        let canonical: [String] = DockerCLI.flags[o.name] == .bool
            ? [o.isTrue ? "--\(o.name)" : "--\(o.name)=false"] : ["--\(o.name)", v]
        if v.contains("\n") || v.contains("\r") || v.contains("\0") {
            ctx.invalid("\(origin): the value of --\(o.name) contains a line break or NUL")
            return nil
        }
        guard allowedOptions.contains(o.name) else {
            switch o.name {
            case "name", "cidfile", "rm", "sig-proxy", "attach":
                ctx.invalid("\(origin): \"\(shown)\" conflicts with what the planner sets (container name, cid file, --rm, -i and the attached stdio)")
            case "restart":
                ctx.invalid("\(origin): \"\(shown)\": a restart policy lets the engine revive the container behind the proxy's back; the proxy restarts servers itself")
            case "label-file":
                ctx.invalid("\(origin): \"\(shown)\" may not set labels from a file (mcpproxy.* labels decide which containers the proxy removes)")
            case "env-file":
                ctx.refuse("\(origin): \"\(shown)\": the environment comes from the server's env in the config, not from a file the docker client reads (it may be a file the proxy's user can read and the server should not)")
            case "help":
                ctx.invalid("\(origin): \"\(shown)\" prints docker's help instead of running the server")
            default:
                ctx.refuse("\(origin): --\(o.name) is not on the allowlist of docker options (docs/docker-isolation.md lists them)")
            }
            return nil
        }
        switch o.name {
        case "tty", "detach":
            if o.isTrue {
                ctx.invalid("\(origin): \"\(shown)\" " + (o.name == "tty" ? "asks for a TTY, which breaks the stdio JSON-RPC stream (\"the input device is not a TTY\")" : "detaches the container; the proxy talks to it over the attached stdio"))
            }
            return nil  // false is docker's default: nothing to plan (and `docker create` has no --detach)
        case "interactive":
            if !o.isTrue { ctx.invalid("\(origin): \"\(shown)\" closes the container's stdin, which carries the JSON-RPC stream"); return nil }
        case "privileged":
            if o.isTrue { ctx.optIn(.privileged, "\(origin): \"\(shown)\" (--privileged)", granted: "the container gets every capability and every host device") }
        case "use-api-socket":
            if o.isTrue {
                ctx.optIn(.dockerSocket, "\(origin): \"\(shown)\" (--use-api-socket) mounts the Docker API socket",
                          granted: "whoever controls the server controls the Docker engine, which is root on the host")
            }
        case "read-only":
            if !o.isTrue { ctx.optIn(.writableRootfs, "\(origin): \"\(shown)\" (--read-only=false)", granted: "the container's root filesystem is writable") }
        case "init":
            if !o.isTrue { ctx.optIn(.noInit, "\(origin): \"\(shown)\" (--init=false)", granted: "the server runs as PID 1, where SIGTERM is ignored unless it installs a handler") }
        case "oom-kill-disable":
            if o.isTrue { ctx.refuse("\(origin): \"\(shown)\": with the OOM killer off, a server at its memory limit hangs instead of being stopped"); return nil }
        case "publish", "publish-all":
            ctx.warnings.append("server \"\(ctx.server)\": \(origin): \"\(shown)\" publishes container ports on the host; the server becomes reachable from the network unless bound to 127.0.0.1")
        case "label":
            if v.lowercased().hasPrefix("mcpproxy.") {
                ctx.invalid("\(origin): \"\(shown)\" may not set mcpproxy.* labels (they decide which containers the proxy removes)")
                return nil
            }
        case "cap-add":
            checkCapAdd(v, &ctx, origin: origin)
        case "cap-drop":
            let c = DockerCLI.normalizeCapability(v)
            if c != "ALL", !DockerCLI.capabilities.contains(String(c.dropFirst(4))) {
                ctx.invalid("\(origin): --cap-drop \"\(v)\" is not a capability docker knows"); return nil
            }
        case "network":
            checkNetwork(v, &ctx, origin: origin)
        case "pid":
            checkNamespace(o.name, v, accepted: [], &ctx, origin: origin)
        case "ipc":
            checkNamespace(o.name, v, accepted: ["none", "private", "shareable"], &ctx, origin: origin)
        case "uts", "userns":
            checkNamespace(o.name, v, accepted: [], &ctx, origin: origin)
        case "cgroupns":
            checkNamespace(o.name, v, accepted: ["private"], &ctx, origin: origin)
        case "security-opt":
            checkSecurityOpt(v, &ctx, origin: origin)
        case "device", "device-cgroup-rule", "gpus":
            ctx.optIn(.devices, "\(origin): --\(o.name) \(v)", granted: "host devices are reachable from the container")
        case "volumes-from":
            ctx.optIn(.broadMount, "\(origin): --volumes-from \(v)", granted: "every mount of another container is shared with this one")
        case "user":
            checkUser(v, &ctx, origin: origin)
        case "group-add":
            checkGroupAdd(v, &ctx, origin: origin)
        case "pids-limit":
            guard let n = DockerCLI.parseGoInt(v) else { ctx.invalid("\(origin): --pids-limit \"\(v)\" is not an integer"); return nil }
            if n <= 0 { ctx.optIn(.noPidsLimit, "\(origin): --pids-limit \(v)", granted: "a fork bomb in the server is not contained") }
        case "memory", "memory-reservation", "shm-size":
            guard let n = DockerCLI.parseBytes(v), n > 0 else { ctx.invalid("\(origin): --\(o.name) \"\(v)\" must be a positive size such as 512m"); return nil }
        case "memory-swap":
            guard let n = DockerCLI.parseBytes(v), n > 0 else { ctx.invalid("\(origin): --memory-swap \"\(v)\" must be a positive size (-1, unlimited swap, is not accepted)"); return nil }
        case "cpus":
            guard let n = DockerCLI.parseNanoCPUs(v), n > 0 else { ctx.invalid("\(origin): --cpus \"\(v)\" must be a positive number of CPUs"); return nil }
        case "cpu-shares", "cpu-period", "cpu-quota", "blkio-weight":
            guard let n = DockerCLI.parseGoInt(v), n > 0 else { ctx.invalid("\(origin): --\(o.name) \"\(v)\" must be a positive integer"); return nil }
        case "memory-swappiness":
            guard let n = DockerCLI.parseGoInt(v), (0...100).contains(n) else { ctx.invalid("\(origin): --memory-swappiness \"\(v)\" must be 0 to 100"); return nil }
        case "oom-score-adj":
            guard let n = DockerCLI.parseGoInt(v), (0...1000).contains(n) else {
                ctx.invalid("\(origin): --oom-score-adj \"\(v)\" must be 0 to 1000 (a negative value shields the server from the OOM killer at the host's expense)"); return nil
            }
        case "cpuset-cpus", "cpuset-mems":
            guard !v.isEmpty, v.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "," || $0 == "-") }) else {
                ctx.invalid("\(origin): --\(o.name) \"\(v)\" must be a list such as 0-1,3"); return nil
            }
        case "ulimit":
            checkUlimit(v, &ctx, origin: origin)
        case "sysctl":
            let key = v.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            guard v.contains("="), sysctlPrefixes.contains(where: { key.hasPrefix($0) }) else {
                ctx.refuse("\(origin): --sysctl \"\(v)\": only namespaced kernel parameters (\(sysctlPrefixes.joined(separator: ", "))) are accepted"); return nil
            }
        case "tmpfs":
            let target = String(v.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0])
            guard target.hasPrefix("/") else { ctx.invalid("\(origin): --tmpfs \"\(v)\": the target must be an absolute path in the container"); return nil }
        case "workdir":
            guard v.hasPrefix("/") else { ctx.invalid("\(origin): --workdir \"\(v)\" must be an absolute path in the container"); return nil }
        case "log-driver":
            if v != "none" {
                ctx.optIn(.containerLogs, "\(origin): --log-driver \(v)", granted: "the daemon's log driver stores the server's stdout (the MCP traffic) on the host")
            }
        case "runtime":
            guard ["runc", "runsc", "io.containerd.runc.v2"].contains(v) else {
                ctx.refuse("\(origin): --runtime \"\(v)\": only runc and runsc (gVisor) are accepted"); return nil
            }
        case "pull":
            guard ["missing", "never", "always"].contains(v) else { ctx.invalid("\(origin): --pull \"\(v)\" must be missing, never or always"); return nil }
        case "storage-opt":
            guard v.hasPrefix("size=") else { ctx.refuse("\(origin): --storage-opt \"\(v)\": only size= is accepted"); return nil }
        case "volume":
            guard let normalized = checkVolume(v, &ctx, origin: origin) else { return nil }
            return ["--volume", normalized]
        case "mount":
            guard let normalized = checkMount(v, &ctx, origin: origin) else { return nil }
            return ["--mount", normalized]
        case "env":
            if let eq = v.firstIndex(of: "=") {
                let name = v[..<eq]
                guard !name.isEmpty else { ctx.invalid("\(origin): --env \"\(v)\" has no name"); return nil }
                let secret = String(v[v.index(after: eq)...])
                if !secret.isEmpty { secrets.append(secret) }
                ctx.warnings.append("server \"\(ctx.server)\": \(origin): \"-e \(name)=...\" puts a value on the docker command line, visible in ps; declare it in the server's env instead")
            } else if !declaredEnv.contains(v) {
                ctx.invalid("\(origin): --env \"\(v)\" copies a variable of the docker client's environment into the container; declare it in the server's env instead")
                return nil
            }
        default:
            break  // plainOptions
        }
        return canonical
    }

    static func checkCapAdd(_ v: String, _ ctx: inout Checks, origin: String) {
        let c = DockerCLI.normalizeCapability(v)
        if c == "ALL" {
            ctx.optIn(.privileged, "\(origin): --cap-add \(v)", granted: "the container gets every capability")
            return
        }
        guard DockerCLI.capabilities.contains(String(c.dropFirst(4))) else {
            ctx.invalid("\(origin): --cap-add \"\(v)\" is not a capability docker knows (one per --cap-add)")
            return
        }
        if safeCapabilities.contains(c) { return }
        switch c {
        case "CAP_SYS_ADMIN": ctx.optIn(.capSysAdmin, "\(origin): --cap-add \(v)", granted: "mount, namespaces and many kernel interfaces: a known container-escape path")
        case "CAP_NET_ADMIN": ctx.optIn(.capNetAdmin, "\(origin): --cap-add \(v)", granted: "the server can reconfigure the container's network and firewall")
        case "CAP_SYS_PTRACE": ctx.optIn(.capSysPtrace, "\(origin): --cap-add \(v)", granted: "the server can trace and inject into processes it can see")
        default:
            ctx.optIn(.extraCapabilities, "\(origin): --cap-add \(v) (\(c) is outside the safe set \(safeCapabilities.sorted().joined(separator: ", ")))",
                      granted: "a capability beyond the container's own files and processes (several are documented escapes: SYS_MODULE, DAC_READ_SEARCH, SYS_RAWIO, BPF, ...)")
        }
    }

    /// Checks a network mode (config `network_mode` or `--network`).
    static func checkNetwork(_ network: String, _ ctx: inout Checks, origin: String) {
        let n = network.lowercased()
        if n == "host" {
            ctx.optIn(.hostNetwork, "\(origin): network \"host\"",
                      granted: "the server shares the host's network stack, including services bound to localhost")
        } else if n.hasPrefix("container:") || n.hasPrefix("ns:") || n.hasPrefix("service:") {
            ctx.refuse("\(origin): network \"\(network)\" joins a namespace outside this container (another container's or a path's)")
        } else if !["none", "bridge", "default"].contains(n) {
            guard let first = network.first, first.isLetter || first.isNumber,
                  network.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }) else {
                ctx.invalid("\(origin): network \"\(network)\" is not none, bridge or a network name")
                return
            }
        }
    }

    /// `--pid`, `--ipc`, `--uts`, `--userns`, `--cgroupns`: `host` needs its allow name, another
    /// container's namespace is refused, the private modes in `accepted` pass.
    static func checkNamespace(_ ns: String, _ v: String, accepted: Set<String>, _ ctx: inout Checks, origin: String) {
        let lv = v.lowercased()
        if lv == "host" {
            switch ns {
            case "pid": ctx.optIn(.hostPID, "\(origin): --pid host", granted: "the server sees and can signal every host process")
            case "ipc": ctx.optIn(.hostIPC, "\(origin): --ipc host", granted: "the server shares the host's shared memory and IPC")
            default: ctx.optIn(.unconfined, "\(origin): --\(ns) host", granted: "a host namespace is shared with the container")
            }
        } else if !accepted.contains(lv) {
            ctx.refuse("\(origin): --\(ns) \"\(v)\": only \(accepted.isEmpty ? "the container's own namespace (leave it out)" : accepted.sorted().joined(separator: ", ")) is accepted; joining another container's or a path's namespace is not")
        }
    }

    static func checkSecurityOpt(_ v: String, _ ctx: inout Checks, origin: String) {
        if v == "no-new-privileges" { return }
        let (key, value) = DockerRunFacts.splitSecurityOpt(v)
        guard let value else { ctx.invalid("\(origin): --security-opt \"\(v)\" is not KEY=VALUE"); return }
        switch key {
        case "no-new-privileges":
            guard let b = DockerCLI.parseBool(value) else { ctx.invalid("\(origin): --security-opt \"\(v)\": not a boolean"); return }
            if !b { ctx.optIn(.newPrivileges, "\(origin): --security-opt \(v)", granted: "setuid binaries in the image can gain privileges") }
        case "seccomp":
            if value == "unconfined" {
                ctx.optIn(.unconfined, "\(origin): --security-opt \(v)", granted: "the seccomp filter of the container is switched off")
            } else if value != "builtin" {
                ctx.optIn(.customSecurityProfile, "\(origin): --security-opt \(v): a custom seccomp profile (read by the docker client from a host file)",
                          granted: "the container runs under a seccomp profile other than docker's default")
            }
        case "apparmor":
            if value == "unconfined" {
                ctx.optIn(.unconfined, "\(origin): --security-opt \(v)", granted: "the AppArmor profile of the container is switched off")
            } else if value != "docker-default" {
                ctx.optIn(.customSecurityProfile, "\(origin): --security-opt \(v): an AppArmor profile other than docker-default",
                          granted: "the container runs under an AppArmor profile other than docker's default")
            }
        case "label":
            if value == "disable" {
                ctx.optIn(.unconfined, "\(origin): --security-opt \(v)", granted: "SELinux labelling of the container is switched off")
            } else {
                ctx.optIn(.customSecurityProfile, "\(origin): --security-opt \(v): a custom SELinux label",
                          granted: "the container runs under an SELinux label other than docker's default")
            }
        case "systempaths":
            if value == "unconfined" {
                ctx.optIn(.unconfined, "\(origin): --security-opt \(v)", granted: "/proc and /sys paths docker masks become visible")
            } else { ctx.invalid("\(origin): --security-opt \"\(v)\": systempaths only takes unconfined") }
        default:
            ctx.refuse("\(origin): --security-opt \"\(v)\" is not on the allowlist (no-new-privileges, seccomp, apparmor, label, systempaths)")
        }
    }

    /// Checks a user (config `user` or `--user`): root in any numeric spelling, an empty part
    /// and malformed names are refused.
    static func checkUser(_ v: String, _ ctx: inout Checks, origin: String) {
        guard let u = DockerCLI.User(v) else {
            ctx.optIn(.imageUser, "\(origin): user \"\(v)\" has an empty part, so the image's user applies (often root)",
                      granted: "the image's own user runs the server")
            return
        }
        let parts = [u.user] + (u.group.map { [$0] } ?? [])
        for p in parts {
            guard p.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.+-".contains($0)) }) else {
                ctx.invalid("\(origin): user \"\(v)\" is not uid[:gid] or name[:group]")
                return
            }
            if let id = DockerCLI.User.numericID(p), id < 0 {
                ctx.invalid("\(origin): user \"\(v)\" has a negative id")
                return
            }
        }
        if u.isRoot {
            ctx.optIn(.rootUser, "\(origin): user \"\(v)\" is root inside the container (uid or gid 0)",
                      granted: "the server runs as root inside the container")
        } else if parts.contains(where: { DockerCLI.User.numericID($0) == nil }) {
            ctx.warnings.append("server \"\(ctx.server)\": \(origin): user \"\(v)\" is a name, resolved in the image's /etc/passwd; prefer a numeric uid:gid (a name cannot be checked for root before the container starts)")
        }
    }

    /// `--group-add`: refused unless `group_add` is allowed; root and docker groups need their
    /// own names even then.
    static func checkGroupAdd(_ v: String, _ ctx: inout Checks, origin: String) {
        if DockerCLI.User.isRootPart(v) {
            ctx.optIn(.rootUser, "\(origin): --group-add \(v) adds the root group", granted: "the server can use files owned by group root")
        } else if v == "docker" {
            ctx.optIn(.dockerSocket, "\(origin): --group-add docker", granted: "membership of the docker group lets a mounted socket control the engine")
        } else {
            ctx.optIn(.groupAdd, "\(origin): --group-add \(v)", granted: "the server gets the rights of an additional group")
        }
    }

    static func checkUlimit(_ v: String, _ ctx: inout Checks, origin: String) {
        let kv = v.split(separator: "=", maxSplits: 1).map(String.init)
        guard kv.count == 2, ulimitNames.contains(kv[0]) else { ctx.invalid("\(origin): --ulimit \"\(v)\" must be NAME=SOFT[:HARD] with a known NAME"); return }
        let lim = kv[1].split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(lim.count), lim.allSatisfy({ Int64($0) != nil }) else {
            ctx.invalid("\(origin): --ulimit \"\(v)\" must be NAME=SOFT[:HARD] with integer limits"); return
        }
    }

    /// Checks and normalizes a `--mount` value (docker's CSV rules): bind sources checked like
    /// volumes, `volume-opt` and volume drivers refused, `readonly` added unless stated.
    static func checkMount(_ value: String, _ ctx: inout Checks, origin: String) -> String? {
        let m: DockerCLI.Mount
        switch DockerCLI.parseMount(value) {
        case .failure(let e): ctx.invalid("\(origin): --mount \"\(value)\": \(e.message)"); return nil
        case .success(let parsed): m = parsed
        }
        var fields = m.fields
        let known: Set<String> = ["type", "source", "src", "target", "dst", "destination", "readonly", "ro", "bind-propagation",
                                  "bind-nonrecursive", "bind-recursive", "consistency", "volume-nocopy", "volume-label",
                                  "volume-subpath", "tmpfs-size", "tmpfs-mode", "volume-opt", "volume-driver"]
        for f in fields where !known.contains(f.key) {
            ctx.invalid("\(origin): --mount key \"\(f.key)\" is not one docker accepts for bind, volume or tmpfs mounts"); return nil
        }
        for f in fields where f.key == "volume-opt" {
            ctx.refuse("\(origin): --mount volume-opt=\(f.value ?? "") is refused: volume options (device=, o=bind, type=) can bind any host path past the mount checks")
            return nil
        }
        if let d = m.value("volume-driver"), d != "local" {
            ctx.refuse("\(origin): --mount volume-driver=\(d ?? "") is refused: only the local driver")
            return nil
        }
        if let p = m.value("bind-propagation") ?? nil, !["private", "rprivate", "slave", "rslave"].contains(p) {
            ctx.refuse("\(origin): --mount bind-propagation=\(p): shared propagation lets mounts cross between the container and the host")
            return nil
        }
        if let r = m.value("bind-recursive") ?? nil, r == "writable" {
            ctx.refuse("\(origin): --mount bind-recursive=writable makes read-only submounts of the source writable")
            return nil
        }
        if let sub = m.value("volume-subpath") ?? nil, sub.split(separator: "/").contains("..") || sub.hasPrefix("/") {
            ctx.invalid("\(origin): --mount volume-subpath=\(sub) must be relative, without ..")
            return nil
        }
        guard let target = m.target, target.hasPrefix("/") else {
            ctx.invalid("\(origin): --mount \"\(value)\" needs an absolute target"); return nil
        }
        guard let ro = m.readOnly else { ctx.invalid("\(origin): --mount \"\(value)\": readonly is not a boolean"); return nil }
        switch m.type {
        case "bind":
            guard let src = m.source, !src.isEmpty else { ctx.invalid("\(origin): mount \"\(value)\" has an empty source"); return nil }
            guard let checked = checkHostSource(src, &ctx, origin: origin) else { return nil }
            for i in fields.indices where ["source", "src"].contains(fields[i].key) { fields[i].value = checked }
        case "volume":
            if let src = m.source, !src.isEmpty, !isVolumeName(src) {
                ctx.invalid("\(origin): --mount source \"\(src)\" of a volume mount must be a volume name"); return nil
            }
        case "tmpfs":
            if m.source != nil { ctx.invalid("\(origin): a tmpfs --mount takes no source"); return nil }
        default:
            ctx.refuse("\(origin): --mount type=\(m.type) is refused (bind, volume and tmpfs are accepted)")
            return nil
        }
        if m.type != "tmpfs" {
            if m.value("readonly", "ro") == nil {
                fields.append((key: "readonly", value: "true"))
            } else if !ro {
                ctx.warnings.append("server \"\(ctx.server)\": \(origin): mount \"\(value)\" is read-write")
            }
        }
        return DockerCLI.Mount(fields: fields).rendered
    }
}
