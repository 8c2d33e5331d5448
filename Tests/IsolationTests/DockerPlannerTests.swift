import Foundation
import Testing
@testable import Isolation
import ProxyCore

@Suite("Docker planner: argv, hardening, env, labels")
struct DockerPlannerTests {
    typealias F = DockerFixture

    @Test("the default plan is exactly the hardened docker run")
    func defaultPlanIsExact() throws {
        let plan = try F.plan(F.server(args: ["--name", "x"]) { $0.image = "mcpproxy-fixture:test" })
        #expect(plan.executable == "docker")
        #expect(plan.arguments == [
            "run", "-i", "--rm", "--name", "mcpproxy-srv-abcdef012345",
            "--cidfile", "/run/mcpproxy-test/mcpproxy-srv-abcdef012345.cid",
            "--label", "mcpproxy.instance=inst-1",
            "--label", "mcpproxy.managed=true",
            "--label", "mcpproxy.owner_boot=boot-1",
            "--label", "mcpproxy.owner_host=testhost",
            "--label", "mcpproxy.owner_pid=4242",
            "--label", "mcpproxy.owner_start=777",
            "--label", "mcpproxy.server=srv",
            "--init", "--user", "65534:65534", "--cap-drop=ALL", "--security-opt", "no-new-privileges",
            "--read-only", "--tmpfs", "/tmp:rw,noexec,nosuid,nodev,size=64m", "--pids-limit", "256",
            "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=8192:8192",
            "--memory", "512m", "--memory-swap", "512m", "--cpus", "1.0", "--network", "bridge", "--log-driver", "none",
            "--tmpfs", "/home/mcpproxy:rw,exec,nosuid,nodev,size=64m", "--env", "HOME=/home/mcpproxy",
            "mcpproxy-fixture:test", "/fixture", "--name", "x",
        ])
        #expect(plan.container == ContainerPlan(
            name: "mcpproxy-srv-abcdef012345", image: "mcpproxy-fixture:test",
            cidFile: "/run/mcpproxy-test/mcpproxy-srv-abcdef012345.cid",
            labels: ["mcpproxy.managed": "true", "mcpproxy.server": "srv", "mcpproxy.instance": "inst-1",
                     "mcpproxy.owner_pid": "4242", "mcpproxy.owner_host": "testhost",
                     "mcpproxy.owner_boot": "boot-1", "mcpproxy.owner_start": "777"]))
        #expect(plan.warnings.isEmpty)
        #expect(plan.files.isEmpty)
        #expect(plan.redactedCommandLine == ["docker"] + plan.arguments)
        #expect(plan.enforcement["cap_drop"] == "ALL")
        #expect(plan.enforcement["read_only_rootfs"] == "true")
        #expect(plan.enforcement["user"] == "65534:65534")
        #expect(plan.enforcement["no_new_privileges"] == "true")
        #expect(plan.enforcement["image_source"] == "per-server image")
    }

    @Test("global limits, and per-server overrides of each")
    func limitsAndOverrides() throws {
        let config = F.config {
            $0.memoryLimit = "256m"; $0.cpuLimit = "0.5"; $0.networkMode = "none"; $0.pidsLimit = 64
            $0.user = "1000:1000"; $0.tmpfsSize = "16m"
        }
        let g = try F.plan(F.server(), config: config).arguments
        #expect(F.value(after: "--memory", in: g) == "256m")
        #expect(F.value(after: "--cpus", in: g) == "0.5")
        #expect(F.value(after: "--network", in: g) == "none")
        #expect(F.value(after: "--pids-limit", in: g) == "64")
        #expect(F.value(after: "--user", in: g) == "1000:1000")
        #expect(F.value(after: "--tmpfs", in: g) == "/tmp:rw,noexec,nosuid,nodev,size=16m")
        #expect(F.values(after: "--tmpfs", in: g).last == "/home/mcpproxy:rw,exec,nosuid,nodev,size=16m")

        let s = try F.plan(F.server {
            $0.memoryLimit = "1g"; $0.cpuLimit = "2.0"; $0.networkMode = "bridge"; $0.pidsLimit = 32; $0.user = "2000:2000"
            $0.workingDir = "/app"
        }, config: config).arguments
        #expect(F.value(after: "--memory", in: s) == "1g")
        #expect(F.value(after: "--memory-swap", in: s) == "1g")
        #expect(F.value(after: "--cpus", in: s) == "2.0")
        #expect(F.value(after: "--network", in: s) == "bridge")
        #expect(F.value(after: "--pids-limit", in: s) == "32")
        #expect(F.value(after: "--user", in: s) == "2000:2000")
        #expect(F.value(after: "--workdir", in: s) == "/app")
    }

    @Test("extra args: global first, then per-server, both before the image")
    func extraArgsOrder() throws {
        let plan = try F.plan(F.server { $0.extraArgs = ["--ulimit", "nofile=64:64"]; $0.image = "img:1" },
                              config: F.config { $0.extraArgs = ["--dns", "127.0.0.1"] })
        let a = plan.arguments
        let dns = try #require(a.firstIndex(of: "--dns"))
        let ulimit = try #require(a.lastIndex(of: "--ulimit"))
        let image = try #require(a.firstIndex(of: "img:1"))
        #expect(dns < ulimit && ulimit < image)
        #expect(a[dns + 1] == "127.0.0.1" && a[ulimit + 1] == "nofile=64:64")
        // The planner's own nofile default gives way to the configured one; nproc stays.
        #expect(F.values(after: "--ulimit", in: a) == ["nproc=8192:8192", "nofile=64:64"])
    }

    struct Relaxation: Sendable, CustomStringConvertible {
        let allow: String
        let removed: [String]
        var description: String { allow }
    }

    static let relaxations: [Relaxation] = [
        .init(allow: "writable_rootfs", removed: ["--read-only"]),
        .init(allow: "image_user", removed: ["--user", "HOME=/home/mcpproxy"]),
        .init(allow: "default_capabilities", removed: ["--cap-drop=ALL"]),
        .init(allow: "new_privileges", removed: ["no-new-privileges"]),
        .init(allow: "no_pids_limit", removed: ["--pids-limit"]),
        .init(allow: "no_init", removed: ["--init"]),
        .init(allow: "container_logs", removed: ["--log-driver"]),
    ]

    @Test("each hardening default is present unless relaxed by its name, which warns", arguments: relaxations)
    func relaxation(_ r: Relaxation) throws {
        let hardened = try F.plan(F.server()).arguments
        for flag in r.removed { #expect(hardened.contains(flag)) }
        let relaxed = try F.plan(F.server { $0.allow = [r.allow] })
        for flag in r.removed { #expect(!relaxed.arguments.contains(flag), "\(flag) still present") }
        #expect(relaxed.warnings.count == 1)
        #expect(relaxed.warnings.first?.contains("SECURITY") == true)
        #expect(relaxed.warnings.first?.contains("\"\(r.allow)\"") == true)
        // Everything else stays hardened.
        for other in Self.relaxations where other.allow != r.allow {
            for flag in other.removed where !r.removed.contains(flag) { #expect(relaxed.arguments.contains(flag), "\(flag) lost") }
        }
    }

    @Test("every allow name is known to Allowance, and an unknown one only warns")
    func unknownAllowWarns() throws {
        for r in Self.relaxations { #expect(DockerPlanner.Allowance(rawValue: r.allow)?.isOptIn == false) }
        let plan = try F.plan(F.server { $0.allow = ["landlock_something"] })
        #expect(plan.warnings.count == 1)
        #expect(plan.warnings[0].contains("landlock_something"))
        #expect(plan.arguments.contains("--read-only"))
    }

    struct Dangerous: Sendable, CustomStringConvertible {
        let label: String
        let allow: [String]
        let volumes: [String]?
        let extra: [String]?
        let network: String?
        let user: String?
        init(_ label: String, allow: [String], volumes: [String]? = nil, extra: [String]? = nil,
             network: String? = nil, user: String? = nil) {
            self.label = label; self.allow = allow; self.volumes = volumes; self.extra = extra
            self.network = network; self.user = user
        }
        var description: String { label }
    }

    /// Seed 003's misconfigurations and their relatives: each refused with the name to allow it.
    static let dangerous: [Dangerous] = [
        .init("docker socket volume", allow: ["docker_socket"], volumes: ["/var/run/docker.sock:/var/run/docker.sock"]),
        .init("docker socket via /run", allow: ["docker_socket"], volumes: ["/run/docker.sock:/d.sock"]),
        .init("directory holding the socket", allow: ["docker_socket"], volumes: ["/var/run:/hostrun"]),
        .init("socket from DOCKER_HOST", allow: ["docker_socket"], volumes: ["/srv/engine/custom.sock:/s"]),
        .init("socket via -v in extra args", allow: ["docker_socket"], extra: ["-v", "/var/run/docker.sock:/s"]),
        .init("socket via --mount", allow: ["docker_socket"], extra: ["--mount", "type=bind,source=/var/run/docker.sock,target=/s"]),
        .init("root of the host", allow: ["docker_socket", "broad_mount"], volumes: ["/:/host"]),
        .init("home directory", allow: ["broad_mount"], volumes: ["/home/u:/h"]),
        .init("home via tilde", allow: ["broad_mount"], volumes: ["~:/h"]),
        .init("parent of home", allow: ["broad_mount"], volumes: ["/home:/h"]),
        .init("home after normalizing", allow: ["broad_mount"], volumes: ["/data/../home/u/./:/h"]),
        .init("the proxy's data dir", allow: ["broad_mount"], volumes: ["~/.mcpproxy/keys:/k"]),
        .init("/etc", allow: ["broad_mount"], volumes: ["/etc:/e"]),
        .init("/proc via extra --volume=", allow: ["broad_mount"], extra: ["--volume=/proc:/p"]),
        .init("volumes-from", allow: ["broad_mount"], extra: ["--volumes-from", "other"]),
        .init("privileged", allow: ["privileged"], extra: ["--privileged"]),
        .init("privileged=true", allow: ["privileged"], extra: ["--privileged=true"]),
        .init("cap-add ALL", allow: ["privileged"], extra: ["--cap-add", "ALL"]),
        .init("cap-add SYS_ADMIN", allow: ["cap_sys_admin"], extra: ["--cap-add", "SYS_ADMIN"]),
        .init("cap-add=cap_sys_admin", allow: ["cap_sys_admin"], extra: ["--cap-add=cap_sys_admin"]),
        .init("cap-add NET_ADMIN", allow: ["cap_net_admin"], extra: ["--cap-add", "NET_ADMIN"]),
        .init("cap-add SYS_PTRACE", allow: ["cap_sys_ptrace"], extra: ["--cap-add", "SYS_PTRACE"]),
        .init("host network (per-server mode)", allow: ["host_network"], network: "host"),
        .init("host network (extra args)", allow: ["host_network"], extra: ["--network=host"]),
        .init("host network (--net)", allow: ["host_network"], extra: ["--net", "host"]),
        .init("host pid", allow: ["host_pid"], extra: ["--pid", "host"]),
        .init("host pid (=)", allow: ["host_pid"], extra: ["--pid=host"]),
        .init("host ipc", allow: ["host_ipc"], extra: ["--ipc=host"]),
        .init("seccomp unconfined", allow: ["unconfined"], extra: ["--security-opt", "seccomp=unconfined"]),
        .init("apparmor unconfined", allow: ["unconfined"], extra: ["--security-opt", "apparmor:unconfined"]),
        .init("userns host", allow: ["unconfined"], extra: ["--userns=host"]),
        .init("no-new-privileges=false", allow: ["new_privileges"], extra: ["--security-opt", "no-new-privileges=false"]),
        .init("device", allow: ["devices"], extra: ["--device", "/dev/kvm"]),
        .init("use-api-socket", allow: ["docker_socket"], extra: ["--use-api-socket"]),
        .init("cgroupns host", allow: ["unconfined"], extra: ["--cgroupns=host"]),
        .init("gpus", allow: ["devices"], extra: ["--gpus=all"]),
        .init("root user", allow: ["root_user"], user: "0"),
        .init("root:root user", allow: ["root_user"], user: "root:root"),
        .init("root via -u", allow: ["root_user"], extra: ["-u", "0:0"]),
        .init("root via -u0", allow: ["root_user"], extra: ["-u0"]),
        .init("read-only=false", allow: ["writable_rootfs"], extra: ["--read-only=false"]),
        .init("pids-limit -1", allow: ["no_pids_limit"], extra: ["--pids-limit", "-1"]),
    ]

    static func dangerousServer(_ d: Dangerous, allow: [String]) -> ServerConfig {
        F.server {
            $0.volumes = d.volumes; $0.extraArgs = d.extra; $0.networkMode = d.network; $0.user = d.user
            $0.allow = allow
        }
    }

    static let socketContext = F.context(hostEnv: ["PATH": "/usr/bin", "DOCKER_HOST": "unix:///srv/engine/custom.sock"])

    @Test("dangerous options are refused, naming the option and the allow entry", arguments: dangerous)
    func refused(_ d: Dangerous) throws {
        let error = try #require(throws: ProxyError.self) {
            try F.plan(Self.dangerousServer(d, allow: []), context: Self.socketContext)
        }
        #expect(error.code == .refused)
        #expect(error.message.contains("server \"srv\""))
        for name in d.allow { #expect(error.message.contains("add \"\(name)\" to"), "missing \(name) in: \(error.message)") }
        // Allowing only part of what is needed is still refused.
        if d.allow.count > 1 {
            #expect(throws: ProxyError.self) {
                try F.plan(Self.dangerousServer(d, allow: [d.allow[0]]), context: Self.socketContext)
            }
        }
    }

    @Test("a dangerous option named in allow is planned, with a SECURITY warning", arguments: dangerous)
    func optedIn(_ d: Dangerous) throws {
        let plan = try F.plan(Self.dangerousServer(d, allow: d.allow), context: Self.socketContext)
        #expect(plan.warnings.contains { w in w.contains("SECURITY") && d.allow.contains { w.contains($0) } })
        if let v = d.volumes?.first { #expect(plan.arguments.contains { $0.hasSuffix(":ro") && $0.contains(v.split(separator: ":")[1]) }) }
        // Every option given is planned (in its canonical spelling), read back the same way.
        let planned = DockerCLI.parse(Array(plan.arguments.dropFirst())).options
        for o in DockerCLI.parse(d.extra ?? []).options where !["volume", "mount"].contains(o.name) {
            #expect(planned.contains { $0.name == o.name && $0.value == o.value }, "\(o) not planned")
        }
    }

    struct VolumeCase: Sendable, CustomStringConvertible {
        let spec: String
        let planned: String
        var description: String { spec }
    }

    static let volumeCases: [VolumeCase] = [
        .init(spec: "/data/x:/x", planned: "/data/x:/x:ro"),
        .init(spec: "/data/x:/x:ro", planned: "/data/x:/x:ro"),
        .init(spec: "/data/x:/x:rw", planned: "/data/x:/x:rw"),
        .init(spec: "/data/x:/x:z", planned: "/data/x:/x:z,ro"),
        .init(spec: "/data//x/./y/:/x", planned: "/data/x/y:/x:ro"),
        .init(spec: "~/projects/a:/work", planned: "/home/u/projects/a:/work:ro"),
        .init(spec: "cache:/cache", planned: "cache:/cache:ro"),
        .init(spec: "cache:/cache:rw", planned: "cache:/cache:rw"),
        .init(spec: "/scratch", planned: "/scratch"),
    ]

    @Test("volumes are read-only unless marked rw, with host paths normalized", arguments: volumeCases)
    func volumes(_ v: VolumeCase) throws {
        let plan = try F.plan(F.server { $0.volumes = [v.spec] })
        #expect(F.values(after: "--volume", in: plan.arguments) == [v.planned])
        #expect(plan.warnings.contains { $0.contains("read-write") } == v.planned.hasSuffix(":rw"))
    }

    @Test("a mount source that is a symlink to a refused path is refused, naming both")
    func symlinkedSources() throws {
        let links = ["/srv/innocent": "/var/run/docker.sock", "/srv/docs": "/home/u", "/srv/data": "/data/real"]
        let sock = try #require(throws: ProxyError.self) {
            try F.plan(F.server { $0.volumes = ["/srv/innocent:/x"] }, symlinks: links)
        }
        #expect(sock.code == .refused)
        #expect(sock.message.contains("\"/srv/innocent\" (a symlink to \"/var/run/docker.sock\")"))
        #expect(sock.message.contains("docker_socket"))
        let home = try #require(throws: ProxyError.self) {
            try F.plan(F.server { $0.extraArgs = ["--mount", "type=bind,source=/srv/docs,target=/d"] }, symlinks: links)
        }
        #expect(home.message.contains("broad_mount"))
        // A harmless target is fine, and the planned source stays the configured path.
        let ok = try F.plan(F.server { $0.volumes = ["/srv/data:/d"] }, symlinks: links)
        #expect(F.value(after: "--volume", in: ok.arguments) == "/srv/data:/d:ro")
        // Allowed: planned, with the symlink named in the warning.
        let allowed = try F.plan(F.server { $0.volumes = ["/srv/innocent:/x"]; $0.allow = ["docker_socket"] }, symlinks: links)
        #expect(allowed.warnings.contains { $0.contains("a symlink to") })
    }

    @Test("real symlinks are resolved through the longest existing prefix")
    func realSymlinks() throws {
        let dir = NSTemporaryDirectory() + "mcpproxy-symlink-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/sock", withDestinationPath: "/var/run/docker.sock")
        try FileManager.default.createSymbolicLink(atPath: dir + "/etcdir", withDestinationPath: "/etc")
        let real = try #require(DockerPlanner.resolveExistingPrefix(dir))
        #expect(DockerPlanner.resolveExistingPrefix(dir + "/etcdir/not-there/x") == "/etc/not-there/x")
        #expect(DockerPlanner.resolveExistingPrefix(dir + "/plain/missing") == real + "/plain/missing")
        // The planner's default resolver is the real file system.
        let s = F.server { $0.volumes = ["\(dir)/etcdir/ssl:/ssl"] }
        let error = try #require(throws: ProxyError.self) {
            try DockerPlanner.plan(server: s, command: "/fixture", config: F.config(),
                                   decision: IsolationDecision(mode: .docker, source: .perServerMode),
                                   context: F.context(), owner: F.owner)
        }
        #expect(error.message.contains("a symlink to \"/etc/ssl\""))
    }

    @Test("--mount in extra args becomes read-only unless readonly is stated")
    func mounts() throws {
        let a = try F.plan(F.server { $0.extraArgs = ["--mount", "type=bind,source=/data,target=/d"] }).arguments
        #expect(F.value(after: "--mount", in: a) == "type=bind,source=/data,target=/d,readonly=true")
        let b = try F.plan(F.server { $0.extraArgs = ["--mount", "type=bind,src=/data,dst=/d,readonly=false"] })
        #expect(F.value(after: "--mount", in: b.arguments) == "type=bind,src=/data,dst=/d,readonly=false")
        #expect(b.warnings.contains { $0.contains("read-write") })
        let c = try F.plan(F.server { $0.extraArgs = ["--mount", "type=tmpfs,target=/cache"] }).arguments
        #expect(F.value(after: "--mount", in: c) == "type=tmpfs,target=/cache")
    }

    static let invalid: [[String]] = [
        ["-t"], ["-it"], ["--tty"], ["-d"], ["--detach"], ["--name", "x"], ["--cidfile", "/tmp/c"], ["--rm=false"],
        ["--label", "mcpproxy.managed=false"], ["-l", "mcpproxy.instance=x"], ["--label-file", "/tmp/l"],
        ["myimage"], ["--volume"], ["-v", "relative/path:/x"], ["-v", "/x:relative"], ["-v", "a:b:c:d"],
        ["--restart", "always"], ["-a", "stdout"], ["--attach=stdin"],
    ]

    @Test("extra args that break the stdio plan or are malformed are config errors", arguments: invalid)
    func invalidExtraArgs(_ extra: [String]) throws {
        let error = try #require(throws: ProxyError.self) { try F.plan(F.server { $0.extraArgs = extra }) }
        #expect(error.code == .invalidConfig)
        #expect(error.message.contains("extra_args"))
    }

    @Test("values of every value-taking option are kept with their option, never taken for the image")
    func valueOptionsParsed() throws {
        let extra = ["--sysctl", "net.ipv4.ip_unprivileged_port_start=0", "--health-cmd", "true", "-h", "box",
                     "--add-host=db:127.0.0.1", "--ulimit", "nofile=64:64", "-q", "--storage-opt", "size=1G",
                     "-c", "512", "--dns-search", "example.test"]
        let plan = try F.plan(F.server { $0.extraArgs = extra; $0.image = "img:1" })
        let image = try #require(plan.arguments.firstIndex(of: "img:1"))
        // Planned in the canonical spelling: long names, values as separate arguments.
        let canonical = ["--sysctl", "net.ipv4.ip_unprivileged_port_start=0", "--health-cmd", "true", "--hostname", "box",
                         "--add-host", "db:127.0.0.1", "--ulimit", "nofile=64:64", "--quiet", "--storage-opt", "size=1G",
                         "--cpu-shares", "512", "--dns-search", "example.test"]
        #expect(Array(plan.arguments[(image - canonical.count)..<image]) == canonical)
        #expect(plan.warnings.isEmpty)
        let published = try F.plan(F.server { $0.extraArgs = ["-p", "8080:80"] })
        #expect(published.warnings.contains { $0.contains("publishes container ports") })
        #expect(F.value(after: "--publish", in: published.arguments) == "8080:80")
    }

    @Test("a relative working_dir and a relative volume are config errors naming the field")
    func invalidFields() throws {
        let w = try #require(throws: ProxyError.self) { try F.plan(F.server { $0.workingDir = "app" }) }
        #expect(w.code == .invalidConfig && w.message.contains("isolation.working_dir"))
        let v = try #require(throws: ProxyError.self) { try F.plan(F.server { $0.volumes = ["./data:/d"] }) }
        #expect(v.code == .invalidConfig && v.message.contains("volumes[0]"))
    }

    @Test("a host working_dir is not used in docker mode, and says so")
    func hostWorkingDirWarns() throws {
        var s = F.server()
        s.workingDir = "/srv/x"
        let plan = try F.plan(s)
        #expect(plan.workingDirectory == nil)
        #expect(!plan.arguments.contains("--workdir"))
        #expect(plan.warnings.contains { $0.contains("isolation\"].working_dir") || $0.contains("isolation.working_dir") })
    }

    @Test("declared env: names on the command line, values only in the docker client's environment")
    func environment() throws {
        let plan = try F.plan(F.server(env: ["API_KEY": "s3cr3t-value", "DEBUG": "1"]))
        #expect(F.values(after: "--env", in: plan.arguments) == ["HOME=/home/mcpproxy", "API_KEY", "DEBUG"])
        #expect(!plan.arguments.joined(separator: " ").contains("s3cr3t-value"))
        #expect(!plan.redactedCommandLine.joined(separator: " ").contains("s3cr3t-value"))
        #expect(plan.environment["API_KEY"] == "s3cr3t-value")
        #expect(plan.environment["DEBUG"] == "1")
        // Only what the docker client needs from the host; nothing else leaks.
        #expect(plan.environment["AWS_SECRET_ACCESS_KEY"] == nil)
        #expect(plan.environment["LANG"] == nil)
        #expect(plan.environment["DOCKER_HOST"] == "unix:///var/run/docker.sock")
        #expect(Set(plan.environment.keys) == ["PATH", "HOME", "DOCKER_HOST", "API_KEY", "DEBUG"])
    }

    @Test("declared env names the docker client reads go through a 0600 env file")
    func collidingEnvGoesToFile() throws {
        let plan = try F.plan(F.server(env: ["PATH": "/opt/tools/bin", "DOCKER_HOST": "tcp://evil:2375", "HOME": "/data", "TOKEN": "abcd1234"]))
        #expect(plan.environment["PATH"] == "/usr/bin:/bin")
        #expect(plan.environment["DOCKER_HOST"] == "unix:///var/run/docker.sock")
        #expect(plan.environment["HOME"] == "/home/u")
        #expect(plan.environment["TOKEN"] == "abcd1234")
        let file = try #require(plan.files.first)
        #expect(plan.files.count == 1)
        #expect(file.path == "/run/mcpproxy-test/mcpproxy-srv-abcdef012345.env")
        #expect(file.mode == 0o600)
        #expect(file.contents == "DOCKER_HOST=tcp://evil:2375\nHOME=/data\nPATH=/opt/tools/bin\n")
        #expect(F.value(after: "--env-file", in: plan.arguments) == file.path)
        // A declared HOME replaces the planned one.
        #expect(!plan.arguments.contains("HOME=/home/mcpproxy"))
        #expect(!plan.arguments.joined().contains("/opt/tools/bin"))
    }

    @Test("a multi-line value for a client-reserved name is a config error")
    func multilineReserved() throws {
        let error = try #require(throws: ProxyError.self) { try F.plan(F.server(env: ["PATH": "a\nb"])) }
        #expect(error.code == .invalidConfig && error.message.contains("env.PATH"))
    }

    @Test("inline -e NAME=value in extra args is redacted from the logged argv and warned about")
    func inlineEnvRedacted() throws {
        let plan = try F.plan(F.server(env: ["K": "declaredvalue"]) { $0.extraArgs = ["-e", "X=inl", "--env=Y=inline2"] })
        let logged = plan.redactedCommandLine.joined(separator: " ")
        #expect(!logged.contains("inl ") && !logged.contains("inline2") && !logged.contains("declaredvalue"))
        #expect(plan.redactedCommandLine.contains("X=***"))
        #expect(plan.redactedCommandLine.contains("Y=***"))
        #expect(plan.redactedCommandLine.contains("HOME=/home/mcpproxy"))
        #expect(plan.warnings.filter { $0.contains("visible in ps") }.count == 2)
        let line = DockerPlanner.runArgsLogLine(plan)
        #expect(line.hasPrefix("docker_run_args: [\"run\",\"-i\",\"--rm\""))
        #expect(!line.contains("inline2"))
    }

    @Test("redaction replaces only the values of --env NAME=VALUE, never other words equal to an env value")
    func redactionOnlyEnvPositions() throws {
        let plan = try F.plan(F.server(env: ["MODE": "none", "FLAG": "true"]) {
            $0.extraArgs = ["-e", "TOKEN=none", "--hostname", "none", "-eX=true"]; $0.image = "img:1"
        })
        let r = plan.redactedCommandLine
        #expect(F.value(after: "--log-driver", in: r) == "none")
        #expect(r.contains("mcpproxy.managed=true"))
        #expect(F.value(after: "--hostname", in: r) == "none")
        #expect(r.contains("TOKEN=***") && r.contains("X=***"))
        #expect(r.count == plan.arguments.count + 1)
        // Only the two inline values differ: the logged command can be copied to debug.
        #expect(zip(r.dropFirst(), plan.arguments).filter { $0 != $1 }.count == 2)
        #expect(DockerPlanner.runArgsLogLine(plan).contains("\"--log-driver\",\"none\""))
    }

    struct ImageCase: Sendable, CustomStringConvertible {
        let command: String
        let image: String
        var description: String { command }
    }

    /// Seed 000's runtime table, plus paths, version suffixes and unknown commands.
    static let imageCases: [ImageCase] = DockerIsolationConfig.seedImages.keys.sorted().map {
        ImageCase(command: $0, image: DockerIsolationConfig.seedImages[$0]!)
    } + [
        .init(command: "/usr/bin/python3", image: "python:3.11"),
        .init(command: "python3.12", image: "python:3.11"),
        .init(command: "/opt/py/bin/python3.11", image: "python:3.11"),
        .init(command: "node.exe", image: "node:20"),
        .init(command: "NPX", image: "node:20"),
        .init(command: "/fixture", image: "alpine:3.18"),
        .init(command: "my-server", image: "alpine:3.18"),
    ]

    @Test("runtime detection maps the command's base name to the default image", arguments: imageCases)
    func runtimeDetection(_ c: ImageCase) {
        let choice = DockerPlanner.image(for: c.command, isolation: .init(), global: .init())
        #expect(choice.image == c.image)
    }

    @Test("per-server image wins; registry prefixes table images only; configured tables override the seed")
    func imageSources() {
        var iso = ServerIsolationConfig()
        iso.image = "my/custom:1"
        var g = DockerIsolationConfig()
        g.registry = "mirror.example.com:5000"
        #expect(DockerPlanner.image(for: "python", isolation: iso, global: g) == .init(image: "my/custom:1", reason: "per-server image"))
        #expect(DockerPlanner.image(for: "python", isolation: .init(), global: g).image == "mirror.example.com:5000/python:3.11")
        #expect(DockerPlanner.image(for: "unknown", isolation: .init(), global: g).image == "mirror.example.com:5000/alpine:3.18")
        g.registry = "docker.io"
        #expect(DockerPlanner.image(for: "python", isolation: .init(), global: g).image == "python:3.11")
        g.defaultImages["uvx"] = "ghcr.io/astral-sh/uv:python3.12"
        g.defaultImages["binary"] = "busybox:1"
        g.registry = "mirror.local"
        #expect(DockerPlanner.image(for: "uvx", isolation: .init(), global: g).image == "ghcr.io/astral-sh/uv:python3.12")
        #expect(DockerPlanner.image(for: "zzz", isolation: .init(), global: g).image == "mirror.local/busybox:1")
        #expect(DockerPlanner.image(for: "zzz", isolation: .init(), global: g).reason.contains("binary"))
        #expect(DockerPlanner.withRegistry("localhost/x:1", "r.example") == "localhost/x:1")
        #expect(DockerPlanner.withRegistry("library/x:1", "r.example/") == "r.example/library/x:1")
        #expect(DockerPlanner.withRegistry("x:1", "") == "x:1")
    }

    @Test("container names are limited to Docker's characters and the short launch id")
    func names() {
        #expect(DockerPlanner.containerName(server: "a.b-c_d", launchID: "0123456789abcdefXYZ") == "mcpproxy-a.b-c_d-0123456789ab")
        #expect(DockerPlanner.containerName(server: "wé ird", launchID: "x/y") == "mcpproxy-w__ird-x_y")
    }

    @Test("root detection for user strings", arguments: [
        ("0", true), ("root", true), ("ROOT:wheel", true), ("0:0", true), (":0", true), ("65534:65534", false),
        ("1000", false), ("app", false), ("10", false),
    ])
    func rootUser(_ user: String, _ root: Bool) {
        #expect(DockerPlanner.isRootUser(user) == root)
    }

    @Test("path helpers are lexical", arguments: [
        ("/a/b/../c", "/a/c"), ("//a///b/", "/a/b"), ("/../..", "/"), ("/a/./b/.", "/a/b"), ("/", "/"),
    ])
    func normalize(_ input: String, _ output: String) {
        #expect(DockerPlanner.normalizePath(input) == output)
    }

    @Test("ancestry")
    func ancestry() {
        #expect(DockerPlanner.isAncestorOrSame("/", of: "/x"))
        #expect(DockerPlanner.isAncestorOrSame("/home", of: "/home/u"))
        #expect(DockerPlanner.isAncestorOrSame("/home/u", of: "/home/u"))
        #expect(!DockerPlanner.isAncestorOrSame("/home/u", of: "/home/user2"))
        #expect(!DockerPlanner.isAncestorOrSame("/home/u/x", of: "/home/u"))
    }

    @Test("the owner start time is field 22 of /proc/pid/stat, even with odd command names")
    func startTime() {
        let line = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615"
        #expect(ContainerOwner.parseStartTime(statLine: line) == "987654")
        #expect(ContainerOwner.parseStartTime(statLine: "garbage") == nil)
        let me = ContainerOwner.probe(pid: getpid())
        #expect(me.startTime != nil)
        #expect(me.bootID != "unknown")
        #expect(ContainerOwner.processStartTime(getpid()) == me.startTime)
    }

    @Test("Launcher routes docker mode to the docker planner; a docker command is skipped")
    func launcherRoutes() throws {
        var config = ProxyConfig()
        config.dockerIsolation.mode = .docker
        var s = ServerConfig(name: "x")
        s.command = "uvx"
        let plan = try Launcher.plan(server: s, config: config, context: F.context())
        #expect(plan.mode == .docker && plan.executable == "docker")
        #expect(plan.container?.image == "python:3.11")
        #expect(plan.container?.labels["mcpproxy.owner_pid"] == "4242")
        s.command = "docker"
        s.args = ["run", "-i", "--rm", "x"]
        let skipped = try Launcher.plan(server: s, config: config, context: F.context())
        #expect(skipped.mode == .none && skipped.decision.source == .dockerCommandSkipped)
        #expect(skipped.executable == "docker" && skipped.container == nil)
    }
}

@Suite("Docker benchmark argv template")
struct DockerBenchTemplateTests {
    @Test("bench/docker_coldstart_argv.json is exactly what the planner produces for the bench server")
    func templateMatchesPlanner() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let data = try Data(contentsOf: root.appendingPathComponent("bench/docker_coldstart_argv.json"))
        let template = try #require(try JSONSerialization.jsonObject(with: data) as? [String])
        for network in ["bridge", "none"] {
            var s = ServerConfig(name: "bench")
            s.command = "/fixture"
            var iso = ServerIsolationConfig()
            iso.image = "mcpproxy-fixture:test"
            iso.networkMode = network
            s.isolation = iso
            let plan = try DockerFixture.plan(s)
            let c = try #require(plan.container)
            let o = DockerFixture.owner
            let values = ["{name}": c.name, "{cidfile}": c.cidFile, "{instance}": "inst-1", "{boot}": o.bootID,
                          "{host}": o.host, "{pid}": String(o.pid), "{start}": o.startTime!, "{network}": network]
            let filled = template.map { t in values.reduce(t) { $0.replacingOccurrences(of: $1.key, with: $1.value) } }
            #expect(filled == plan.arguments)
        }
    }
}
