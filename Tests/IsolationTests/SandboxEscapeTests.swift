import Foundation
import Testing
@testable import Isolation
import ProxyCore
#if canImport(Glibc)
import Glibc
#endif

/// The escape battery: real launcher, real kernel (Landlock, seccomp, namespaces, rlimits), a probe
/// server of the project's own whose tools try to break out. Every escape must be denied while the
/// allowed work succeeds. Runs as root here and in CI, so the uid drop path is exercised.
@Suite(.serialized) struct SandboxEscapeTests {
    static let nproc = 32

    func probeServer(_ edit: (inout ServerIsolationConfig) -> Void = { _ in }) -> ServerConfig {
        var s = ServerConfig(name: "probe")
        s.command = SandboxProducts.probe
        var iso = ServerIsolationConfig()
        iso.mode = .sandbox
        edit(&iso)
        s.isolation = iso
        return s
    }

    func batteryConfig() -> ProxyConfig {
        var c = ProxyConfig()
        c.sandbox.memoryLimit = "256m"
        c.sandbox.maxProcesses = Self.nproc
        return c
    }

    func requireProducts() throws {
        for p in [SandboxProducts.launcher, SandboxProducts.probe] {
            try #require(FileManager.default.isExecutableFile(atPath: p), "\(p) is missing: run swift build first")
        }
        try #require(geteuid() == 0, "the escape battery exercises the uid drop and runs as root (as in CI)")
        try #require(SandboxKernel.current.landlockABI >= 6, "this kernel lacks Landlock ABI >= 6")
    }

    /// Expects a probe result that reports a denied attempt.
    func denied(_ r: [String: Any], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r["ok"] as? Bool == false, "\(what) was NOT denied: \(r)", sourceLocation: sourceLocation)
    }

    func allowed(_ r: [String: Any], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r["ok"] as? Bool == true, "\(what) should work: \(r)", sourceLocation: sourceLocation)
    }

    /// One full battery in a fresh world and a fresh sandbox.
    func runBattery() throws {
        let world = try SandboxWorld()
        let listener = try LoopbackListener()
        let unixListener = try AbstractUnixListener()
        let sameUID = try OutsideProcess(uid: 65534)
        let rootProc = try OutsideProcess()

        let plan = try world.plan(probeServer {
            $0.networkMode = "none"
            $0.workingDir = world.workDir
            // read_paths grant no execute right: the setuid binary's dir is granted read+write+exec.
            $0.writePaths = [world.setuidDir]
        }, config: batteryConfig())
        let session = try ProbeSession(plan: plan)
        defer { session.stop() }

        let initialized = try session.initialize()
        #expect((initialized["result"] as? [String: Any])?["serverInfo"] != nil, "initialize failed: \(initialized); stderr: \(session.stderr)")
        let tools = try session.request("tools/list")
        #expect(((tools["result"] as? [String: Any])?["tools"] as? [Any])?.isEmpty == false)

        // Allowed work.
        allowed(try session.probe("echo", ["text": "hello"]), "echo")
        allowed(try session.probe("write_file", ["path": world.workDir + "/ok.txt", "text": "written"]), "write in working_dir")
        #expect((try? String(contentsOfFile: world.workDir + "/ok.txt", encoding: .utf8)) == "written")
        allowed(try session.probe("read_file", ["path": "/usr/bin/id"]), "read /usr")
        allowed(try session.probe("list_dir", ["path": "/usr"]), "list /usr")
        allowed(try session.probe("read_file", ["path": "/etc/passwd"]), "read /etc/passwd")
        allowed(try session.probe("write_file", ["path": "/dev/null", "text": "x"]), "write /dev/null")
        allowed(try session.probe("read_file", ["path": "/dev/urandom"]), "read /dev/urandom")
        let tmp = plan.environment["TMPDIR"]!
        allowed(try session.probe("write_file", ["path": tmp + "/scratch", "text": "t"]), "write in TMPDIR")
        let cwd = try session.probe("cwd")
        #expect(cwd["cwd"] as? String == world.workDir)

        // Identity and hardening flags.
        let ids = try session.probe("ids")
        #expect(ids["uid"] as? Int == 65534 && ids["euid"] as? Int == 65534 && ids["gid"] as? Int == 65534)
        #expect(ids["no_new_privs"] as? Int == 1)
        #expect(ids["seccomp"] as? Int == 2, "seccomp filter mode expected: \(ids)")
        #expect(ids["pgid"] as? Int == ids["pid"] as? Int, "the server must lead its own process group: \(ids)")
        let limits = try session.probe("rlimits")
        #expect(limits["nproc"] as? Int == Self.nproc)
        #expect(limits["nofile"] as? Int == 1024)
        #expect(limits["core"] as? Int == 0)
        #expect(limits["as"] as? Int == 256 << 20)

        // No host secrets and no policy in the environment.
        let env = (try session.probe("env"))["env"] as? [String] ?? []
        #expect(!env.isEmpty)
        #expect(!env.contains { $0.contains("host-secret-do-not-leak") })
        #expect(!env.contains { $0.contains("--rx") || $0.contains("--rw") })
        #expect(env.contains("HOME=\(plan.environment["HOME"]!)"))

        // Filesystem escapes.
        denied(try session.probe("read_file", ["path": world.sshKey]), "read planted ~/.ssh/id_rsa")
        denied(try session.probe("read_file", ["path": world.apiKeyFile]), "read the proxy's API key file")
        denied(try session.probe("list_dir", ["path": world.dataDir]), "list the proxy's data dir")
        denied(try session.probe("read_file", ["path": world.root + "/outside/.env"]), "read a .env outside the working dir")
        denied(try session.probe("write_file", ["path": world.outsideDir + "/pwned", "text": "x"]), "write outside the allowlist")
        #expect(!FileManager.default.fileExists(atPath: world.outsideDir + "/pwned"))
        denied(try session.probe("write_file", ["path": "/etc/mcpx-pwned", "text": "x"]), "write /etc")
        denied(try session.probe("read_file", ["path": "/etc/shadow"]), "read /etc/shadow")
        denied(try session.probe("list_dir", ["path": world.home]), "list the real home")
        denied(try session.probe("write_file", ["path": "/usr/mcpx-pwned", "text": "x"]), "write /usr")
        denied(try session.probe("read_file", ["path": "/proc/\(sameUID.pid)/environ"]), "read another process's environ")

        // Privilege: a setuid-root binary runs without gaining root (no_new_privs).
        let suid = try session.probe("exec", ["path": world.setuidDir + "/id", "args": ["-u"]])
        allowed(suid, "exec the setuid binary")
        #expect(suid["stdout"] as? String == "65534\n", "setuid gained privilege: \(suid)")

        // Network: network_mode none.
        denied(try session.probe("tcp_connect", ["host": "127.0.0.1", "port": listener.port]), "TCP connect to a loopback listener")
        denied(try session.probe("unix_connect", ["name": unixListener.name]), "connect to an abstract unix socket outside")

        // Processes outside the sandbox.
        denied(try session.probe("kill", ["pid": Int(sameUID.pid), "signal": Int(SIGTERM)]), "signal a same-uid process outside")
        denied(try session.probe("kill", ["pid": Int(rootProc.pid), "signal": Int(SIGTERM)]), "signal a root process outside")
        denied(try session.probe("ptrace", ["pid": Int(sameUID.pid)]), "ptrace a same-uid process outside")
        denied(try session.probe("ptrace", ["pid": Int(rootProc.pid)]), "ptrace a root process outside")
        usleep(50_000)
        #expect(sameUID.isAlive && rootProc.isAlive, "a process outside the sandbox was killed")

        // Kernel attack surface.
        denied(try session.probe("unshare"), "create user+network namespaces")
        denied(try session.probe("mount"), "mount a tmpfs")

        // Resource bombs.
        let fork = try session.probe("fork_bomb", ["count": 1000])
        denied(fork, "fork 1000 children")
        #expect((fork["forked"] as? Int ?? 1000) < Self.nproc, "fork bomb got \(fork)")
        denied(try session.probe("memory_bomb", ["mb": 1024]), "allocate 1 GiB")

        // Still answering after all of that.
        allowed(try session.probe("echo", ["text": "still here"]), "echo after the battery")
        #expect(session.stderr.contains("mcpproxy-sandbox: server \"probe\": confined; enforced:"), "status line missing: \(session.stderr)")
        #expect(session.stderr.contains("not enforced: none"), "status: \(session.stderr)")
    }

    @Test func escapeBatteryIsDenied() throws {
        try requireProducts()
        try runBattery()
    }

    @Test func escapeBatteryUnderCPULoad() throws {
        try requireProducts()
        let load = CPULoad(threads: 4)
        defer { load.stop() }
        for _ in 0..<5 { try runBattery() }
    }

    @Test func tcpConnectAllowlistOnTheHostNetwork() throws {
        try requireProducts()
        let world = try SandboxWorld()
        let listener = try LoopbackListener()
        let other = listener.port == 65535 ? 1 : listener.port + 1

        let closed = try ProbeSession(plan: world.plan(probeServer { $0.allowTCPConnect = [other] }, config: batteryConfig()))
        defer { closed.stop() }
        try closed.initialize()
        let r = try closed.probe("tcp_connect", ["host": "127.0.0.1", "port": listener.port])
        denied(r, "TCP connect to a port outside allow_tcp_connect")
        #expect(r["errno"] as? Int == Int(EACCES), "Landlock denies connect with EACCES: \(r)")

        let open = try ProbeSession(plan: world.plan(probeServer { $0.allowTCPConnect = [listener.port] }, config: batteryConfig()))
        defer { open.stop() }
        try open.initialize()
        allowed(try open.probe("tcp_connect", ["host": "127.0.0.1", "port": listener.port]), "TCP connect to an allowed port")
    }

    @Test func launcherRefusesAMalformedPolicy() throws {
        try requireProducts()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: SandboxProducts.launcher)
        p.arguments = ["--rx", "relative/path", "--", "/bin/true"]
        let err = Pipe()
        p.standardError = err
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == SandboxPlanner.ExitStatus.usage)
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.hasPrefix("mcpproxy-sandbox: "))
    }

    @Test func launcherReportsACommandItCannotExec() throws {
        try requireProducts()
        let world = try SandboxWorld()
        var plan = try world.plan(probeServer(), config: batteryConfig())
        // Point the command at a file outside the allowlist: Landlock denies the exec.
        let target = world.outsideDir + "/tool"
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: target)
        let dash = plan.arguments.firstIndex(of: "--")!
        plan.arguments = Array(plan.arguments[...dash]) + [target]
        let session = try ProbeSession(plan: plan)
        #expect(session.waitForExit(timeout: 30) == SandboxPlanner.ExitStatus.exec)
        usleep(50_000)
        #expect(session.stderr.contains("cannot exec"))
    }

    @Test func memoryAndCPULimitsGoToACgroup() throws {
        try requireProducts()
        try #require(SandboxKernel.current.cgroupsWritable, "cgroups are not writable here")
        let world = try SandboxWorld()
        var s = probeServer { $0.memoryLimit = "128m"; $0.cpuLimit = "0.5" }
        s.name = "cgprobe"
        let plan = try world.plan(s, config: batteryConfig())
        #expect(plan.enforcement["memory"] == "128m (cgroup)")
        let session = try ProbeSession(plan: plan)
        defer { session.stop() }
        try session.initialize()
        let cg = try session.probe("read_file", ["path": "/proc/self/cgroup"])
        let text = cg["content"] as? String ?? ""
        #expect(text.contains("/mcpproxy/cgprobe"), "not in the server's cgroup: \(cg)")
        let v2 = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")
        let memFile = v2 ? "/sys/fs/cgroup/mcpproxy/cgprobe/memory.max" : "/sys/fs/cgroup/memory/mcpproxy/cgprobe/memory.limit_in_bytes"
        let limit = try String(contentsOfFile: memFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(limit == String(128 << 20))
        #expect(session.stderr.contains("cgroup"), "status: \(session.stderr)")
    }

    @Test func dynamicSwiftServerFindsItsRuntime() throws {
        try requireProducts()
        try #require(FileManager.default.isExecutableFile(atPath: SandboxProducts.fixture))
        let world = try SandboxWorld()
        var s = ServerConfig(name: "fixture")
        s.command = SandboxProducts.fixture
        var iso = ServerIsolationConfig()
        iso.mode = .sandbox
        iso.networkMode = "none"
        s.isolation = iso
        let plan = try world.plan(s)
        let session = try ProbeSession(plan: plan)
        defer { session.stop() }
        let initialized = try session.initialize()
        #expect((initialized["result"] as? [String: Any])?["serverInfo"] != nil, "initialize: \(initialized); stderr: \(session.stderr)")
        let echo = try session.request("tools/call", ["name": "echo", "arguments": ["text": "swift in a sandbox"]])
        #expect("\(echo)".contains("swift in a sandbox"), "echo: \(echo)")
    }

    @Test func realPyPIServerAnswersInTheSandbox() throws {
        try requireProducts()
        let python = (ProcessInfo.processInfo.environment["MCPPROXY_SANDBOX_VENV"] ?? "/opt/mcpproxy-test/venv-sandbox") + "/bin/python"
        try #require(FileManager.default.isExecutableFile(atPath: python), "\(python) missing: run scripts/setup.sh")
        let world = try SandboxWorld()
        var s = ServerConfig(name: "time")
        s.command = python
        s.args = ["-m", "mcp_server_time", "--local-timezone", "UTC"]
        var iso = ServerIsolationConfig()
        iso.mode = .sandbox
        iso.networkMode = "none"
        s.isolation = iso
        let session = try ProbeSession(plan: world.plan(s))
        defer { session.stop() }
        let initialized = try session.initialize()
        let info = (initialized["result"] as? [String: Any])?["serverInfo"] as? [String: Any]
        #expect(info?["name"] as? String == "mcp-time", "initialize: \(initialized); stderr: \(session.stderr)")
        let list = try session.request("tools/list")
        let names = (((list["result"] as? [String: Any])?["tools"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
        #expect(names.contains("get_current_time"))
        let call = try session.request("tools/call", ["name": "get_current_time", "arguments": ["timezone": "UTC"]])
        let content = ((call["result"] as? [String: Any])?["content"] as? [[String: Any]])?.first?["text"] as? String
        #expect(content?.contains("\"timezone\": \"UTC\"") == true || content?.contains("\"timezone\":\"UTC\"") == true,
                "get_current_time: \(call); stderr: \(session.stderr)")
    }
}
