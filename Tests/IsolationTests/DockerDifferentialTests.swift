import Foundation
import Testing
@testable import Isolation
import ProxyCore

/// The planner's beliefs against the real engine: option variants (a table, then random ones
/// from a fixed seed) go through the planner; for every variant it accepts, `docker create` runs
/// the planned argv and `docker inspect` shows what docker actually configured, which must be
/// what `DockerPlanner.facts(of:)` says (user, capabilities, privileged, read-only root, network,
/// namespaces, security options, limits, mounts, tmpfs, ulimits, groups, log driver, env).
/// The test itself is in the serialized real-engine suite (below), so its stream of managed
/// containers never overlaps the orphan-cleanup test.
enum DockerDifferentialTests {
    /// One generated variant: extra_args, optional config fields and allow names.
    struct Variant: CustomStringConvertible {
        var extra: [String]
        var allow: [String] = []
        var user: String?
        var network: String?
        var memory: String?
        var volumes: [String]?
        var description: String {
            "extra=\(extra) allow=\(allow)" + (user.map { " user=\($0)" } ?? "") + (network.map { " network=\($0)" } ?? "")
                + (memory.map { " memory=\($0)" } ?? "") + (volumes.map { " volumes=\($0)" } ?? "")
        }
    }

    /// SplitMix64: a small deterministic generator, so a failure reproduces.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let trueSpellings = ["1", "t", "T", "TRUE", "true", "True"]
    static let falseSpellings = ["0", "f", "F", "FALSE", "false", "False"]

    /// A value option, with values from harmless to hostile, and the allow names that could
    /// make the planner accept the hostile ones.
    struct Fragment {
        let name: String
        let values: [String]
        let allow: [String]
    }

    static func fragments(dir: String) -> [Fragment] {
        [
            .init(name: "user", values: ["1000", "1000:1000", "65534", "0", "00", "+0", "65534:0", "root", "nobody", "010", "4242:4343"], allow: ["root_user"]),
            .init(name: "cap-add", values: ["CHOWN", "chown", "cap_kill", "NET_BIND_SERVICE", "fowner", "SYS_ADMIN", "NET_RAW", "ALL", "SYS_MODULE", "dac_read_search"],
                  allow: ["cap_sys_admin", "extra_capabilities", "privileged"]),
            .init(name: "cap-drop", values: ["NET_RAW", "all", "CHOWN", "cap_kill"], allow: []),
            .init(name: "security-opt", values: ["no-new-privileges", "no-new-privileges=true", "no-new-privileges:false", "no-new-privileges=f",
                                                 "no-new-privileges=1", "seccomp=unconfined", "apparmor=unconfined", "label=disable"],
                  allow: ["new_privileges", "unconfined"]),
            .init(name: "network", values: ["none", "bridge", "host", "container:nope"], allow: ["host_network"]),
            .init(name: "ipc", values: ["private", "shareable", "none", "host"], allow: ["host_ipc"]),
            .init(name: "pid", values: ["host"], allow: ["host_pid"]),
            .init(name: "cgroupns", values: ["private", "host"], allow: ["unconfined"]),
            .init(name: "pids-limit", values: ["64", "0x40", "010", "0", "-1", "100"], allow: ["no_pids_limit"]),
            .init(name: "memory", values: ["256m", "1g", "64M", "0", "300000000"], allow: []),
            .init(name: "memory-swap", values: ["1g", "2g"], allow: []),
            .init(name: "cpus", values: ["0.5", "2", "1.25"], allow: []),
            .init(name: "volume", values: ["\(dir):/data", "\(dir):/data:rw", "\(dir):/data:ro", "\(dir)/../\((dir as NSString).lastPathComponent):/d2",
                                           "/var/run/docker.sock:/s", "/etc:/e", "mcpproxy-diff-vol:/vol", "/anon"],
                  allow: ["docker_socket", "broad_mount"]),
            .init(name: "mount", values: ["type=bind,src=\(dir),dst=/m", "type=bind,\"source=\(dir)\",target=/m,readonly=false",
                                          "type=bind,src=\(dir),dst=/m,ro=1", "type=tmpfs,dst=/t,tmpfs-size=1048576",
                                          "type=bind,src=/var/run/docker.sock,dst=/s", "TYPE=BIND,SRC=\(dir),DST=/m2,READONLY",
                                          "type=volume,src=mcpproxy-diff-vol,dst=/v,volume-opt=device=/etc"],
                  allow: ["docker_socket"]),
            .init(name: "tmpfs", values: ["/cache", "/cache:rw,size=1m", "/cache2:exec"], allow: []),
            .init(name: "ulimit", values: ["nofile=64:64", "nproc=100:200", "nofile=128"], allow: []),
            .init(name: "group-add", values: ["1000", "0", "docker", "audio"], allow: ["group_add", "root_user", "docker_socket"]),
            .init(name: "env", values: ["X=1", "EMPTY="], allow: []),
            .init(name: "workdir", values: ["/app", "/"], allow: []),
            .init(name: "hostname", values: ["box"], allow: []),
            .init(name: "label", values: ["team=x", "mcpproxy.managed=false"], allow: []),
            .init(name: "log-driver", values: ["none", "json-file"], allow: ["container_logs"]),
            .init(name: "oom-score-adj", values: ["100", "-500"], allow: []),
            .init(name: "shm-size", values: ["64m"], allow: []),
            .init(name: "stop-timeout", values: ["5"], allow: []),
            .init(name: "env-file", values: ["/etc/hostname"], allow: []),
            .init(name: "device", values: ["/dev/null"], allow: ["devices"]),
        ]
    }

    /// Boolean options: true spellings, false spellings, and the allow name true needs.
    static let booleans: [(name: String, allow: String?)] = [
        ("privileged", "privileged"), ("read-only", nil), ("init", nil), ("interactive", nil), ("tty", nil), ("detach", nil),
        ("use-api-socket", nil), ("oom-kill-disable", nil), ("no-healthcheck", nil),
    ]

    /// A value option in one of docker's spellings.
    static func spell(_ name: String, _ value: String, _ rng: inout Seeded) -> [String] {
        let short = DockerCLI.shorthands.first { $0.value == name }?.key
        switch Int.random(in: 0..<(short == nil ? 2 : 5), using: &rng) {
        case 0: return ["--\(name)=\(value)"]
        case 1: return ["--\(name)", value]
        case 2: return ["-\(short!)\(value)"]
        case 3: return ["-i\(short!)", value]
        default: return ["-\(short!)=\(value)"]
        }
    }

    static func spellBool(_ name: String, _ on: Bool, _ rng: inout Seeded) -> [String] {
        let short = DockerCLI.shorthands.first { $0.value == name }?.key
        if on && Int.random(in: 0..<3, using: &rng) == 0 { return short.map { ["-\($0)"] } ?? ["--\(name)"] }
        let spelling = (on ? trueSpellings : falseSpellings).randomElement(using: &rng)!
        if let short, Bool.random(using: &rng) { return ["-\(short)=\(spelling)"] }
        return ["--\(name)=\(spelling)"]
    }

    static func table(dir: String) -> [Variant] {
        var t: [Variant] = [
            Variant(extra: []),
            Variant(extra: ["-iu1000"]), Variant(extra: ["-iu0"]), Variant(extra: ["-iu0"], allow: ["root_user"]),
            Variant(extra: ["-iv\(dir):/x"]), Variant(extra: ["-iv/var/run/docker.sock:/s"]),
            Variant(extra: ["-iv/var/run/docker.sock:/s"], allow: ["docker_socket"]),
            Variant(extra: ["--user", "65534:0"]), Variant(extra: ["--user", "65534:0"], allow: ["root_user"]),
            Variant(extra: ["--privileged=t"]), Variant(extra: ["--privileged=t"], allow: ["privileged"]),
            Variant(extra: ["--privileged=F"]), Variant(extra: ["--privileged=0", "--privileged"], allow: ["privileged"]),
            Variant(extra: ["--privileged", "--privileged=false"]),
            Variant(extra: ["--read-only=f"], allow: ["writable_rootfs"]), Variant(extra: ["--read-only=False"]),
            Variant(extra: ["--init=0"], allow: ["no_init"]),
            Variant(extra: ["--security-opt", "no-new-privileges=f"], allow: ["new_privileges"]),
            Variant(extra: ["--security-opt", "no-new-privileges:0"], allow: ["new_privileges"]),
            Variant(extra: ["--cap-add", "chown", "--cap-drop", "chown"]),
            Variant(extra: ["--cap-add", "ALL"], allow: ["privileged"]),
            Variant(extra: ["--cap-add", "sys_admin"], allow: ["cap_sys_admin"]),
            Variant(extra: ["--mount", "\"type=bind\",\"source=\(dir)\",target=/q"]),
            Variant(extra: ["--mount", "type=bind,src=\(dir),dst=/q,readonly=0"]),
            Variant(extra: ["--mount", "type=bind,src=/tmp,src=\(dir),dst=/q"]),
            Variant(extra: ["--net=none"]), Variant(extra: ["--net", "bridge"]), Variant(extra: ["--network=host"], allow: ["host_network"]),
            Variant(extra: ["--pids-limit", "0x40"]), Variant(extra: ["--pids-limit", "-1"], allow: ["no_pids_limit"]),
            Variant(extra: ["-m1g"]), Variant(extra: ["--memory", "1g", "--memory-swap", "2g"]), Variant(extra: ["--cpus", "2"]),
            Variant(extra: ["--ulimit", "nofile=64:64"]), Variant(extra: ["--ulimit", "nproc=10"]),
            Variant(extra: ["--tmpfs", "/cache:rw,size=1m"]), Variant(extra: ["--group-add", "1000"], allow: ["group_add"]),
            Variant(extra: ["--log-driver", "json-file"], allow: ["container_logs"]),
            Variant(extra: ["-e", "X=1", "-eY=2", "--env=Z=3"]), Variant(extra: ["--ipc", "shareable"]),
            Variant(extra: ["--pid=host"], allow: ["host_pid"]), Variant(extra: ["--userns", "host"], allow: ["unconfined"]),
            Variant(extra: ["--security-opt", "seccomp=unconfined"], allow: ["unconfined"]),
            Variant(extra: ["--device", "/dev/null"], allow: ["devices"]),
            Variant(extra: ["-w/app", "-hbox", "-lteam=a"]),
            Variant(extra: [], user: "4242:4343"), Variant(extra: [], user: "00"), Variant(extra: [], network: "none"),
            Variant(extra: [], memory: "128m"), Variant(extra: [], volumes: ["\(dir):/v"]), Variant(extra: [], volumes: ["\(dir):/v:rw"]),
            Variant(extra: [], allow: ["image_user"]), Variant(extra: [], allow: ["default_capabilities"]),
            Variant(extra: ["--cap-add", "NET_RAW"], allow: ["default_capabilities"]),
        ]
        for s in trueSpellings { t.append(Variant(extra: ["--privileged=\(s)"], allow: ["privileged"])) }
        for s in falseSpellings { t.append(Variant(extra: ["--privileged=\(s)"])) }
        return t
    }

    static func random(dir: String, count: Int, seed: UInt64) -> [Variant] {
        var rng = Seeded(state: seed)
        let frags = fragments(dir: dir)
        var out: [Variant] = []
        for _ in 0..<count {
            var v = Variant(extra: [])
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                if Int.random(in: 0..<4, using: &rng) == 0 {
                    let b = booleans.randomElement(using: &rng)!
                    let on = Bool.random(using: &rng)
                    v.extra += spellBool(b.name, on, &rng)
                    if on, let a = b.allow, Bool.random(using: &rng) { v.allow.append(a) }
                } else {
                    let f = frags.randomElement(using: &rng)!
                    v.extra += spell(f.name, f.values.randomElement(using: &rng)!, &rng)
                    if !f.allow.isEmpty, Int.random(in: 0..<3, using: &rng) == 0 { v.allow.append(f.allow.randomElement(using: &rng)!) }
                }
            }
            switch Int.random(in: 0..<8, using: &rng) {
            case 0: v.user = ["1000:1000", "0", "+0", "65534:00"].randomElement(using: &rng)!
            case 1: v.network = ["none", "bridge"].randomElement(using: &rng)!
            case 2: v.memory = ["128m", "1g"].randomElement(using: &rng)!
            case 3: v.volumes = ["\(dir):/cfg"]
            default: break
            }
            out.append(v)
        }
        return out
    }

    /// Compares the planner's facts with `docker inspect`; returns the disagreements.
    static func compare(_ facts: DockerRunFacts, _ inspect: [String: Any]) -> [String] {
        var out: [String] = []
        let config = inspect["Config"] as? [String: Any] ?? [:]
        let host = inspect["HostConfig"] as? [String: Any] ?? [:]
        func check<T: Equatable>(_ what: String, _ believed: T, _ actual: T) {
            if believed != actual { out.append("\(what): planner \(believed), docker \(actual)") }
        }
        func strings(_ v: Any?) -> [String] { v as? [String] ?? [] }
        func int(_ v: Any?) -> Int64? { (v as? NSNumber)?.int64Value }
        // Without --user (or --workdir, a log driver) the image's or daemon's setting applies.
        if let user = facts.user { check("user", user, config["User"] as? String ?? "") }
        check("image", facts.image ?? "", config["Image"] as? String ?? "")
        check("cap_add", Set(facts.capAdd), Set(strings(host["CapAdd"]).map(DockerCLI.normalizeCapability)))
        check("cap_drop", Set(facts.capDrop), Set(strings(host["CapDrop"]).map(DockerCLI.normalizeCapability)))
        check("privileged", facts.privileged, host["Privileged"] as? Bool ?? false)
        check("read_only_rootfs", facts.readOnlyRootfs, host["ReadonlyRootfs"] as? Bool ?? false)
        check("init", facts.initProcess ?? false, host["Init"] as? Bool ?? false)
        check("network", facts.networks.last ?? "default", host["NetworkMode"] as? String ?? "")
        check("pid", facts.pidMode ?? "", host["PidMode"] as? String ?? "")
        if let ipc = facts.ipcMode { check("ipc", ipc, host["IpcMode"] as? String ?? "") }
        check("uts", facts.utsMode ?? "", host["UTSMode"] as? String ?? "")
        check("userns", facts.usernsMode ?? "", host["UsernsMode"] as? String ?? "")
        if let cg = facts.cgroupnsMode { check("cgroupns", cg, host["CgroupnsMode"] as? String ?? "") }
        check("security_opt", facts.recordedSecurityOpts, strings(host["SecurityOpt"]))
        check("no_new_privileges", facts.noNewPrivileges, DockerRunFacts(securityOpts: strings(host["SecurityOpt"])).noNewPrivileges)
        let pids = int(host["PidsLimit"])
        check("pids_limit", facts.pidsLimit.map { $0 > 0 ? $0 : 0 } ?? 0, pids.map { $0 > 0 ? $0 : 0 } ?? 0)
        check("memory", facts.memory ?? 0, int(host["Memory"]) ?? 0)
        check("memory_swap", facts.memorySwap ?? 0, int(host["MemorySwap"]) ?? 0)
        check("nano_cpus", facts.nanoCPUs ?? 0, int(host["NanoCpus"]) ?? 0)
        check("binds", facts.binds.sorted(), strings(host["Binds"]).sorted())
        check("anonymous_volumes", Set(facts.anonymousVolumes), Set((config["Volumes"] as? [String: Any] ?? [:]).keys))
        let mounts = (host["Mounts"] as? [[String: Any]] ?? []).map {
            DockerRunFacts.MountFact(type: $0["Type"] as? String ?? "", source: $0["Source"] as? String ?? "",
                                     target: $0["Target"] as? String ?? "", readOnly: $0["ReadOnly"] as? Bool ?? false)
        }
        check("mounts", facts.recordedMounts, mounts)
        check("tmpfs", facts.tmpfs, host["Tmpfs"] as? [String: String] ?? [:])
        check("group_add", facts.groupAdd, strings(host["GroupAdd"]))
        if let driver = facts.logDriver { check("log_driver", driver, (host["LogConfig"] as? [String: Any])?["Type"] as? String ?? "") }
        check("devices", facts.devices.count, (host["Devices"] as? [Any])?.count ?? 0)
        var ulimits: [String: String] = [:]
        for u in host["Ulimits"] as? [[String: Any]] ?? [] {
            ulimits[u["Name"] as? String ?? "?"] = "\(int(u["Soft"]) ?? -9):\(int(u["Hard"]) ?? -9)"
        }
        check("ulimits", facts.ulimits, ulimits)
        if let workdir = facts.workdir { check("workdir", workdir, config["WorkingDir"] as? String ?? "") }
        let env = Set(strings(config["Env"]))
        for e in facts.env where e.contains("=") && !env.contains(e) { out.append("env: planner \(e), docker has no such entry") }
        return out
    }

}

extension DockerEngineTests {
    typealias D = DockerDifferentialTests

    @Test("differential: for every variant the planner accepts, docker configures what the planner believes")
    func plannerMatchesEngine() throws {
        try DockerEngine.requireReady()
        let base = NSTemporaryDirectory() + "mcpproxy-diff-\(UUID().uuidString.prefix(8))"
        let dir = base + "/data"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var context = DockerEngine.context()
        defer {
            for id in DockerEngine.containers(label: "mcpproxy.instance=\(context.instanceID)") { _ = DockerEngine.docker(["rm", "-f", "-v", id]) }
            _ = DockerEngine.docker(["volume", "rm", "-f", "mcpproxy-diff-vol"])
            try? FileManager.default.removeItem(atPath: base)
            try? FileManager.default.removeItem(atPath: context.runtimeDir)
        }
        let variants = D.table(dir: dir) + D.random(dir: dir, count: 260, seed: 0x1509)
        var accepted = 0, refused = 0, disagreements: [String] = []
        for (n, v) in variants.enumerated() {
            context.launchID = String(format: "diff%08d", n)
            let server = DockerEngine.server("diff", env: ["DECLARED": "v"]) {
                $0.extraArgs = v.extra; $0.allow = v.allow; $0.networkMode = v.network ?? "none"
                $0.user = v.user; $0.memoryLimit = v.memory; $0.volumes = v.volumes
            }
            let plan: LaunchPlan
            do { plan = try DockerEngine.plan(server, context: context) } catch { refused += 1; continue }
            accepted += 1
            let facts = DockerPlanner.facts(of: plan)
            // The planner's own invariants hold for what it accepts, unless an allow name lifts one.
            if !v.allow.contains("privileged") && (facts.privileged || facts.capAdd.contains("ALL")) { disagreements.append("\(v): privileged without allow") }
            if !v.allow.contains("root_user") && !v.allow.contains("image_user"), facts.user.map(DockerPlanner.isRootUser) ?? true {
                disagreements.append("\(v): root user without allow")
            }
            if !v.allow.contains("new_privileges") && !facts.noNewPrivileges { disagreements.append("\(v): new privileges without allow") }
            let capAllowances: Set<String> = ["privileged", "cap_sys_admin", "extra_capabilities", "default_capabilities"]
            if capAllowances.isDisjoint(with: v.allow), !facts.effectiveCapabilitySet.isSubset(of: DockerPlanner.safeCapabilities) {
                disagreements.append("\(v): capabilities \(facts.effectiveCapabilitySet.sorted()) beyond the safe set without allow")
            }
            let createArgs = ["create"] + plan.arguments.dropFirst()
            let created = DockerEngine.docker(createArgs, env: plan.environment)
            guard created.status == 0 else {
                disagreements.append("\(v): the planner accepted it, docker create refused: \(created.stderr.prefix(300))")
                continue
            }
            let id = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let inspect = try DockerEngine.inspect(id)
            for d in D.compare(facts, inspect) { disagreements.append("\(v): \(d)") }
            _ = DockerEngine.docker(["rm", "-f", "-v", id])
        }
        print("docker differential: \(variants.count) variants, \(accepted) accepted and created, \(refused) refused, \(disagreements.count) disagreements")
        #expect(variants.count >= 300)
        #expect(accepted >= 100, "only \(accepted) variants were accepted")
        #expect(refused >= 50)
        let listed = disagreements.prefix(40).joined(separator: "\n")
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements:\n\(listed)")
    }
}

extension DockerRunFacts {
    /// Facts holding only security options, to read `noNewPrivileges` from docker inspect's list.
    init(securityOpts: [String]) {
        self.init()
        self.securityOpts = securityOpts
    }
}
