import Foundation
import Isolation
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
    /// The proxy's data directory (a mount of it is broad); default `HOME/.mcpproxy`.
    let dataDir: String

    public init(home: String = NSHomeDirectory(), dataDir: String? = nil, imageUser: @escaping ImageUserLookup = { _ in nil }) {
        self.home = home.hasSuffix("/") && home.count > 1 ? String(home.dropLast()) : home
        self.dataDir = dataDir ?? (self.home + "/.mcpproxy")
        self.imageUser = imageUser
    }

    /// The launch context the docker rules are reviewed in (nothing is launched).
    var reviewContext: LaunchContext {
        LaunchContext(dataDir: dataDir, instanceID: "audit", proxyPID: getpid(), hostEnvironment: ProcessSettings.current.environment,
                      sandboxLauncher: nil, runtimeDir: dataDir + "/run", homeDir: home, launchID: "audit")
    }

    /// Findings for what the docker rules (`DockerPlanner`, the one docker option parser and
    /// allowlist) refuse or reject in a server's config: each names its JSON path and the
    /// `allow` entry that would lift it.
    func reviewFindings(_ review: DockerPlanner.Review, add: (String, AuditFinding.Severity, String, String, String) -> Void,
                        skipAllow: Set<String> = []) {
        for r in review.refusals where !skipAllow.contains(r.allow ?? "") {
            let (rule, severity) = Rules.forAllow(r.allow)
            add(rule, severity, r.message, "the proxy refuses to start this server in docker mode: the option weakens or escapes the container",
                r.allow.map { "remove the option; only if it is really needed, add \"\($0)\" to isolation.allow" } ?? "remove the option (no allow entry lifts this refusal)")
        }
        for message in review.invalids {
            add(Rules.dockerConfigInvalid, .high, message, "the proxy rejects this docker setting as a config error, so the server does not start",
                "correct the setting as the message says")
        }
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
                var review = DockerPlanner.reviewRunOptions(server: server, context: reviewContext)
                review.invalids = []  // -i, --rm, --name ... are fine in a docker command of its own
                reviewFindings(review, add: add, skipAllow: ["root_user", "image_user"])
                for spec in run.mounts {
                    checkMount(spec, evidence: "args: \(spec.flag) \(spec.raw)", add: add, engineAndBroad: false)
                }
                if let group = run.groupAdd.first(where: { DockerCLI.User.isRootPart($0) }) {
                    add(Rules.rootUser, .high, "args: --group-add \(group)", Rules.rootWhy, "remove --group-add \(group)")
                }
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
            // Everything the planner refuses or rejects (extra_args read as docker reads them,
            // users, networks, mounts, image), except the user check above, which knows more.
            let review = DockerPlanner.review(server: server, config: config, context: reviewContext)
            reviewFindings(review, add: add, skipAllow: ["root_user", "image_user"])
            let extraRun = DockerRunArgs(flagsOnly: config.dockerIsolation.extraArgs + (iso.extraArgs ?? []))
            for spec in extraRun.mounts {
                checkMount(spec, evidence: "extra_args: \(spec.flag) \(spec.raw)", add: add, engineAndBroad: false)
            }
            if let group = extraRun.groupAdd.first(where: { DockerCLI.User.isRootPart($0) }) {
                add(Rules.rootUser, .high, "extra_args: --group-add \(group)", Rules.rootWhy, "remove --group-add \(group)")
            }
            if let u = extraRun.user, DockerPlanner.isRootUser(u) {
                add(Rules.rootUser, .high, "extra_args: --user \(u)", Rules.rootWhy, "remove --user \(u) or use an unprivileged uid:gid such as 65534:65534")
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
                checkMount(MountSpec(volume: volume), evidence: "isolation.volumes: \"\(volume)\"", add: add, engineAndBroad: false)
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

    /// Checks a mount source; with `engineAndBroad` false the socket and broad-mount checks are
    /// left to the docker rules' review (which the caller also reports).
    private func checkMount(_ spec: MountSpec, evidence: String, add: (String, AuditFinding.Severity, String, String, String) -> Void,
                            engineAndBroad: Bool = true) {
        guard let source = spec.source else { return }
        let path = expand(source)
        if !engineAndBroad {
            if isSecretPath(path), broadness(path) == nil {
                add(Rules.broadMount, .high, evidence, "it mounts a secret-bearing directory (keys or credentials) into the container",
                    "remove the mount, or pass the one credential the server needs as an environment variable")
            } else if !spec.readOnly && spec.isBind && broadness(path) == nil && !ConfigAuditor.isDockerSocket(path) {
                add(Rules.rwMount, .low, evidence, "the mount is read-write; if the server only reads there, a compromise could still modify the files",
                    "append \":ro\" unless the server must write there")
            }
            return
        }
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

    /// Root as user or group in any spelling (`0`, `00`, `+0`, `root`, `65534:0`), or empty.
    static func isRoot(_ user: String) -> Bool {
        DockerPlanner.isRootUser(user.trimmingCharacters(in: .whitespaces))
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
    static let groupAdd = "group-add"
    static let hostSocket = "host-socket"
    static let dockerOptionRefused = "docker-option-refused"
    static let dockerConfigInvalid = "docker-config-invalid"

    /// The rule and severity of a docker refusal, by the `allow` name that would lift it.
    static func forAllow(_ allow: String?) -> (String, AuditFinding.Severity) {
        switch allow {
        case "privileged": return (privileged, .high)
        case "docker_socket": return (dockerSocket, .high)
        case "host_socket": return (hostSocket, .high)
        case "broad_mount": return (broadMount, .high)
        case "host_network": return (hostNetwork, .high)
        case "cap_sys_admin", "cap_net_admin", "cap_sys_ptrace", "extra_capabilities": return (capAdd, .high)
        case "host_pid", "host_ipc": return (hostNamespace, .high)
        case "unconfined", "custom_security_profile", "new_privileges": return (unconfined, .high)
        case "devices": return (device, .medium)
        case "root_user", "image_user": return (rootUser, .high)
        case "no_pids_limit": return (noLimits, .medium)
        case "writable_rootfs": return (writableRootfs, .low)
        case "group_add": return (groupAdd, .high)
        default: return (dockerOptionRefused, .high)
        }
    }

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
        guard case .success(let m) = DockerCLI.parseMount(mount) else {
            isBind = false; source = nil; readOnly = false
            return
        }
        isBind = m.type == "bind"
        source = isBind ? m.source : nil
        readOnly = m.readOnly ?? false
    }
}

/// The security-relevant parts of `docker run` arguments, read by `DockerCLI` (the one docker
/// option parser) and folded by `DockerRunFacts`.
struct DockerRunArgs {
    var isRun = false
    var image: String?
    var privileged = false
    var user: String?
    var memory: String?
    var cpus: String?
    var pids: String?
    var groupAdd: [String] = []
    var mounts: [MountSpec] = []

    /// Parses `docker [global options] [container] run|create ...` arguments.
    init(_ args: [String]) {
        guard let run = args.firstIndex(where: { $0 == "run" || $0 == "create" }),
              args[..<run].allSatisfy({ $0.hasPrefix("-") || $0 == "container" }) || args[..<run].last == "container" else { return }
        isRun = true
        read(DockerCLI.parse(Array(args[(run + 1)...])))
    }

    /// Parses options only (`extra_args`).
    init(flagsOnly args: [String]) {
        read(DockerCLI.parse(args, stopAtPositional: false))
    }

    private mutating func read(_ parsed: DockerCLI.Parsed) {
        let facts = DockerRunFacts(parsed)
        image = facts.image
        privileged = facts.privileged
        user = facts.user
        memory = parsed.last("memory")
        cpus = parsed.last("cpus")
        pids = parsed.last("pids-limit")
        groupAdd = parsed.values("group-add")
        for o in parsed.options {
            if o.name == "volume" { mounts.append(MountSpec(volume: o.value)) }
            if o.name == "mount" { mounts.append(MountSpec(mount: o.value)) }
        }
    }
}
