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
@Suite(.serialized, .holdsAThread) struct SandboxEscapeTests {
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

        let plan = try world.plan(probeServer {
            $0.networkMode = "none"
            $0.workingDir = world.workDir
            // read_paths grant no execute right: the setuid binary's dir is granted read+write+exec.
            $0.writePaths = [world.setuidDir]
        }, config: batteryConfig())
        let serverUID = try #require(UInt32(Self.option(plan, "--uid") ?? ""))
        #expect((1_900_000_000...1_900_065_535).contains(serverUID), "the server's own uid from sandbox.uid_range")
        let sameUID = try OutsideProcess(uid: serverUID)
        let rootProc = try OutsideProcess()
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
        let tmp = SandboxPlanner.serverEnvironment(of: plan)["TMPDIR"]!
        allowed(try session.probe("write_file", ["path": tmp + "/scratch", "text": "t"]), "write in TMPDIR")
        let cwd = try session.probe("cwd")
        #expect(cwd["cwd"] as? String == world.workDir)

        // Identity and hardening flags.
        let ids = try session.probe("ids")
        let u = Int(serverUID)
        #expect(ids["uid"] as? Int == u && ids["euid"] as? Int == u && ids["gid"] as? Int == u, "\(ids)")
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
        #expect(env.contains("HOME=\(SandboxPlanner.serverEnvironment(of: plan)["HOME"]!)"))
        #expect(!env.contains { $0.hasPrefix("MCPX_SANDBOX_ENV_") }, "the prefix must be gone after exec: \(env)")

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
        #expect(suid["stdout"] as? String == "\(serverUID)\n", "setuid gained privilege: \(suid)")

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
        #expect(text.contains("/mcpproxy/cgprobe-t1"), "not in the server's cgroup: \(cg)")
        let v2 = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")
        let memFile = v2 ? "/sys/fs/cgroup/mcpproxy/cgprobe-t1/memory.max" : "/sys/fs/cgroup/memory/mcpproxy/cgprobe-t1/memory.limit_in_bytes"
        let limit = try String(contentsOfFile: memFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(limit == String(128 << 20))
        #expect(session.stderr.contains("cgroup"), "status: \(session.stderr)")
        // Removed once the server stops (what the supervisor does after every stop).
        session.stop()
        for dir in plan.cgroupDirectories {
            #expect(SandboxCgroup.remove(dir), "\(dir) not removed")
            #expect(!FileManager.default.fileExists(atPath: dir))
        }
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

    // MARK: - issue 9: the launcher, unix sockets, per-server limits

    /// The value of a launcher option in a plan (before "--").
    static func option(_ plan: LaunchPlan, _ name: String) -> String? {
        let a = plan.arguments
        guard let i = a.firstIndex(of: name), i + 1 < a.count, a[..<i].firstIndex(of: "--") == nil else { return nil }
        return a[i + 1]
    }

    /// Builds a shared library whose constructor appends "uid=U nnp=N seccomp=S" to `marker`.
    func buildPreloadLibrary(in dir: String, marker: String) throws -> String {
        let src = dir + "/evil.c", lib = dir + "/evil.so"
        try """
        #include <stdio.h>
        #include <unistd.h>
        #include <sys/prctl.h>
        __attribute__((constructor)) static void evil(void) {
            FILE *f = fopen("\(marker)", "a");
            if (!f) return;
            fprintf(f, "uid=%d nnp=%d seccomp=%d\\n", (int)getuid(), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
            fclose(f);
        }
        """.write(toFile: src, atomically: false, encoding: .utf8)
        let cc = Process()
        cc.executableURL = URL(fileURLWithPath: "/usr/bin/cc")
        cc.arguments = ["-shared", "-fPIC", "-o", lib, src]
        try cc.run()
        cc.waitUntilExit()
        try #require(cc.terminationStatus == 0, "cc failed to build the preload library")
        chmod(lib, 0o755)
        return lib
    }

    @Test func loaderEnvironmentIsRefusedOrInert() throws {
        try requireProducts()
        let load = CPULoad(threads: 2)  // the CI battery runs under CPU load
        defer { load.stop() }
        let world = try SandboxWorld()
        // Refused by default: LD_PRELOAD and GCONV_PATH never reach a plan.
        for name in ["LD_PRELOAD", "GCONV_PATH", "MALLOC_CHECK_", "LD_LIBRARY_PATH"] {
            var s = probeServer()
            s.env = [name: world.outsideDir]
            do { _ = try world.plan(s, config: batteryConfig()); Issue.record("\(name) was planned") }
            catch let e as ProxyError { #expect(e.code == .refused && e.message.contains("loader_env")) }
        }

        // Allowed by opt-in: the launcher (root, unconfined) never loads the library; the server
        // gets it only at execve, confined, as its own uid.
        let marker = world.workDir + "/preload-marker"
        let lib = try buildPreloadLibrary(in: world.setuidDir, marker: marker)
        var s = probeServer {
            $0.allow = ["loader_env"]
            $0.workingDir = world.workDir
            $0.writePaths = [world.setuidDir]
        }
        s.env = ["LD_PRELOAD": lib, "GCONV_PATH": world.outsideDir, "MALLOC_PERTURB_": "165"]
        let plan = try world.plan(s, config: batteryConfig())
        #expect(plan.environment["LD_PRELOAD"] == nil && plan.environment["MCPX_SANDBOX_ENV_LD_PRELOAD"] == lib)
        let session = try ProbeSession(plan: plan)
        defer { session.stop() }
        try session.initialize()
        let env = (try session.probe("env"))["env"] as? [String] ?? []
        #expect(env.contains("LD_PRELOAD=\(lib)"), "the server should see its declared env: \(env)")
        let lines = ((try? String(contentsOfFile: marker, encoding: .utf8)) ?? "").split(separator: "\n")
        #expect(!lines.isEmpty, "the preload library should have run in the server")
        for line in lines {
            #expect(!line.hasPrefix("uid=0 "), "the preload library ran as root (in the launcher): \(line)")
            #expect(line.contains("nnp=1") && line.contains("seccomp=2"), "the preload library ran unconfined: \(line)")
        }
    }

    @Test func existingWorkingDirIsNeitherChownedNorChmodded() throws {
        try requireProducts()
        let load = CPULoad(threads: 2)  // the CI battery runs under CPU load
        defer { load.stop() }
        let world = try SandboxWorld()
        let fm = FileManager.default
        for (owner, mode) in [(uid_t(0), mode_t(0o755)), (uid_t(4321), mode_t(0o700))] {
            let dir = world.root + "/existing-\(owner)"
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: false)
            chown(dir, owner, gid_t(owner))
            chmod(dir, mode)
            let session = try ProbeSession(plan: world.plan(probeServer { $0.workingDir = dir }, config: batteryConfig()))
            defer { session.stop() }
            if owner == 0 {
                // The launcher ran all its steps once the server answers.
                try session.initialize()
                denied(try session.probe("write_file", ["path": dir + "/x", "text": "x"]), "write into a root-owned existing working dir")
            } else {
                // A 0700 dir of another uid: the server cannot enter it, and it is not made enterable.
                #expect(session.waitForExit(timeout: 30) == SandboxPlanner.ExitStatus.setup, "stderr: \(session.stderr)")
            }
            var st = stat()
            #expect(stat(dir, &st) == 0)
            #expect(st.st_uid == owner && st.st_mode & 0o7777 == mode, "\(dir) changed: uid \(st.st_uid) mode \(String(st.st_mode & 0o7777, radix: 8))")
        }
        // A system directory is refused before anything runs.
        #expect(throws: ProxyError.self) { try world.plan(probeServer { $0.workingDir = "/etc" }, config: batteryConfig()) }
        #expect(throws: ProxyError.self) { try world.plan(probeServer { $0.writePaths = ["/var/lib"] }, config: batteryConfig()) }
    }

    @Test(arguments: ["none", "host"])
    func pathnameUnixSocketsAreDenied(networkMode: String) throws {
        try requireProducts()
        let load = CPULoad(threads: 2)  // the CI battery runs under CPU load
        defer { load.stop() }
        let world = try SandboxWorld()
        // A 0777 socket the sandbox uid could open by permissions, and a docker.sock stand-in
        // inside a granted directory: both unreachable.
        let open = try PathUnixListener(path: world.outsideDir + "/open.sock", mode: 0o777)
        let docker = try PathUnixListener(path: world.setuidDir + "/docker.sock", mode: 0o666)
        let session = try ProbeSession(plan: world.plan(probeServer {
            $0.networkMode = networkMode
            $0.writePaths = [world.setuidDir]
        }, config: batteryConfig()))
        defer { session.stop() }
        try session.initialize()
        for (listener, what) in [(open, "a 0777 socket"), (docker, "a docker.sock stand-in")] {
            let r = try session.probe("unix_path_connect", ["path": listener.path])
            denied(r, "connect to \(what) (network \(networkMode))")
            #expect(r["errno"] as? Int == Int(EACCES), "\(r)")
            #expect(!listener.accepted(), "\(what) accepted a connection")
        }
        // Outside the sandbox the same sockets answer (the test would prove nothing otherwise).
        #expect(PathUnixListener.connect(open.path) && open.accepted())
        allowed(try session.probe("echo", ["text": "still serving"]), "echo")
    }

    @Test func unixSocketsOptInHidesRunWhenRoot() throws {
        try requireProducts()
        let load = CPULoad(threads: 2)  // the CI battery runs under CPU load
        defer { load.stop() }
        let world = try SandboxWorld()
        let sock = try PathUnixListener(path: "/run/mcpx-test-\(getpid()).sock", mode: 0o777)
        var c = batteryConfig()
        c.sandbox.allowDegraded = true  // /tmp holds the test world's grants and stays visible
        let plan = try world.plan(probeServer { $0.allow = ["unix_sockets"] }, config: c)
        #expect(plan.arguments.contains("/run") && !plan.arguments.contains("--deny-unix"))
        let session = try ProbeSession(plan: plan)
        defer { session.stop() }
        try session.initialize()
        let r = try session.probe("unix_path_connect", ["path": sock.path])
        denied(r, "connect to a socket under the hidden /run")
        #expect(r["errno"] as? Int == Int(ENOENT), "\(r)")
        #expect(!sock.accepted())
    }

    @Test func forkBombInOneServerLeavesAnotherServing() throws {
        try requireProducts()
        let load = CPULoad(threads: 2)  // the CI battery runs under CPU load
        defer { load.stop() }
        let world = try SandboxWorld()
        var config = batteryConfig()
        var bombServer = probeServer(), calmServer = probeServer()
        bombServer.name = "bomb"
        calmServer.name = "calm"
        config.servers = [bombServer, calmServer]
        let bombPlan = try world.plan(bombServer, config: config), calmPlan = try world.plan(calmServer, config: config)
        #expect(Self.option(bombPlan, "--uid") != Self.option(calmPlan, "--uid"), "servers share a uid")
        let bomb = try ProbeSession(plan: bombPlan), calm = try ProbeSession(plan: calmPlan)
        defer { bomb.stop(); calm.stop() }
        try bomb.initialize()
        try calm.initialize()
        let held = try bomb.probe("fork_hold", ["count": 10_000])
        denied(held, "hold 10000 processes")
        #expect((held["forked"] as? Int ?? 10_000) < Self.nproc, "\(held)")
        // The other server is untouched: it forks and answers while the bomb holds its processes.
        let forks = try calm.probe("fork_bomb", ["count": Self.nproc / 2])
        allowed(forks, "fork \(Self.nproc / 2) children in the other server")
        for i in 0..<5 { allowed(try calm.probe("echo", ["text": "call \(i)"]), "call \(i) to the other server") }
        #expect(try bomb.probe("ids")["uid"] as? Int != calm.probe("ids")["uid"] as? Int)
    }

    @Test func threeProcessMemoryBombIsCappedAtTheDefaultLimit() throws {
        try requireProducts()
        let load = CPULoad(threads: 2)  // the CI battery runs under CPU load
        defer { load.stop() }
        try #require(SandboxKernel.current.cgroupsWritable, "cgroups are not writable here")
        let world = try SandboxWorld()
        // The default config: no memory_limit anywhere. The default cgroup memory.max holds.
        var s = probeServer()
        s.name = "membomb"
        let plan = try world.plan(s)
        #expect(plan.enforcement["memory"] == "2g (cgroup, default)")
        let session = try ProbeSession(plan: plan)
        defer { session.stop() }
        try session.initialize()
        let r = try session.probe("memory_bomb_procs", ["procs": 3, "mb": 1000])
        denied(r, "3 processes touching 1000 MiB each under a 2 GiB limit")
        #expect((r["killed"] as? Int ?? 0) >= 1, "the cgroup OOM killer should have killed one: \(r)")
        let memDir = try #require(plan.cgroupDirectories.first { $0.contains("memory") || !$0.contains("/cpu") })
        let peakFile = FileManager.default.fileExists(atPath: memDir + "/memory.peak") ? memDir + "/memory.peak" : memDir + "/memory.max_usage_in_bytes"
        let peak = try #require(Int((try? String(contentsOfFile: peakFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""),
                                "cannot read \(peakFile)")
        #expect(peak <= 2 << 30, "peak \(peak) above the limit")
        #expect(peak > 1 << 30, "the bomb should have come close to the limit: peak \(peak)")
        allowed(try session.probe("echo", ["text": "survived"]), "the server itself keeps serving")
    }

    @Test func diskFillStopsAtTheHomeQuota() throws {
        try requireProducts()
        let load = CPULoad(threads: 2)  // the CI battery runs under CPU load
        defer { load.stop() }
        let world = try SandboxWorld()
        var c = batteryConfig()
        c.sandbox.homeSize = "32m"
        let plan = try world.plan(probeServer(), config: c)
        let env = SandboxPlanner.serverEnvironment(of: plan)
        let session = try ProbeSession(plan: plan)
        defer { session.stop() }
        try session.initialize()
        for dir in [env["HOME"]!, env["TMPDIR"]!] {
            let r = try session.probe("fill_disk", ["path": dir + "/fill", "mb": 200])
            denied(r, "write 200 MiB into \(dir)")
            #expect(r["errno"] as? Int == Int(ENOSPC), "\(r)")
            #expect((r["bytes"] as? Int ?? Int.max) <= 32 << 20, "\(r)")
            // Private: nothing of it on the host's disk.
            #expect(!FileManager.default.fileExists(atPath: dir + "/fill"))
        }
        #expect(session.stderr.contains("tmpfs"), "status: \(session.stderr)")
        allowed(try session.probe("write_file", ["path": env["HOME"]! + "/small", "text": "ok"]), "a small write after the fill")
    }

    /// A proxy not running as root: the launcher runs as `uid` (via setpriv), so no uid drop, no
    /// mount namespace, no cgroup; files in the home are capped by RLIMIT_FSIZE and unix sockets
    /// are still denied by seccomp.
    @Test func nonRootLauncherCapsFilesAndDeniesUnixSockets() throws {
        try requireProducts()
        let load = CPULoad(threads: 2)
        defer { load.stop() }
        let world = try SandboxWorld()
        let uid: UInt32 = 4242
        chown(world.runtimeDir, uid, uid)  // a non-root proxy owns its runtime dir
        var c = batteryConfig()
        c.sandbox.homeSize = "16m"
        var plan = try SandboxPlanner.plan(server: probeServer(), command: SandboxProducts.probe, config: c,
                                           decision: IsolationDecision(mode: .sandbox, source: .perServerMode),
                                           context: world.context(), host: NonRootHost(uid: uid), kernel: .current)
        #expect(Self.option(plan, "--uid") == nil && Self.option(plan, "--tmpfs") == nil)
        plan.arguments = ["--reuid", String(uid), "--regid", String(uid), "--clear-groups", plan.executable] + plan.arguments
        plan.executable = "/usr/bin/setpriv"
        let sock = try PathUnixListener(path: world.outsideDir + "/open.sock", mode: 0o777)
        let session = try ProbeSession(plan: plan)
        defer { session.stop() }
        try session.initialize()
        #expect(try session.probe("ids")["uid"] as? Int == Int(uid))
        #expect(try session.probe("rlimits")["fsize"] as? Int == 16 << 20)
        let home = SandboxPlanner.serverEnvironment(of: plan)["HOME"]!
        let fill = try session.probe("fill_disk", ["path": home + "/fill", "mb": 100])
        denied(fill, "write 100 MiB into one file of the home")
        #expect(fill["errno"] as? Int == Int(EFBIG), "\(fill)")
        #expect((fill["bytes"] as? Int ?? Int.max) <= 16 << 20, "\(fill)")
        let r = try session.probe("unix_path_connect", ["path": sock.path])
        denied(r, "connect to a 0777 socket without root")
        #expect(r["errno"] as? Int == Int(EACCES) && !sock.accepted(), "\(r)")
        #expect(session.stderr.contains("cgroup memory unavailable"), "status: \(session.stderr)")
    }
}

/// The real machine, except that the proxy is said to run as `uid`.
struct NonRootHost: SandboxHost {
    let base = LiveSandboxHost()
    let uid: UInt32
    func exists(_ path: String) -> Bool { base.exists(path) }
    func isDirectory(_ path: String) -> Bool { base.isDirectory(path) }
    func isExecutableFile(_ path: String) -> Bool { base.isExecutableFile(path) }
    func realPath(_ path: String) -> String? { base.realPath(path) }
    func readText(_ path: String, limit: Int) -> String? { base.readText(path, limit: limit) }
    func runtimeLibraryDirectories(forExecutable path: String) -> [String] { base.runtimeLibraryDirectories(forExecutable: path) }
    var effectiveUID: UInt32 { uid }
}
