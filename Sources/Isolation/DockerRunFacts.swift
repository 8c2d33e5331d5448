import Foundation

/// What a `docker run` command line asks the engine for, folded from the parsed options with
/// docker's rules (the last occurrence of a scalar flag wins, list flags accumulate, capability
/// lists normalized as the CLI does). The planner states its beliefs about a container in these
/// terms, and the real-engine differential test compares them with `docker inspect`.
public struct DockerRunFacts: Sendable, Equatable {
    /// A `--mount`, reduced to what the engine stores.
    public struct MountFact: Sendable, Equatable, Hashable {
        public var type: String
        public var source: String
        public var target: String
        public var readOnly: Bool
    }

    public var image: String?
    /// `--user` (last wins); nil: the image's user.
    public var user: String?
    /// `--cap-add` / `--cap-drop` as the engine stores them (normalized, deduplicated).
    public var capAdd: [String] = []
    public var capDrop: [String] = []
    public var privileged = false
    public var readOnlyRootfs = false
    public var initProcess: Bool?
    /// `--network` values in order (docker 28 accepts several; one is normal).
    public var networks: [String] = []
    public var pidMode: String?
    public var ipcMode: String?
    public var utsMode: String?
    public var usernsMode: String?
    public var cgroupnsMode: String?
    /// `--security-opt` values in order.
    public var securityOpts: [String] = []
    public var pidsLimit: Int64?
    public var memory: Int64?
    public var memorySwap: Int64?
    public var nanoCPUs: Int64?
    /// `-v SOURCE:TARGET[:OPTIONS]` specs in order (docker stores them unordered).
    public var binds: [String] = []
    /// `-v TARGET` (an anonymous volume: docker lists it under Config.Volumes, not Binds).
    public var anonymousVolumes: [String] = []
    public var mounts: [MountFact] = []
    /// `--tmpfs` path → options.
    public var tmpfs: [String: String] = [:]
    public var groupAdd: [String] = []
    public var logDriver: String?
    public var devices: [String] = []
    /// `--ulimit` name → "soft:hard" (last per name wins).
    public var ulimits: [String: String] = [:]
    public var workdir: String?
    /// `--env` values (NAME or NAME=VALUE) in order.
    public var env: [String] = []
    public var volumesFrom: [String] = []
    public var useAPISocket = false

    public init() {}

    /// Folds `parsed` (a `docker run` argument list, image included).
    public init(_ parsed: DockerCLI.Parsed) {
        var add: [String] = [], drop: [String] = []
        for o in parsed.options {
            let v = o.value
            switch o.name {
            case "user": user = v
            case "cap-add": add.append(v)
            case "cap-drop": drop.append(v)
            case "privileged": privileged = o.isTrue
            case "read-only": readOnlyRootfs = o.isTrue
            case "init": initProcess = o.isTrue
            case "network": networks.append(v)
            case "pid": pidMode = v
            case "ipc": ipcMode = v
            case "uts": utsMode = v
            case "userns": usernsMode = v
            case "cgroupns": cgroupnsMode = v
            case "security-opt": securityOpts.append(v)
            case "pids-limit": pidsLimit = DockerCLI.parseGoInt(v)
            case "memory": memory = DockerCLI.parseBytes(v)
            case "memory-swap": memorySwap = v == "-1" ? -1 : DockerCLI.parseBytes(v)
            case "cpus": nanoCPUs = DockerCLI.parseNanoCPUs(v)
            case "volume": if v.contains(":") { binds.append(v) } else { anonymousVolumes.append(v) }
            case "mount":
                if case .success(let m) = DockerCLI.parseMount(v) {
                    mounts.append(MountFact(type: m.type, source: m.source ?? "", target: m.target ?? "", readOnly: m.readOnly ?? false))
                }
            case "tmpfs":
                let parts = v.split(separator: ":", maxSplits: 1).map(String.init)
                if let p = parts.first { tmpfs[p] = parts.count > 1 ? parts[1] : "" }
            case "group-add": groupAdd.append(v)
            case "log-driver": logDriver = v
            case "device": devices.append(v)
            case "ulimit":
                let kv = v.split(separator: "=", maxSplits: 1).map(String.init)
                if kv.count == 2 {
                    let lim = kv[1].split(separator: ":", maxSplits: 1).map(String.init)
                    ulimits[kv[0]] = lim.count == 2 ? "\(lim[0]):\(lim[1])" : "\(lim[0]):\(lim[0])"
                }
            case "workdir": workdir = v
            case "env": env.append(v)
            case "volumes-from": volumesFrom.append(v)
            case "use-api-socket": useAPISocket = o.isTrue
            default: break
            }
        }
        capAdd = DockerCLI.normalizedCapabilities(add)
        capDrop = DockerCLI.normalizedCapabilities(drop)
        image = parsed.positionals.first?.value
    }

    /// Parses a full `docker run ...` argv (starting at `run`) and folds it.
    public static func of(runArguments args: [String]) -> DockerRunFacts {
        var rest = args[...]
        if rest.first == "run" || rest.first == "create" { rest = rest.dropFirst() }
        return DockerRunFacts(DockerCLI.parse(Array(rest)))
    }

    /// True when `no-new-privileges` is in force: the last `no-new-privileges[=|:]BOOL` wins.
    public var noNewPrivileges: Bool {
        var on = false
        for opt in securityOpts {
            if opt == "no-new-privileges" { on = true; continue }
            let (k, v) = DockerRunFacts.splitSecurityOpt(opt)
            if k == "no-new-privileges", let v, let b = DockerCLI.parseBool(v) { on = b }
        }
        return on
    }

    /// A `--security-opt` split as the daemon splits it (`=`, else the legacy `:`).
    public static func splitSecurityOpt(_ opt: String) -> (String, String?) {
        if let eq = opt.firstIndex(of: "=") { return (String(opt[..<eq]), String(opt[opt.index(after: eq)...])) }
        if let colon = opt.firstIndex(of: ":") { return (String(opt[..<colon]), String(opt[opt.index(after: colon)...])) }
        return (opt, nil)
    }

    /// The capabilities the container's processes get, resolved as the engine does when the
    /// container starts (moby `TweakCapabilities`): privileged or an added `ALL` → every
    /// capability (minus the dropped ones for `ALL`); a dropped `ALL` → exactly the added ones;
    /// otherwise docker's defaults minus the dropped plus the added. `ALL` stands for every one.
    public var effectiveCapabilitySet: Set<String> {
        let all = Set(DockerCLI.capabilities.map { "CAP_" + $0 })
        if privileged { return all }
        if capAdd.contains("ALL") { return all.subtracting(capDrop) }
        if capDrop.contains("ALL") { return Set(capAdd) }
        return DockerRunFacts.dockerDefaultCapabilities.subtracting(capDrop).union(capAdd)
    }

    /// The security options as the engine records them: the given ones, plus `label=disable`,
    /// which the daemon adds for a privileged container or one in the host's pid or IPC
    /// namespace (SELinux labels cannot apply there).
    public var recordedSecurityOpts: [String] {
        let lower = { (s: String?) in s?.lowercased() }
        if (privileged || lower(pidMode) == "host" || lower(ipcMode) == "host") && !securityOpts.contains("label=disable") {
            return securityOpts + ["label=disable"]
        }
        return securityOpts
    }

    /// The mounts as the engine records them: `--use-api-socket` adds a bind of the engine's
    /// socket (the default `/var/run/docker.sock`) at the same path.
    public var recordedMounts: [MountFact] {
        useAPISocket ? mounts + [MountFact(type: "bind", source: "/var/run/docker.sock", target: "/var/run/docker.sock", readOnly: false)] : mounts
    }

    /// Docker's default capability set (moby `caps.DefaultCapabilities`).
    public static let dockerDefaultCapabilities: Set<String> = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ]
}
