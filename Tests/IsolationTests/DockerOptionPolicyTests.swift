import Foundation
import Testing
@testable import Isolation
import ProxyCore

/// The allowlist applied to extra_args and to every config field that becomes a docker argument.
@Suite("Docker options: allowlist, refusals with JSON paths and allow names")
struct DockerOptionPolicyTests {
    typealias F = DockerFixture

    enum Outcome: Sendable, Equatable {
        case accepted
        /// Refused; the allow name that lifts it (nil: none).
        case refused(String?)
        case invalid
    }

    struct Row: Sendable, CustomStringConvertible {
        let extra: [String]
        let outcome: Outcome
        /// Index of the offending argument, for the JSON path.
        let at: Int
        init(_ extra: [String], _ outcome: Outcome, at: Int = 0) { self.extra = extra; self.outcome = outcome; self.at = at }
        var description: String { extra.joined(separator: " ") }
    }

    static let rows: [Row] = [
        // Issue 9's escapes, each refused.
        .init(["-iv/var/run/docker.sock:/s"], .refused("docker_socket")),
        .init(["-iu0"], .refused("root_user")),
        .init(["--privileged=t"], .refused("privileged")),
        .init(["--privileged=T"], .refused("privileged")),
        .init(["--privileged=TRUE"], .refused("privileged")),
        .init(["--privileged=True"], .refused("privileged")),
        .init(["--privileged=1"], .refused("privileged")),
        .init(["--privileged"], .refused("privileged")),
        .init(["--use-api-socket=t"], .refused("docker_socket")),
        .init(["--use-api-socket=1"], .refused("docker_socket")),
        .init(["--mount", "\"type=bind\",\"source=/var/run/docker.sock\",target=/s"], .refused("docker_socket")),
        .init(["--mount", "type=bind,src=/ok,src=/var/run/docker.sock,dst=/s"], .refused("docker_socket")),
        .init(["--mount", "type=volume,src=v,dst=/d,volume-opt=device=/var/run,volume-opt=o=bind,volume-opt=type=none"], .refused(nil)),
        .init(["--user", "00"], .refused("root_user")),
        .init(["--user", "+0"], .refused("root_user")),
        .init(["--user", "-0"], .refused("root_user")),
        .init(["--user", "65534:0"], .refused("root_user")),
        .init(["--user=65534:00"], .refused("root_user")),
        .init(["-u", "65534:root"], .refused("root_user")),
        .init(["-u=root"], .refused("root_user")),
        .init(["--user", "root:root"], .refused("root_user")),
        .init(["--group-add", "docker"], .refused("docker_socket")),
        .init(["--group-add", "0"], .refused("root_user")),
        .init(["--group-add=00"], .refused("root_user")),
        .init(["--group-add", "root"], .refused("root_user")),
        .init(["--group-add", "1000"], .refused("group_add")),
        .init(["--cap-add", "SYS_MODULE"], .refused("extra_capabilities")),
        .init(["--cap-add", "DAC_READ_SEARCH"], .refused("extra_capabilities")),
        .init(["--cap-add=cap_dac_read_search"], .refused("extra_capabilities")),
        .init(["--cap-add", "SYS_RAWIO"], .refused("extra_capabilities")),
        .init(["--cap-add", "BPF"], .refused("extra_capabilities")),
        .init(["--cap-add", "DAC_OVERRIDE"], .refused("extra_capabilities")),
        .init(["--cap-add", "NET_RAW"], .refused("extra_capabilities")),
        .init(["--cap-add", "SETUID"], .refused("extra_capabilities")),
        .init(["--cap-add", "MKNOD"], .refused("extra_capabilities")),
        .init(["--cap-add", "sys_admin"], .refused("cap_sys_admin")),
        .init(["--cap-add", "NET_ADMIN"], .refused("cap_net_admin")),
        .init(["--cap-add", "SYS_PTRACE"], .refused("cap_sys_ptrace")),
        .init(["--cap-add", "all"], .refused("privileged")),
        .init(["--cap-add", "ALL"], .refused("privileged")),
        .init(["--security-opt", "seccomp=/root/profile.json"], .refused("custom_security_profile")),
        .init(["--security-opt", "seccomp:/tmp/p.json"], .refused("custom_security_profile")),
        .init(["--security-opt", "seccomp=unconfined"], .refused("unconfined")),
        .init(["--security-opt", "apparmor=unconfined"], .refused("unconfined")),
        .init(["--security-opt", "apparmor=myprofile"], .refused("custom_security_profile")),
        .init(["--security-opt", "label=disable"], .refused("unconfined")),
        .init(["--security-opt", "disable"], .invalid),
        .init(["--security-opt", "label=type:spc_t"], .refused("custom_security_profile")),
        .init(["--security-opt", "systempaths=unconfined"], .refused("unconfined")),
        .init(["--security-opt", "no-new-privileges=false"], .refused("new_privileges")),
        .init(["--security-opt", "no-new-privileges=f"], .refused("new_privileges")),
        .init(["--security-opt", "no-new-privileges:0"], .refused("new_privileges")),
        .init(["--security-opt", "no-new-privileges=False"], .refused("new_privileges")),
        .init(["--security-opt", "writable-cgroups=true"], .refused(nil)),
        .init(["--env-file", "/root/.env"], .refused(nil)),
        .init(["--env-file=/etc/shadow"], .refused(nil)),
        .init(["--network", "container:abc"], .refused(nil)),
        .init(["--network=container:abc"], .refused(nil)),
        .init(["--net", "ns:/proc/1/ns/net"], .refused(nil)),
        .init(["--network", "host"], .refused("host_network")),
        .init(["--net=HOST"], .refused("host_network")),
        .init(["-v", "/var/lib/docker:/d"], .refused("docker_socket")),
        .init(["-v", "/var/lib/docker/volumes/x/_data:/d"], .refused("docker_socket")),
        .init(["-v", "/run/containerd/containerd.sock:/c.sock"], .refused("docker_socket")),
        .init(["-v", "/run/containerd:/c"], .refused("docker_socket")),
        .init(["-v", "/var/lib/containerd:/c"], .refused("docker_socket")),
        .init(["-v", "/srv/x/docker.sock:/s"], .refused("docker_socket")),
        .init(["-v", "/opt/containerd.sock:/s"], .refused("docker_socket")),
        .init(["-v", "/var/lib:/l"], .refused("docker_socket")),
        .init(["-v", "/var:/v"], .refused("docker_socket")),
        .init(["-v", "/run/user/1000/bus.socket:/b"], .refused("host_socket")),
        .init(["-v", "/srv/agent.sock:/a"], .refused("host_socket")),
        .init(["-v", "/etc/shadow:/s"], .refused("broad_mount")),
        .init(["-v", "/root/.ssh:/k"], .refused("broad_mount")),
        .init(["-v", "/usr:/u"], .refused("broad_mount")),
        .init(["-v", "/:/host"], .refused("broad_mount")),
        .init(["-v", "/data:/d:shared"], .refused(nil)),
        .init(["--mount", "type=bind,src=/data,dst=/d,bind-propagation=rshared"], .refused(nil)),
        .init(["--mount", "type=bind,src=/data,dst=/d,bind-recursive=writable"], .refused(nil)),
        .init(["--mount", "type=bind,source=/etc,target=/e"], .refused("broad_mount")),
        .init(["--mount", "type=volume,src=v,dst=/d,volume-driver=sshfs"], .refused(nil)),
        .init(["--mount", "type=npipe,src=x,dst=/d"], .refused(nil)),
        .init(["--mount", "type=image,src=alpine,dst=/d"], .refused(nil)),
        .init(["--pid", "host"], .refused("host_pid")),
        .init(["--pid=container:x"], .refused(nil)),
        .init(["--ipc", "host"], .refused("host_ipc")),
        .init(["--ipc", "container:x"], .refused(nil)),
        .init(["--uts", "host"], .refused("unconfined")),
        .init(["--userns=host"], .refused("unconfined")),
        .init(["--cgroupns", "host"], .refused("unconfined")),
        .init(["--device", "/dev/kvm"], .refused("devices")),
        .init(["--device-cgroup-rule", "c 1:3 mr"], .refused("devices")),
        .init(["--gpus", "all"], .refused("devices")),
        .init(["--volumes-from", "other"], .refused("broad_mount")),
        .init(["--read-only=false"], .refused("writable_rootfs")),
        .init(["--read-only=0"], .refused("writable_rootfs")),
        .init(["--init=f"], .refused("no_init")),
        .init(["--log-driver", "json-file"], .refused("container_logs")),
        .init(["--pids-limit", "0"], .refused("no_pids_limit")),
        .init(["--pids-limit", "-1"], .refused("no_pids_limit")),
        .init(["--pids-limit", "0x0"], .refused("no_pids_limit")),
        .init(["--pids-limit=+0"], .refused("no_pids_limit")),
        .init(["--pids-limit", "00"], .refused("no_pids_limit")),
        .init(["--cgroup-parent", "/"], .refused(nil)),
        .init(["--runtime", "crun"], .refused(nil)),
        .init(["--oom-kill-disable"], .refused(nil)),
        .init(["--sysctl", "kernel.core_pattern=|/x"], .refused(nil)),
        .init(["--link", "db"], .refused(nil)),
        .init(["--cpu-rt-runtime", "950000"], .refused(nil)),
        .init(["--device-read-bps", "/dev/sda:1mb"], .refused(nil)),
        .init(["--storage-opt", "dm.basesize=1G"], .refused(nil)),
        .init(["--annotation", "a=b"], .refused(nil)),
        .init(["-i", "--privileged", "-u", "1000"], .refused("privileged"), at: 1),
        .init(["--dns", "1.1.1.1", "-iu0"], .refused("root_user"), at: 2),
        // Config errors: break the stdio plan, or malformed.
        .init(["-t"], .invalid), .init(["-it"], .invalid), .init(["--tty"], .invalid), .init(["--tty=1"], .invalid),
        .init(["-d"], .invalid), .init(["--detach=t"], .invalid), .init(["-i=false"], .invalid), .init(["--interactive=0"], .invalid),
        .init(["--name", "x"], .invalid), .init(["--cidfile", "/tmp/c"], .invalid), .init(["--rm"], .invalid), .init(["--rm=false"], .invalid),
        .init(["--sig-proxy=false"], .invalid), .init(["-a", "stdout"], .invalid), .init(["--restart", "always"], .invalid),
        .init(["--label", "mcpproxy.managed=false"], .invalid), .init(["-lmcpproxy.instance=x"], .invalid), .init(["--label-file", "/l"], .invalid),
        .init(["myimage"], .invalid), .init(["--"], .invalid), .init(["--", "--privileged"], .invalid), .init(["--volume"], .invalid),
        .init(["-iu"], .invalid), .init(["--privileged=yes"], .invalid), .init(["--bogus"], .invalid), .init(["-X"], .invalid),
        .init(["-v", "relative/path:/x"], .invalid), .init(["-v", "/x:relative"], .invalid), .init(["-v", "a:b:c:d"], .invalid),
        .init(["-v", "/x:/y:ro,rw"], .invalid), .init(["-v", "/x:/y:exec"], .invalid),
        .init(["--mount", "type=bind,source=\"/a\",target=/b"], .invalid), .init(["--mount", "type=bind,src=/a,dst=/b,readonly=yes"], .invalid),
        .init(["--mount", "type=bind,src=/a"], .invalid), .init(["--mount", "type=bind,src=/a,dst=/b,bogus=1"], .invalid),
        .init(["--mount", "type=tmpfs,src=/a,dst=/b"], .invalid), .init(["--mount", "type=volume,src=/abs,dst=/b"], .invalid),
        .init(["--user", ""], .refused("image_user")), .init(["--user", ":1000"], .refused("image_user")),
        .init(["--user", "1000:"], .refused("image_user")), .init(["--user", "-5"], .invalid), .init(["--user", "a b"], .invalid),
        .init(["--memory", "0"], .invalid), .init(["--memory", "-1"], .invalid), .init(["-m", "lots"], .invalid),
        .init(["--memory-swap", "-1"], .invalid), .init(["--cpus", "0"], .invalid), .init(["--cpus", "-2"], .invalid),
        .init(["--pids-limit", "many"], .invalid), .init(["--oom-score-adj", "-1000"], .invalid),
        .init(["--memory-swappiness", "101"], .invalid), .init(["--cap-add", "NOT_A_CAP"], .invalid),
        .init(["--cap-add", "CHOWN,SYS_ADMIN"], .invalid), .init(["--cap-drop", "bogus"], .invalid),
        .init(["--ulimit", "nofile"], .invalid), .init(["--ulimit", "bogus=1"], .invalid), .init(["--ulimit", "nofile=a:b"], .invalid),
        .init(["--tmpfs", "relative"], .invalid), .init(["--workdir", "app"], .invalid), .init(["--network", "a b"], .invalid),
        .init(["--network", "none", "--network", "bridge"], .invalid, at: 2), .init(["--help"], .invalid),
        .init(["--env", "UNDECLARED"], .invalid), .init(["--env", "=x"], .invalid), .init(["--pull", "sometimes"], .invalid),
        .init(["--security-opt", "no-new-privileges=maybe"], .invalid), .init(["--hostname", "a\nb"], .invalid),
        // Accepted: safe options in every spelling.
        .init(["-i"], .accepted), .init(["--interactive=t"], .accepted), .init(["-t=false"], .accepted), .init(["--tty=0"], .accepted),
        .init(["-d=f"], .accepted), .init(["--privileged=false"], .accepted), .init(["--privileged=F"], .accepted),
        .init(["--use-api-socket=0"], .accepted), .init(["--read-only"], .accepted), .init(["--read-only=T"], .accepted),
        .init(["--init"], .accepted), .init(["--init=1"], .accepted), .init(["--oom-kill-disable=false"], .accepted),
        .init(["--user", "1000"], .accepted), .init(["-u1000:1000"], .accepted), .init(["-iu1000"], .accepted),
        .init(["--user=65534:65534"], .accepted), .init(["--user", "nobody"], .accepted), .init(["--user", "010"], .accepted),
        .init(["--cap-add", "NET_BIND_SERVICE"], .accepted), .init(["--cap-add=chown"], .accepted), .init(["--cap-add", "cap_kill"], .accepted),
        .init(["--cap-add", "FOWNER", "--cap-add", "FSETID"], .accepted), .init(["--cap-drop", "NET_RAW"], .accepted),
        .init(["--cap-drop=all"], .accepted), .init(["--security-opt", "no-new-privileges"], .accepted),
        .init(["--security-opt", "no-new-privileges=true"], .accepted), .init(["--security-opt", "no-new-privileges:1"], .accepted),
        .init(["--security-opt", "seccomp=builtin"], .accepted), .init(["--security-opt", "apparmor=docker-default"], .accepted),
        .init(["--network", "none"], .accepted), .init(["--net=bridge"], .accepted), .init(["--network", "my-net_1"], .accepted),
        .init(["--ipc", "private"], .accepted), .init(["--ipc=none"], .accepted), .init(["--cgroupns", "private"], .accepted),
        .init(["--pids-limit", "64"], .accepted), .init(["--pids-limit=0x40"], .accepted), .init(["--memory", "256m"], .accepted),
        .init(["-m1g"], .accepted), .init(["--memory-swap", "1g"], .accepted), .init(["--memory-reservation", "128m"], .accepted),
        .init(["--cpus", "0.5"], .accepted), .init(["-c", "512"], .accepted), .init(["--cpu-shares=1024"], .accepted),
        .init(["--cpuset-cpus", "0-1"], .accepted), .init(["--shm-size", "64m"], .accepted), .init(["--memory-swappiness", "0"], .accepted),
        .init(["--oom-score-adj", "500"], .accepted), .init(["--blkio-weight", "500"], .accepted),
        .init(["--ulimit", "nofile=64:64"], .accepted), .init(["--ulimit", "nproc=100"], .accepted),
        .init(["--sysctl", "net.ipv4.ip_unprivileged_port_start=0"], .accepted), .init(["--sysctl", "kernel.shmmax=1000"], .accepted),
        .init(["--tmpfs", "/cache"], .accepted), .init(["--tmpfs", "/cache:rw,size=16m"], .accepted),
        .init(["--workdir", "/app"], .accepted), .init(["-w/app"], .accepted), .init(["--hostname", "box"], .accepted), .init(["-hbox"], .accepted),
        .init(["--domainname", "example.test"], .accepted), .init(["--dns", "127.0.0.1"], .accepted), .init(["--dns-search", "x.test"], .accepted),
        .init(["--dns-option", "ndots:1"], .accepted), .init(["--dns-opt=ndots:2"], .accepted), .init(["--add-host=db:127.0.0.1"], .accepted),
        .init(["--expose", "8080"], .accepted), .init(["-p", "127.0.0.1:8080:80"], .accepted), .init(["-P"], .accepted),
        .init(["--health-cmd", "true"], .accepted), .init(["--health-interval=5s"], .accepted), .init(["--no-healthcheck"], .accepted),
        .init(["--stop-signal", "SIGINT"], .accepted), .init(["--stop-timeout", "5"], .accepted), .init(["--entrypoint", "/bin/sh"], .accepted),
        .init(["--label", "team=x"], .accepted), .init(["-lteam=y"], .accepted), .init(["--log-driver", "none"], .accepted),
        .init(["--log-opt", "max-size=1m"], .accepted), .init(["--platform", "linux/amd64"], .accepted), .init(["--pull", "never"], .accepted),
        .init(["-q"], .accepted), .init(["--disable-content-trust"], .accepted), .init(["--runtime", "runsc"], .accepted),
        .init(["--storage-opt", "size=1G"], .accepted), .init(["--network-alias", "srv"], .accepted), .init(["--ip", "172.30.0.9"], .accepted),
        .init(["-e", "X=1"], .accepted), .init(["--env=Y=2"], .accepted), .init(["-eDECLARED"], .accepted),
        .init(["-v", "/data:/d"], .accepted), .init(["-v/data:/d:rw"], .accepted), .init(["--volume=cache:/c"], .accepted),
        .init(["-v", "/scratch"], .accepted), .init(["-v", "/data:/d:ro,z"], .accepted),
        .init(["--mount", "type=bind,src=/data,dst=/d"], .accepted), .init(["--mount", "type=bind,\"src=/data/a,b\",dst=/d,ro"], .accepted),
        .init(["--mount", "type=tmpfs,dst=/t,tmpfs-size=1m"], .accepted), .init(["--mount", "type=volume,src=v,dst=/v,volume-nocopy"], .accepted),
        .init(["--mount", "type=bind,src=/data,dst=/d,bind-propagation=rprivate,readonly=false"], .accepted),
        .init(["-itd=false"], .invalid),
    ]

    static func server(_ extra: [String], allow: [String] = []) -> ServerConfig {
        F.server(env: ["DECLARED": "v"]) { $0.extraArgs = extra; $0.allow = allow; $0.image = "img:1" }
    }

    @Test("each option gets the outcome docker's reading of it calls for", arguments: rows)
    func outcome(_ row: Row) throws {
        let s = Self.server(row.extra)
        let path = "mcpServers.srv.isolation.extra_args[\(row.at)]"
        switch row.outcome {
        case .accepted:
            let plan = try F.plan(s)
            // What the planner believes matches the option set it was given.
            let facts = DockerPlanner.facts(of: plan)
            #expect(!facts.privileged && facts.noNewPrivileges && facts.readOnlyRootfs)
            #expect(facts.user.map { !DockerPlanner.isRootUser($0) } == true)
            #expect(Set(facts.capAdd).isSubset(of: DockerPlanner.safeCapabilities))
            #expect(facts.capDrop.contains("ALL"))
            #expect(facts.effectiveCapabilitySet.isSubset(of: DockerPlanner.safeCapabilities))
            #expect(facts.networks.count == 1 && facts.networks[0] != "host")
            #expect(facts.image == "img:1")
        case .refused(let allow):
            let error = try #require(throws: ProxyError.self) { try F.plan(s) }
            #expect(error.code == .refused, "\(error)")
            #expect(error.message.contains(path), "no \(path) in \(error.message)")
            if let allow {
                #expect(error.message.contains("add \"\(allow)\" to mcpServers.srv.isolation.allow"), "\(error.message)")
                // The allow name lifts it (unless something else in the row needs another).
                let lifted = Result { try F.plan(Self.server(row.extra, allow: [allow])) }
                if case .failure(let e as ProxyError) = lifted { #expect(!e.message.contains("add \"\(allow)\""), "\(e.message)") }
            } else {
                #expect(!error.message.contains("if this is really intended"), "\(error.message)")
            }
        case .invalid:
            let error = try #require(throws: ProxyError.self) { try F.plan(s) }
            #expect(error.code == .invalidConfig, "\(error)")
            #expect(error.message.contains(path), "no \(path) in \(error.message)")
        }
    }

    @Test("accepted options are planned in a canonical spelling docker reads the same way")
    func canonical() throws {
        let plan = try F.plan(Self.server(["-iu1000", "--privileged=F", "-hbox", "--cap-add=chown"]))
        let a = plan.arguments
        let image = try #require(a.firstIndex(of: "img:1"))
        #expect(Array(a[(image - 8)..<image]) == ["--interactive", "--user", "1000", "--privileged=false", "--hostname", "box", "--cap-add", "chown"])
        let facts = DockerPlanner.facts(of: plan)
        #expect(facts.user == "1000")
        #expect(facts.capAdd == ["CAP_CHOWN"])
        #expect(!facts.privileged)
    }

    @Test("config fields that become docker arguments are checked with their JSON path")
    func configFields() throws {
        func message(_ configure: @escaping (inout ServerIsolationConfig) -> Void,
                     global: @escaping (inout DockerIsolationConfig) -> Void = { _ in }) throws -> ProxyError {
            try #require(throws: ProxyError.self) { try F.plan(F.server("srv", configure), config: F.config(global)) }
        }
        #expect(try message { $0.image = "--privileged" }.message.contains("mcpServers.srv.isolation.image"))
        #expect(try message { $0.image = "-v/:/h" }.code == .invalidConfig)
        #expect(try message { $0.image = "python 3" }.code == .invalidConfig)
        #expect(try message { $0.user = "00" }.message.contains("mcpServers.srv.isolation.user"))
        #expect(try message({ _ in }, global: { $0.user = "65534:0" }).message.contains("docker_isolation.user"))
        #expect(try message { $0.networkMode = "container:x" }.message.contains("mcpServers.srv.isolation.network_mode"))
        #expect(try message { $0.memoryLimit = "0" }.message.contains("mcpServers.srv.isolation.memory_limit"))
        #expect(try message { $0.cpuLimit = "lots" }.message.contains("mcpServers.srv.isolation.cpu_limit"))
        #expect(try message({ _ in }, global: { $0.tmpfsSize = "64m,exec" }).message.contains("docker_isolation.tmpfs_size"))
        #expect(try message { $0.pidsLimit = 0 }.message.contains("no_pids_limit"))
        #expect(try message { $0.volumes = ["/var/lib/containerd:/c"] }.message.contains("volumes[0]"))
        #expect(try message({ _ in }, global: { $0.extraArgs = ["--privileged"] }).message.contains("docker_isolation.extra_args[0]"))
        #expect(try message({ _ in }, global: { $0.registry = "-bad" }).code == .invalidConfig)
    }

    @Test("a network in extra_args replaces network_mode instead of adding a second one")
    func networkReplaces() throws {
        let plan = try F.plan(F.server { $0.extraArgs = ["--net=none"]; $0.networkMode = "bridge" })
        #expect(DockerPlanner.facts(of: plan).networks == ["none"])
        #expect(F.values(after: "--network", in: plan.arguments) == ["none"])
    }

    @Test("the review reports what plan would refuse, with allow names, without throwing")
    func review() {
        let s = F.server { $0.extraArgs = ["--privileged=t", "--env-file", "/root/x", "-t"]; $0.image = "img:1" }
        let r = DockerPlanner.review(server: s, config: F.config(), context: F.context(), resolveSymlinks: { _ in nil })
        #expect(r.refusals.map(\.allow) == ["privileged", nil])
        #expect(r.refusals[0].message.hasPrefix("mcpServers.srv.isolation.extra_args[0]"))
        #expect(r.invalids.count == 1 && r.invalids[0].contains("extra_args[3]"))
    }
}
