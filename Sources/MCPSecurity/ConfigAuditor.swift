import Foundation
import ProxyCore

/// One misconfiguration found by `mcpproxy audit`.
public struct AuditFinding: Sendable, Codable, Equatable {
    /// `high` fails `mcpproxy audit` (non-zero exit); `medium` and `low` are reported.
    public enum Severity: String, Sendable, Codable, Equatable, Comparable {
        case low, medium, high
        public static func < (a: Severity, b: Severity) -> Bool {
            let order: [Severity] = [.low, .medium, .high]
            return order.firstIndex(of: a)! < order.firstIndex(of: b)!
        }
    }

    public var server: String
    /// A stable rule identifier (see docs/security.md).
    public var ruleID: String
    public var severity: Severity
    /// The offending setting, quoted from the config.
    public var evidence: String
    /// Why it matters.
    public var why: String
    /// What to change.
    public var fix: String

    enum CodingKeys: String, CodingKey { case server, ruleID = "rule_id", severity, evidence, why, fix }
}

/// The result of auditing a config.
public struct AuditReport: Sendable, Codable, Equatable {
    public var findings: [AuditFinding]
    /// Servers whose image user could not be checked (no Docker, or the image is not present).
    public var unverifiedImages: [String]

    /// True when a finding is high: `mcpproxy audit` exits non-zero.
    public var hasHigh: Bool { findings.contains { $0.severity == .high } }

    enum CodingKeys: String, CodingKey { case findings, unverifiedImages = "unverified_images" }
}

/// Checks a config for container misconfigurations (seed 003: root user, privileged, Docker
/// socket mount, broad volume mounts, no resource limits) plus host network or namespaces,
/// dangerous added capabilities, unconfined security options, and package runners (npx, uvx, ...)
/// that fetch remote code while running unisolated. Pure: the image-user lookup is injected.
public struct ConfigAuditor: Sendable {
    /// Returns the `User` an image is configured with ("" means root by default), or nil when it
    /// cannot be determined (no Docker engine, image not present).
    public typealias ImageUserLookup = @Sendable (String) -> String?

    let imageUser: ImageUserLookup
    /// The home directory used to recognise broad mounts.
    let home: String

    public init(home: String = NSHomeDirectory(), imageUser: @escaping ImageUserLookup = { _ in nil }) {
        self.home = home.hasSuffix("/") && home.count > 1 ? String(home.dropLast()) : home
        self.imageUser = imageUser
    }

    /// Audits every server of `config`.
    public func audit(_ config: ProxyConfig) -> AuditReport {
        var findings: [AuditFinding] = []
        var unverified: [String] = []
        for server in config.servers {
            findings += audit(server, config: config, unverified: &unverified)
        }
        return AuditReport(findings: findings, unverifiedImages: unverified)
    }

    func audit(_ server: ServerConfig, config: ProxyConfig, unverified: inout [String]) -> [AuditFinding] {
        var out: [AuditFinding] = []
        let decision = IsolationResolver.resolve(server, global: config.dockerIsolation)
        func add(_ rule: String, _ severity: AuditFinding.Severity, _ evidence: String, _ why: String, _ fix: String) {
            out.append(AuditFinding(server: server.name, ruleID: rule, severity: severity, evidence: evidence, why: why, fix: fix))
        }
        let iso = server.isolation ?? ServerIsolationConfig()

        // A server whose command is itself `docker run ...`: the proxy does not wrap it, so its own
        // arguments decide the container's confinement.
        if let command = server.command, IsolationResolver.isDockerCommand(command) {
            let run = DockerRunArgs(server.args)
            if run.isRun {
                checkRunFlags(run, add: add, sourceName: "args")
                if let user = run.user {
                    if ConfigAuditor.isRoot(user) { add(Rules.rootUser, .high, "args: --user \(user)", Rules.rootWhy, Rules.rootFixArgs) }
                } else if let image = run.image {
                    switch imageUser(image) {
                    case nil:
                        unverified.append("\(server.name): \(image)")
                        add(Rules.rootUser, .medium, "args: no --user; the user of image \(image) could not be checked",
                            Rules.rootWhy + " Without --user the image's USER applies, and many images run as root.",
                            "add \"--user\", \"65534:65534\" (or the image's unprivileged uid) to args, or run mcpproxy audit where Docker can inspect the image")
                    case let u? where ConfigAuditor.isRoot(u):
                        add(Rules.rootUser, .high, "args: no --user and image \(image) runs as \(u.isEmpty ? "root (no USER)" : u)",
                            Rules.rootWhy, Rules.rootFixArgs)
                    default: break
                    }
                }
                if run.memory == nil || run.cpus == nil || run.pids == nil {
                    let missing = [run.memory == nil ? "--memory" : nil, run.cpus == nil ? "--cpus" : nil,
                                   run.pids == nil ? "--pids-limit" : nil].compactMap { $0 }
                    add(Rules.noLimits, .medium, "args: no \(missing.joined(separator: ", "))", Rules.limitsWhy,
                        "add \(missing.map { "\"\($0)\", \"\(Rules.limitDefault($0))\"" }.joined(separator: ", ")) to args")
                }
                for (flag, value) in [("--memory", run.memory), ("--cpus", run.cpus), ("--pids-limit", run.pids)] {
                    if let value, Rules.isUnlimited(value) {
                        add(Rules.noLimits, .medium, "args: \(flag) \(value)", Rules.limitsWhy, "set \(flag) to a bound such as \(Rules.limitDefault(flag))")
                    }
                }
            }
            return out
        }

        switch decision.mode {
        case .docker:
            let user = iso.user ?? config.dockerIsolation.user
            let userField = iso.user != nil ? "isolation.user" : "docker_isolation.user"
            if user.trimmingCharacters(in: .whitespaces).isEmpty {
                let image = iso.image ?? ""
                let looked = image.isEmpty ? nil : imageUser(image)
                if let u = looked, !ConfigAuditor.isRoot(u) {
                    // The image runs as a non-root user: fine.
                } else {
                    if looked == nil { unverified.append("\(server.name): \(image.isEmpty ? "(default image)" : image)") }
                    add(Rules.rootUser, looked == nil ? .medium : .high, "\(userField): \"\" (the image's USER applies)", Rules.rootWhy,
                        "set \(userField) to an unprivileged uid:gid such as \"65534:65534\"")
                }
            } else if ConfigAuditor.isRoot(user) {
                add(Rules.rootUser, .high, "\(userField): \"\(user)\"", Rules.rootWhy,
                    "set \(userField) to an unprivileged uid:gid such as \"65534:65534\" (the default)")
            }
            let extra = config.dockerIsolation.extraArgs + (iso.extraArgs ?? [])
            let extraRun = DockerRunArgs(flagsOnly: extra)
            checkRunFlags(extraRun, add: add, sourceName: "extra_args")
            for (flag, value) in [("--memory", extraRun.memory), ("--cpus", extraRun.cpus), ("--pids-limit", extraRun.pids)] {
                if let value, Rules.isUnlimited(value) {
                    add(Rules.noLimits, .medium, "extra_args: \(flag) \(value)", Rules.limitsWhy,
                        "remove \(flag) \(value) from extra_args; memory_limit and cpu_limit then apply")
                }
            }
            for allowance in iso.allow {
                switch allowance {
                case "privileged":
                    add(Rules.privileged, .high, "isolation.allow: \"privileged\"", Rules.privilegedWhy, "remove \"privileged\" from isolation.allow")
                case "docker_socket":
                    add(Rules.dockerSocket, .high, "isolation.allow: \"docker_socket\"", Rules.socketWhy, "remove \"docker_socket\" from isolation.allow")
                case "host_network":
                    add(Rules.hostNetwork, .high, "isolation.allow: \"host_network\"", Rules.hostNetworkWhy, "remove \"host_network\" from isolation.allow")
                case "writable_rootfs":
                    add(Rules.writableRootfs, .low, "isolation.allow: \"writable_rootfs\"",
                        "a writable root file system lets a compromised server modify its own binaries and persist changes for the container's life",
                        "remove \"writable_rootfs\" and mount a narrow writable volume or tmpfs where the server must write")
                default: break
                }
            }
            for volume in iso.volumes ?? [] {
                checkMount(MountSpec(volume: volume), evidence: "isolation.volumes: \"\(volume)\"", add: add)
            }
            let network = iso.networkMode ?? config.dockerIsolation.networkMode
            if network.lowercased() == "host" {
                add(Rules.hostNetwork, .high, "\(iso.networkMode != nil ? "isolation.network_mode" : "docker_isolation.network_mode"): \"host\"",
                    Rules.hostNetworkWhy, "use \"bridge\" (the default) or \"none\" when the server needs no network")
            }
        case .sandbox:
            for path in (iso.writePaths ?? []) + config.sandbox.writePaths {
                if let why = broadness(expand(path)) {
                    add(Rules.broadWrite, .high, "write_paths: \"\(path)\"", "the sandbox lets the server write \(why); a prompt-injected server could then change anything there (shell profiles, SSH keys, other projects)",
                        "allow writing only the directory the server works in, e.g. a project subdirectory")
                }
            }
            for path in (iso.readPaths ?? []) + config.sandbox.readPaths where isSecretPath(expand(path)) {
                add(Rules.broadMount, .medium, "read_paths: \"\(path)\"", "the sandbox lets the server read a secret-bearing directory",
                    "remove it from read_paths unless this server exists to use those credentials")
            }
        case .none:
            if server.effectiveProtocol == .stdio, let command = server.command, let runner = ConfigAuditor.packageRunner(command, server.args) {
                add(Rules.packageRunner, .high, "command: \(([command] + server.args.prefix(3)).joined(separator: " ")) with isolation none (\(decision.reason))",
                    "\(runner) downloads and runs the latest published code of a package at every start, with all of your user's rights and environment: a compromised or typo-squatted package runs unconfined",
                    "set \"isolation\": {\"mode\": \"docker\"} (or \"sandbox\") for this server, or docker_isolation.mode globally, and pin the package version")
            }
        }
        return out
    }

    /// Checks flags common to `docker run` args and `extra_args`.
    private func checkRunFlags(_ run: DockerRunArgs, add: (String, AuditFinding.Severity, String, String, String) -> Void, sourceName: String) {
        if run.privileged {
            add(Rules.privileged, .high, "\(sourceName): --privileged", Rules.privilegedWhy, "remove --privileged; add only the specific capability or device the server needs")
        }
        for (ns, value) in run.hostNamespaces {
            if ns == "network" {
                add(Rules.hostNetwork, .high, "\(sourceName): --network \(value)", Rules.hostNetworkWhy, "remove it (the default bridge network) or use --network none")
            } else {
                add(Rules.hostNamespace, .high, "\(sourceName): --\(ns) \(value)",
                    "sharing the host's \(ns) namespace lets the container see or signal host processes and weakens isolation",
                    "remove --\(ns) \(value)")
            }
        }
        for cap in run.capAdd {
            let c = cap.uppercased().replacingOccurrences(of: "CAP_", with: "")
            if let severity = Rules.dangerousCaps[c] {
                add(Rules.capAdd, severity, "\(sourceName): --cap-add \(cap)",
                    "capability \(c) gives the container powers over the host kernel or other processes that a tool server does not need; several are documented container escapes",
                    "remove --cap-add \(cap)")
            }
        }
        for opt in run.securityOpts where opt.lowercased().contains("unconfined") || opt.lowercased().hasPrefix("label=disable") {
            add(Rules.unconfined, .high, "\(sourceName): --security-opt \(opt)",
                "it switches off the seccomp/AppArmor/SELinux profile that blocks dangerous system calls",
                "remove --security-opt \(opt)")
        }
        for device in run.devices {
            add(Rules.device, .medium, "\(sourceName): --device \(device)", "a host device inside the container is reachable by a compromised server",
                "remove --device unless the server exists to use that device")
        }
        for spec in run.mounts {
            checkMount(spec, evidence: "\(sourceName): \(spec.flag) \(spec.raw)", add: add)
        }
    }

    private func checkMount(_ spec: MountSpec, evidence: String, add: (String, AuditFinding.Severity, String, String, String) -> Void) {
        guard let source = spec.source else { return }
        let path = expand(source)
        if ConfigAuditor.isDockerSocket(path) {
            add(Rules.dockerSocket, .high, evidence, Rules.socketWhy, "remove the mount; a tool server should not control the Docker engine")
            return
        }
        if let why = broadness(path) {
            add(Rules.broadMount, .high, evidence, "it mounts \(why) into the container\(spec.readOnly ? "" : " read-write"); a prompt-injected server can reach everything your user can there",
                "mount only the directory the server needs\(spec.readOnly ? "" : ", read-only (\":ro\") unless it must write")")
        } else if isSecretPath(path) {
            add(Rules.broadMount, .high, evidence, "it mounts a secret-bearing directory (keys or credentials) into the container",
                "remove the mount, or pass the one credential the server needs as an environment variable")
        } else if !spec.readOnly && spec.isBind {
            add(Rules.rwMount, .low, evidence, "the mount is read-write; if the server only reads there, a compromise could still modify the files",
                "append \":ro\" unless the server must write there")
        }
    }

    // MARK: Classification

    /// `/`, the home directory, any parent of it, or a system directory: why the path is broad.
    func broadness(_ path: String) -> String? {
        let p = normalize(path)
        if p == "/" { return "the host's whole file system (/)" }
        if p == home { return "your whole home directory (\(p))" }
        if home.hasPrefix(p + "/") { return "\(p), a parent of your home directory" }
        if ["/home", "/Users", "/root"].contains(p) { return "all home directories (\(p))" }
        if ["/etc", "/var", "/usr", "/bin", "/sbin", "/lib", "/boot", "/proc", "/sys", "/dev", "/run", "/opt"].contains(p) {
            return "the system directory \(p)"
        }
        return nil
    }

    func isSecretPath(_ path: String) -> Bool {
        let p = normalize(path)
        let secrets = [".ssh", ".aws", ".gnupg", ".kube", ".docker", ".config/gcloud", ".azure", ".password-store", ".netrc", ".git-credentials"]
        return secrets.contains { p == "\(home)/\($0)" || p.hasPrefix("\(home)/\($0)/") || p.hasSuffix("/\($0)") }
    }

    func expand(_ path: String) -> String {
        var p = path
        for prefix in ["~", "$HOME", "${HOME}"] where p == prefix || p.hasPrefix(prefix + "/") {
            p = home + p.dropFirst(prefix.count)
            break
        }
        return p
    }

    func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for c in path.split(separator: "/") {
            if c == "." || c.isEmpty { continue }
            if c == ".." { _ = parts.popLast(); continue }
            parts.append(c)
        }
        return "/" + parts.joined(separator: "/")
    }

    static func isRoot(_ user: String) -> Bool {
        let u = user.trimmingCharacters(in: .whitespaces)
        let name = u.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        return u.isEmpty || name == "0" || name == "root"
    }

    static func isDockerSocket(_ path: String) -> Bool {
        let base = (path as NSString).lastPathComponent
        return ["docker.sock", "podman.sock", "containerd.sock", "crio.sock"].contains(base)
    }

    /// The package runner `command` uses to fetch remote code, if any.
    static func packageRunner(_ command: String, _ args: [String]) -> String? {
        let base = (command as NSString).lastPathComponent.lowercased()
        let first = args.first?.lowercased() ?? ""
        switch base {
        case "npx", "uvx", "pipx", "bunx", "pnpx": return base
        case "pnpm", "yarn": return first == "dlx" ? "\(base) dlx" : nil
        case "npm": return first == "exec" || first == "x" ? "npm \(first)" : nil
        case "bun": return first == "x" ? "bun x" : nil
        case "uv": return first == "tool" && args.dropFirst().first == "run" ? "uv tool run" : (first == "run" && args.contains("--with") ? "uv run --with" : nil)
        case "deno": return args.contains { $0.hasPrefix("http://") || $0.hasPrefix("https://") || $0.hasPrefix("npm:") || $0.hasPrefix("jsr:") } ? "deno" : nil
        default: return nil
        }
    }
}

/// Rule identifiers and texts of the audit.
enum Rules {
    static let rootUser = "root-user"
    static let privileged = "privileged"
    static let dockerSocket = "docker-socket"
    static let broadMount = "broad-mount"
    static let rwMount = "rw-mount"
    static let noLimits = "no-resource-limits"
    static let hostNetwork = "host-network"
    static let hostNamespace = "host-namespace"
    static let capAdd = "dangerous-cap-add"
    static let unconfined = "unconfined-security-opt"
    static let device = "host-device"
    static let packageRunner = "package-runner-unisolated"
    static let writableRootfs = "writable-rootfs"
    static let broadWrite = "sandbox-broad-write"

    static let rootWhy = "a process running as root in the container is one kernel bug or misconfiguration away from root on the host."
    static let rootFixArgs = "add \"--user\", \"65534:65534\" (or the image's unprivileged uid) to args"
    static let privilegedWhy = "--privileged switches off nearly all container isolation: every host device, kernel parameters, and mounting the host file system"
    static let socketWhy = "access to the Docker socket is root on the host: the server can start a container that mounts / and escape"
    static let hostNetworkWhy = "the host network namespace exposes every service listening on the host's loopback interface and removes network isolation"
    static let limitsWhy = "without CPU, memory and process limits a looping or prompt-injected server can exhaust the host"

    static let dangerousCaps: [String: AuditFinding.Severity] = [
        "ALL": .high, "SYS_ADMIN": .high, "SYS_MODULE": .high, "SYS_PTRACE": .high, "SYS_RAWIO": .high,
        "DAC_READ_SEARCH": .high, "DAC_OVERRIDE": .high, "NET_ADMIN": .high, "BPF": .high, "PERFMON": .medium,
        "SYS_BOOT": .high, "SYS_TIME": .medium, "MKNOD": .medium, "NET_RAW": .medium, "SETUID": .medium,
        "SETGID": .medium, "SETFCAP": .medium, "SYS_CHROOT": .medium, "LINUX_IMMUTABLE": .medium, "MAC_ADMIN": .high,
        "MAC_OVERRIDE": .high, "SYSLOG": .medium, "AUDIT_CONTROL": .medium, "WAKE_ALARM": .low, "BLOCK_SUSPEND": .low,
    ]

    static func isUnlimited(_ value: String) -> Bool {
        let v = value.trimmingCharacters(in: .whitespaces)
        return v == "0" || v == "-1" || v == "0b" || v == "0m" || v == "0.0" || v.isEmpty
    }

    static func limitDefault(_ flag: String) -> String {
        switch flag {
        case "--memory": return "512m"
        case "--cpus": return "1"
        default: return "256"
        }
    }
}

/// A volume or mount specification.
struct MountSpec {
    var raw: String
    /// The docker flag the spec came with, for evidence.
    var flag = "-v"
    var source: String?
    var readOnly: Bool
    var isBind: Bool

    /// `-v SRC:DST[:OPTS]` form.
    init(volume: String) {
        raw = volume
        let parts = volume.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if parts.count >= 2 {
            source = parts[0]
            let opts = parts.count >= 3 ? parts[2].split(separator: ",").map(String.init) : []
            readOnly = opts.contains("ro") || opts.contains("readonly")
        } else {
            source = nil  // an anonymous volume
            readOnly = false
        }
        // A named volume (no slash, no ~) is not a host path.
        isBind = source.map { $0.hasPrefix("/") || $0.hasPrefix("~") || $0.hasPrefix("$") || $0.hasPrefix(".") } ?? false
        if !isBind { source = nil }
    }

    /// `--mount type=bind,source=...,target=...,readonly` form.
    init(mount: String) {
        raw = mount
        flag = "--mount"
        var kv: [String: String] = [:]
        var flags = Set<String>()
        for item in mount.split(separator: ",") {
            let p = item.split(separator: "=", maxSplits: 1).map(String.init)
            if p.count == 2 { kv[p[0].lowercased()] = p[1] } else { flags.insert(p[0].lowercased()) }
        }
        let type = kv["type"] ?? "volume"
        isBind = type == "bind"
        source = isBind ? (kv["source"] ?? kv["src"]) : nil
        readOnly = flags.contains("readonly") || flags.contains("ro") || kv["readonly"] == "true" || kv["ro"] == "true"
    }
}

/// The security-relevant parts of `docker run` arguments.
struct DockerRunArgs {
    var isRun = false
    var image: String?
    var privileged = false
    var user: String?
    var memory: String?
    var cpus: String?
    var pids: String?
    var capAdd: [String] = []
    var securityOpts: [String] = []
    var devices: [String] = []
    var mounts: [MountSpec] = []
    /// (namespace, value) for `--network host`, `--pid host`, ...
    var hostNamespaces: [(String, String)] = []

    /// Flags of `docker run` that take a value (so the image can be found after them).
    static let valueFlags: Set<String> = [
        "-v", "--volume", "--mount", "-e", "--env", "--env-file", "-u", "--user", "-m", "--memory", "--cpus", "--network", "--net",
        "--name", "-w", "--workdir", "--cap-add", "--cap-drop", "--security-opt", "--device", "-p", "--publish", "--label", "-l",
        "--entrypoint", "--pid", "--ipc", "--uts", "--userns", "--pids-limit", "--tmpfs", "--add-host", "--platform", "--restart",
        "--memory-swap", "--shm-size", "--ulimit", "--hostname", "-h", "--log-driver", "--log-opt", "--runtime", "--gpus",
        "--group-add", "--cgroupns", "--cpu-shares", "-c", "--cpuset-cpus", "--dns", "--volumes-from", "--network-alias",
        "--memory-reservation", "--stop-signal", "--stop-timeout", "--health-cmd", "--cidfile", "--pull", "--expose", "--link",
    ]

    /// Parses `docker [container] run ...` arguments.
    init(_ args: [String]) {
        var rest = args[...]
        while let first = rest.first, first.hasPrefix("-") { rest = rest.dropFirst() }  // global flags like --context
        if rest.first == "container" { rest = rest.dropFirst() }
        guard rest.first == "run" || rest.first == "create" else { return }
        isRun = true
        parse(Array(rest.dropFirst()), stopAtImage: true)
    }

    /// Parses flags only (`extra_args`).
    init(flagsOnly args: [String]) {
        parse(args, stopAtImage: false)
    }

    private mutating func parse(_ args: [String], stopAtImage: Bool) {
        var i = 0
        while i < args.count {
            let a = args[i]
            if a == "--" { i += 1; if stopAtImage, i < args.count { image = args[i] }; return }
            guard a.hasPrefix("-"), a.count > 1 else {
                if stopAtImage { image = a; return }
                i += 1; continue
            }
            var flag = a, value: String? = nil
            if a.hasPrefix("--"), let eq = a.firstIndex(of: "=") {
                flag = String(a[..<eq]); value = String(a[a.index(after: eq)...])
            } else if !a.hasPrefix("--"), a.count > 2, DockerRunArgs.valueFlags.contains(String(a.prefix(2))) {
                flag = String(a.prefix(2)); value = String(a.dropFirst(2))  // -v/src:/dst, -m512m
            } else if DockerRunArgs.valueFlags.contains(a) {
                value = i + 1 < args.count ? args[i + 1] : nil
                i += 1
            }
            i += 1
            apply(flag, value)
        }
    }

    private mutating func apply(_ flag: String, _ value: String?) {
        switch flag {
        case "--privileged": privileged = value.map { $0 != "false" } ?? true
        case "-u", "--user": user = value
        case "-m", "--memory": memory = value
        case "--cpus": cpus = value
        case "--pids-limit": pids = value
        case "--cap-add": if let value { capAdd += value.split(separator: ",").map(String.init) }
        case "--security-opt": if let value { securityOpts.append(value) }
        case "--device": if let value { devices.append(value) }
        case "-v", "--volume": if let value { mounts.append(MountSpec(volume: value)) }
        case "--mount": if let value { mounts.append(MountSpec(mount: value)) }
        case "--network", "--net":
            if let value, value.lowercased() == "host" { hostNamespaces.append(("network", value)) }
        case "--pid", "--ipc", "--uts", "--userns", "--cgroupns":
            if let value, value.lowercased() == "host" { hostNamespaces.append((String(flag.dropFirst(2)), value)) }
        default: break
        }
    }
}
