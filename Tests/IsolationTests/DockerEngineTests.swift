import Foundation
import Testing
@testable import Isolation
import ProxyCore

/// Docker isolation against the real engine (scripts/setup.sh starts dockerd; the fixture image
/// is built locally by scripts/build-test-images.sh). These never skip: a missing engine fails.
@Suite("Docker isolation on the real engine", .serialized, .holdsAThread)
struct DockerEngineTests {
    typealias E = DockerEngine

    init() throws { try E.requireReady() }

    @Test("a planned launch answers MCP over stdio, hardened as docker inspect shows, secrets not in ps or logs")
    func hardenedServer() async throws {
        let secret = "fixture-secret-\(UUID().uuidString)"
        let ctx = E.context()
        let server = E.server("hardened", env: ["FIXTURE_SECRET": secret]) {
            $0.memoryLimit = "128m"; $0.cpuLimit = "0.5"; $0.pidsLimit = 64
        }
        let plan = try E.plan(server, context: ctx)
        let logs = DockerLogSink()
        try await ContainerLifecycle.prepare(plan, log: logs.log)
        #expect(logs.lines.contains { $0.contains("present locally") })

        let session = try DockerStdioSession(plan)
        defer { session.terminate() }
        let id = try #require(await ContainerLifecycle.containerID(plan, timeout: 20))

        let initialize = try session.initialize()
        #expect((initialize["result"] as? [String: Any])?["serverInfo"] != nil)
        #expect(try session.callTool(2, "echo", ["text": "through docker"]).text == "through docker")
        #expect(try session.callTool(3, "get_env", ["name": "FIXTURE_SECRET"]).text == secret)
        #expect(try session.callTool(4, "whoami").text.hasPrefix("uid=65534 gid=65534"))
        // Only the declared env and the planned HOME reach the server: nothing of the host's.
        let names = Set(try session.callTool(5, "list_env").text.split(separator: "\n").map(String.init))
        #expect(names.isSubset(of: ["FIXTURE_SECRET", "HOME", "PATH", "HOSTNAME"]), "\(names)")
        #expect(try session.callTool(6, "write_file", ["path": "/fixture-copy", "content": "x"]).isError)
        #expect(try session.callTool(7, "write_file", ["path": "/tmp/ok", "content": "x"]).text == "wrote 1 bytes")
        // HOME is its own tmpfs, writable and exec-able (package runners install and run there);
        // /tmp stays noexec. The mount table of the container shows the flags the kernel enforces.
        #expect(try session.callTool(20, "get_env", ["name": "HOME"]).text == "/home/mcpproxy")
        #expect(try session.callTool(21, "write_file", ["path": "/home/mcpproxy/tool", "content": "#!"]).text == "wrote 2 bytes")
        let mountinfo = try session.callTool(22, "read_file", ["path": "/proc/self/mountinfo"]).text.split(separator: "\n")
        func mount(_ point: String) -> Substring? { mountinfo.first { $0.split(separator: " ").dropFirst(4).first.map(String.init) == point } }
        let homeMount = try #require(mount("/home/mcpproxy"), "\(mountinfo)")
        let tmpMount = try #require(mount("/tmp"))
        #expect(!homeMount.split(separator: " ")[5].contains("noexec"), "\(homeMount)")
        #expect(tmpMount.split(separator: " ")[5].contains("noexec"), "\(tmpMount)")
        // The default ulimits hold inside the container.
        let limits = try session.callTool(23, "read_file", ["path": "/proc/self/limits"]).text.split(separator: "\n")
        let nofile = try #require(limits.first { $0.hasPrefix("Max open files") }).split(separator: " ")
        #expect(nofile.dropFirst(3).prefix(2) == ["4096", "4096"], "\(nofile)")
        let nproc = try #require(limits.first { $0.hasPrefix("Max processes") }).split(separator: " ")
        #expect(nproc.dropFirst(2).prefix(2) == ["8192", "8192"], "\(nproc)")

        let info = try E.inspect(id)
        let host = try #require(info["HostConfig"] as? [String: Any])
        let config = try #require(info["Config"] as? [String: Any])
        #expect(host["CapDrop"] as? [String] == ["ALL"])
        #expect((host["SecurityOpt"] as? [String])?.contains("no-new-privileges") == true)
        #expect(host["ReadonlyRootfs"] as? Bool == true)
        #expect(config["User"] as? String == "65534:65534")
        #expect(host["Memory"] as? Int == 128 * 1024 * 1024)
        #expect(host["MemorySwap"] as? Int == 128 * 1024 * 1024)
        #expect(host["NanoCpus"] as? Int == 500_000_000)
        #expect(host["PidsLimit"] as? Int == 64)
        #expect(host["Init"] as? Bool == true)
        #expect(host["NetworkMode"] as? String == "none")
        #expect((host["LogConfig"] as? [String: Any])?["Type"] as? String == "none")
        #expect((host["Tmpfs"] as? [String: String])?["/tmp"]?.contains("size=64m") == true)
        let labels = try #require(config["Labels"] as? [String: String])
        #expect(labels["mcpproxy.managed"] == "true")
        #expect(labels["mcpproxy.server"] == "hardened")
        #expect(labels["mcpproxy.instance"] == ctx.instanceID)
        #expect(labels["mcpproxy.owner_pid"] == String(getpid()))
        #expect(labels["mcpproxy.owner_start"] == ContainerOwner.processStartTime(getpid()))

        // The value is on no command line: ps shows the docker client, but not the secret.
        let ps = CommandRunner.runBlocking("/usr/bin/ps", ["-eo", "args"], environment: ["PATH": "/usr/bin:/bin"], timeout: 10, onLine: nil)
        #expect(ps.stdout.contains(plan.container!.name))
        #expect(!ps.stdout.contains(secret))
        #expect(!plan.redactedCommandLine.joined(separator: " ").contains(secret))
        #expect(!DockerPlanner.runArgsLogLine(plan).contains(secret))
        #expect(!logs.lines.joined().contains(secret))

        await ContainerLifecycle.stop(plan, containerID: id, grace: 5)
        #expect(session.waitExit(timeout: 10) != nil)
        #expect(E.containers(label: "mcpproxy.instance=\(ctx.instanceID)").isEmpty)
        #expect(!FileManager.default.fileExists(atPath: plan.container!.cidFile))
    }

    @Test("an env name the docker client reads goes through the env file, which is gone once the container runs")
    func envFile() async throws {
        let ctx = E.context()
        let plan = try E.plan(E.server("envfile", env: ["PATH": "/custom/bin", "TOKEN": "tok-\(UUID().uuidString)"]), context: ctx)
        let file = try #require(plan.files.first)
        try await ContainerLifecycle.prepare(plan, log: { _ in })
        let attrs = try FileManager.default.attributesOfItem(atPath: file.path)
        #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let session = try DockerStdioSession(plan)
        defer { session.terminate() }
        let id = try #require(await ContainerLifecycle.containerID(plan, timeout: 20))
        #expect(!FileManager.default.fileExists(atPath: file.path))
        _ = try session.initialize()
        #expect(try session.callTool(2, "get_env", ["name": "PATH"]).text == "/custom/bin")
        #expect(try session.callTool(3, "get_env", ["name": "TOKEN"]).text == plan.environment["TOKEN"])
        await ContainerLifecycle.stop(plan, containerID: id, grace: 5)
        #expect(E.containers(label: "mcpproxy.instance=\(ctx.instanceID)").isEmpty)
    }

    @Test("an OOM-killed server is diagnosed as out of memory")
    func oomDiagnosed() async throws {
        let ctx = E.context()
        let plan = try E.plan(E.server("oom") { $0.memoryLimit = "32m" }, context: ctx)
        try await ContainerLifecycle.prepare(plan, log: { _ in })
        let session = try DockerStdioSession(plan)
        defer { session.terminate() }
        let id = try #require(await ContainerLifecycle.containerID(plan, timeout: 20))
        _ = try session.initialize()
        try session.send(["jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": ["name": "alloc", "arguments": ["mb": 512]]])
        let status = try #require(session.waitExit(timeout: 60))
        #expect(status == 137)
        let diagnosis = try #require(await ContainerLifecycle.diagnose(plan, containerID: id, exitStatus: status, stderrTail: session.stderr))
        #expect(diagnosis.contains("OOMKilled"))
        #expect(diagnosis.contains("32m"))
        #expect(diagnosis.contains("raise memory_limit"))
        await ContainerLifecycle.stop(plan, containerID: id, grace: 1)
        #expect(E.containers(label: "mcpproxy.instance=\(ctx.instanceID)").isEmpty)
    }

    @Test("the stop ladder ends a server that ignores SIGTERM and leaves no container")
    func stopLadderKills() async throws {
        let ctx = E.context()
        // Without --init the fixture is PID 1, which the kernel shields from SIGTERM: only the
        // ladder's SIGKILL ends it.
        let plan = try E.plan(E.server("stubborn") { $0.allow = ["no_init"] }, context: ctx)
        #expect(!plan.arguments.contains("--init"))
        try await ContainerLifecycle.prepare(plan, log: { _ in })
        let session = try DockerStdioSession(plan)
        defer { session.terminate() }
        let id = try #require(await ContainerLifecycle.containerID(plan, timeout: 20))
        _ = try session.initialize()
        await ContainerLifecycle.stop(plan, containerID: id, grace: 1)
        let status = try #require(session.waitExit(timeout: 10))
        #expect(status == 137)
        #expect(E.containers(label: "mcpproxy.instance=\(ctx.instanceID)").isEmpty)
        #expect(E.docker(["inspect", id]).status != 0)
    }

    @Test("stop with a SIGTERM-aware server (through --init) and by name when the id is unknown")
    func stopByName() async throws {
        let ctx = E.context()
        let plan = try E.plan(E.server("byname"), context: ctx)
        try await ContainerLifecycle.prepare(plan, log: { _ in })
        let session = try DockerStdioSession(plan)
        defer { session.terminate() }
        _ = try session.initialize()
        #expect(E.containers(label: "mcpproxy.instance=\(ctx.instanceID)").count == 1)
        await ContainerLifecycle.stop(plan, containerID: nil, grace: 5)
        #expect(session.waitExit(timeout: 10) != nil)
        #expect(E.containers(label: "mcpproxy.instance=\(ctx.instanceID)").isEmpty)
    }

    /// Starts a detached managed container (stdin kept open, so the fixture stays up).
    static func startDetached(_ labels: [String: String]) throws -> String {
        var args = ["run", "-d", "-i", "--rm", "--network", "none", "--log-driver", "none"]
        for (k, v) in labels.sorted(by: { $0.key < $1.key }) { args += ["--label", "\(k)=\(v)"] }
        args += [E.image, "/fixture"]
        let r = E.docker(args)
        guard r.status == 0 else { throw ProxyError(.upstreamFailed, "docker run -d failed: \(r.stderr)") }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A pid that existed and is now dead (a reaped child), with its start time.
    static func deadPID() throws -> (Int32, String?) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sleep")
        p.arguments = ["30"]
        try p.run()
        let pid = p.processIdentifier
        let start = ContainerOwner.processStartTime(pid)
        kill(pid, SIGKILL)
        p.waitUntilExit()
        return (pid, start)
    }

    @Test("orphan cleanup removes this instance's and a killed proxy's containers, keeps a live foreign one")
    func orphanCleanup() async throws {
        let me = ContainerOwner.probe(pid: getpid())
        let tag = UUID().uuidString.prefix(8)
        func labels(instance: String, pid: Int32, start: String?) -> [String: String] {
            var l = ["mcpproxy.managed": "true", "mcpproxy.server": "orphan-\(tag)", "mcpproxy.instance": instance,
                     "mcpproxy.owner_pid": String(pid), "mcpproxy.owner_host": me.host, "mcpproxy.owner_boot": me.bootID,
                     "test.run": String(tag)]
            if let start { l["mcpproxy.owner_start"] = start }
            return l
        }
        let ourInstance = "self-\(tag)"
        let (dead, deadStart) = try Self.deadPID()
        let killedProxy = try Self.startDetached(labels(instance: "killed-\(tag)", pid: dead, start: deadStart))
        // Owned by a live process (this one): only the instance rule removes it, so no other
        // proxy's cleanup on the same engine can.
        let ownOldRun = try Self.startDetached(labels(instance: ourInstance, pid: getpid(), start: me.startTime))
        let liveForeign = try Self.startDetached(labels(instance: "live-\(tag)", pid: getpid(), start: me.startTime))
        defer { _ = E.docker(["rm", "-f", killedProxy, ownOldRun, liveForeign]) }

        let logs = DockerLogSink()
        let removed = await ContainerLifecycle.cleanupOrphans(instanceID: ourInstance, environment: ProcessInfo.processInfo.environment, log: logs.log)
        // The killed proxy's container is an orphan to every proxy on this host: one starting at
        // the same moment (another test run on this engine) may remove it first. Either way it
        // is gone, and if this cleanup removed it, it said why.
        #expect(removed.contains(killedProxy) || !E.containers(label: "test.run=\(tag)").contains(killedProxy))
        #expect(removed.contains(ownOldRun))
        #expect(!removed.contains(liveForeign))
        #expect(E.containers(label: "test.run=\(tag)") == [liveForeign])
        #expect(logs.lines.contains { $0.contains("keeping container \(liveForeign.prefix(12))") && $0.contains("is alive") })
        if removed.contains(killedProxy) {
            #expect(logs.lines.contains { $0.contains("removing container \(killedProxy.prefix(12))") && $0.contains("no longer running") })
        }
    }

    @Test("after the proxy is SIGKILLed, a restart's cleanup leaves no orphan of it")
    func sigkilledProxyLeavesNoOrphan() async throws {
        // A stand-in proxy process owns a container launched from a real plan; a server that
        // never reads stdin EOF is simulated by a detached container with the plan's labels.
        let standIn = Process()
        standIn.executableURL = URL(fileURLWithPath: "/bin/sleep")
        standIn.arguments = ["300"]
        try standIn.run()
        let ctx = E.context(proxyPID: standIn.processIdentifier)
        let plan = try E.plan(E.server("killed-proxy"), context: ctx)
        let labels = try #require(plan.container?.labels)
        #expect(labels["mcpproxy.owner_start"] != nil)
        let id = try Self.startDetached(labels)
        defer { _ = E.docker(["rm", "-f", id]) }

        // While the owner lives, another proxy's cleanup keeps the container.
        let before = await ContainerLifecycle.cleanupOrphans(instanceID: "another-proxy", environment: ProcessInfo.processInfo.environment, log: { _ in })
        #expect(!before.contains(id))
        kill(standIn.processIdentifier, SIGKILL)
        standIn.waitUntilExit()
        let after = await ContainerLifecycle.cleanupOrphans(instanceID: "restarted-proxy", environment: ProcessInfo.processInfo.environment, log: { _ in })
        #expect(after.contains(id))
        #expect(E.containers(label: "mcpproxy.instance=\(ctx.instanceID)").isEmpty)
    }

    @Test("a refused option fails at planning with the reason, and no container is created")
    func refusedOption() throws {
        let ctx = E.context()
        let server = E.server("sock") { $0.volumes = ["/var/run/docker.sock:/var/run/docker.sock"] }
        let error = try #require(throws: ProxyError.self) { try E.plan(server, context: ctx) }
        #expect(error.code == .refused)
        #expect(error.message.contains("Docker socket"))
        #expect(error.message.contains("docker_socket"))
        #expect(E.containers(label: "mcpproxy.instance=\(ctx.instanceID)").isEmpty)
    }

    @Test("prepare reports a missing image as such (after trying a pull), not as a timeout")
    func missingImage() async throws {
        // A registry on a closed loopback port: the pull fails at once, and no traffic leaves the machine.
        let plan = try E.plan(E.server("noimage") { $0.image = "127.0.0.1:9/mcpproxy-absent:none" }, context: E.context())
        let logs = DockerLogSink()
        let error = try await #require(throws: ProxyError.self) {
            try await ContainerLifecycle.prepare(plan, pullTimeout: 60, log: logs.log)
        }
        #expect(error.code == .notFound)
        #expect(error.message.contains("image \"127.0.0.1:9/mcpproxy-absent:none\" is not present locally and could not be pulled"))
        #expect(logs.lines.contains { $0.contains("pulling it before the startup timer starts") })

        // The same image in a docker run is diagnosed as a missing image.
        let session = try DockerStdioSession(plan)
        defer { session.terminate() }
        let status = try #require(session.waitExit(timeout: 60))
        let diagnosis = try #require(await ContainerLifecycle.diagnose(plan, containerID: nil, exitStatus: status, stderrTail: session.stderr))
        #expect(diagnosis.contains("was not found") || diagnosis.contains("could not create or start"), "\(diagnosis)")
    }

    @Test("prepare pulls a missing image before the start, with progress lines, then the server runs")
    func pullsMissingImage() async throws {
        // A throwaway registry on loopback (Debian's docker-registry, installed by scripts/setup.sh).
        let registryBin = try #require(CommandRunner.resolveExecutable("docker-registry", path: ProcessInfo.processInfo.environment["PATH"]),
                                       "docker-registry is missing: run scripts/setup.sh")
        let dir = NSTemporaryDirectory() + "mcpproxy-registry-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = 20000 + Int.random(in: 0..<20000)
        try """
        version: 0.1
        log:
          level: error
        storage:
          filesystem:
            rootdirectory: \(dir)/data
        http:
          addr: 127.0.0.1:\(port)
        """.write(toFile: dir + "/config.yml", atomically: true, encoding: .utf8)
        let registry = Process()
        registry.executableURL = URL(fileURLWithPath: registryBin)
        registry.arguments = ["serve", dir + "/config.yml"]
        registry.standardOutput = FileHandle.nullDevice
        registry.standardError = FileHandle.nullDevice
        try registry.run()
        defer { registry.terminate(); registry.waitUntilExit() }

        let image = "127.0.0.1:\(port)/mcpproxy-fixture:pull-\(UUID().uuidString.prefix(8).lowercased())"
        #expect(E.docker(["tag", E.image, image]).status == 0)
        var pushed = false
        for _ in 0..<50 where !pushed {  // until the registry listens
            pushed = E.docker(["push", image]).status == 0
            if !pushed { usleep(200_000) }
        }
        #expect(pushed)
        #expect(E.docker(["rmi", image]).status == 0)
        defer { _ = E.docker(["rmi", "-f", image]) }

        let ctx = E.context()
        let plan = try E.plan(E.server("pulled") { $0.image = image }, context: ctx)
        let logs = DockerLogSink()
        try await ContainerLifecycle.prepare(plan, pullTimeout: 120, log: logs.log)
        #expect(logs.lines.contains { $0.contains("is not present locally; pulling it before the startup timer starts") })
        #expect(logs.lines.contains { $0.hasPrefix("pull \(image): ") })
        #expect(logs.lines.last == "image \(image) pulled")
        #expect(E.docker(["image", "inspect", image]).status == 0)

        let session = try DockerStdioSession(plan)
        defer { session.terminate() }
        let id = try #require(await ContainerLifecycle.containerID(plan, timeout: 20))
        #expect(try session.callTool(2, "echo", ["text": "pulled"]).text == "pulled")
        await ContainerLifecycle.stop(plan, containerID: id, grace: 5)
        #expect(E.containers(label: "mcpproxy.instance=\(ctx.instanceID)").isEmpty)
    }

    @Test("an unreachable daemon and a missing docker CLI are reported as such")
    func daemonUnreachable() async throws {
        var env = ProcessInfo.processInfo.environment
        env["DOCKER_HOST"] = "unix:///nonexistent/mcpproxy-test.sock"
        let plan = try E.plan(E.server("nodaemon"), context: E.context(hostEnv: env))
        let error = try await #require(throws: ProxyError.self) { try await ContainerLifecycle.prepare(plan, log: { _ in }) }
        #expect(error.code == .unavailable)
        #expect(error.message.contains("Docker daemon is unreachable"))
        #expect(error.message.contains("DOCKER_HOST=unix:///nonexistent/mcpproxy-test.sock"))

        // The docker run of the same plan is diagnosed the same way.
        let session = try DockerStdioSession(plan)
        defer { session.terminate() }
        let status = try #require(session.waitExit(timeout: 30))
        let diagnosis = try #require(await ContainerLifecycle.diagnose(plan, containerID: nil, exitStatus: status, stderrTail: session.stderr))
        #expect(diagnosis.contains("Docker daemon is unreachable"))

        // The engine CLI is looked up in trusted directories only, never on PATH: a PATH without
        // docker changes nothing, a machine without it in those directories is reported.
        let noCLI = try E.plan(E.server("nocli"), context: E.context(hostEnv: ["PATH": "/nonexistent"]))
        let e2 = try await #require(throws: ProxyError.self) {
            try await ContainerLifecycle.prepare(noCLI, engine: ContainerEngine.docker.searching(["/nonexistent"]), log: { _ in })
        }
        #expect(e2.code == .unavailable && e2.message.contains("docker CLI"))
        #expect(e2.message.contains("PATH is not searched"))
        let viaPath = try await ContainerLifecycle.prepare(noCLI, log: { _ in })
        #expect(viaPath.executable.hasPrefix("/") && viaPath.executable.hasSuffix("/docker"))
    }

    @Test("a docker command wrapped with a TTY request is diagnosed as 'not a TTY'")
    func notATTY() async throws {
        var plan = try E.plan(E.server("tty"), context: E.context())
        // What a wrapped `docker run -it` does: ask for a TTY on a pipe.
        plan.arguments.insert("-t", at: 1)
        try await ContainerLifecycle.prepare(plan, log: { _ in })
        let session = try DockerStdioSession(plan)
        defer { session.terminate() }
        let status = try #require(session.waitExit(timeout: 30))
        #expect(status != 0)
        let diagnosis = try #require(await ContainerLifecycle.diagnose(plan, containerID: nil, exitStatus: status, stderrTail: session.stderr))
        #expect(diagnosis.contains("not a TTY"))
    }

    @Test("the user's Docker context is honoured: DOCKER_CONTEXT and `docker context use`")
    func dockerContextHonoured() async throws {
        // A private DOCKER_CONFIG so the user's own contexts are untouched.
        let config = NSTemporaryDirectory() + "mcpproxy-docker-config-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: config, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: config) }
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "DOCKER_HOST")
        env.removeValue(forKey: "DOCKER_CONTEXT")
        env["DOCKER_CONFIG"] = config
        for (name, host) in [("good", "unix:///var/run/docker.sock"), ("bad", "unix:///nonexistent/mcpproxy-ctx.sock")] {
            let r = E.docker(["context", "create", name, "--docker", "host=\(host)"], env: env)
            #expect(r.status == 0, "\(r.stderr)")
        }

        var bad = env
        bad["DOCKER_CONTEXT"] = "bad"
        let badPlan = try E.plan(E.server("ctxbad"), context: E.context(hostEnv: bad))
        #expect(badPlan.environment["DOCKER_CONTEXT"] == "bad" && badPlan.environment["DOCKER_CONFIG"] == config)
        let error = try await #require(throws: ProxyError.self) { try await ContainerLifecycle.prepare(badPlan, log: { _ in }) }
        #expect(error.code == .unavailable && error.message.contains("DOCKER_CONTEXT=bad"))

        var good = env
        good["DOCKER_CONTEXT"] = "good"
        try await ContainerLifecycle.prepare(try E.plan(E.server("ctxgood"), context: E.context(hostEnv: good)), log: { _ in })

        // No variable: the context chosen with `docker context use` applies.
        #expect(E.docker(["context", "use", "bad"], env: env).status == 0)
        let usePlan = try E.plan(E.server("ctxuse"), context: E.context(hostEnv: env))
        let e2 = try await #require(throws: ProxyError.self) { try await ContainerLifecycle.prepare(usePlan, log: { _ in }) }
        #expect(e2.code == .unavailable)
        #expect(E.docker(["context", "use", "good"], env: env).status == 0)
        let ctx = E.context(hostEnv: env)
        let plan = try E.plan(E.server("ctxuse2"), context: ctx)
        try await ContainerLifecycle.prepare(plan, log: { _ in })
        let session = try DockerStdioSession(plan)
        defer { session.terminate() }
        let id = try #require(await ContainerLifecycle.containerID(plan, timeout: 20))
        #expect(try session.callTool(2, "echo", ["text": "via context"]).text == "via context")
        await ContainerLifecycle.stop(plan, containerID: id, grace: 5)
        #expect(E.containers(label: "mcpproxy.instance=\(ctx.instanceID)").isEmpty)
    }

    @Test("DOCKER_HOST pointing at the running engine is honoured by the plan and the lifecycle")
    func dockerHostHonoured() async throws {
        var env = ProcessInfo.processInfo.environment
        env["DOCKER_HOST"] = "unix:///var/run/docker.sock"
        let ctx = E.context(hostEnv: env)
        let plan = try E.plan(E.server("dockerhost"), context: ctx)
        #expect(plan.environment["DOCKER_HOST"] == "unix:///var/run/docker.sock")
        try await ContainerLifecycle.prepare(plan, log: { _ in })
        let session = try DockerStdioSession(plan)
        defer { session.terminate() }
        let id = try #require(await ContainerLifecycle.containerID(plan, timeout: 20))
        #expect(try session.callTool(2, "add", ["a": 2, "b": 3]).text == "5")
        await ContainerLifecycle.stop(plan, containerID: id, grace: 5)
        #expect(E.containers(label: "mcpproxy.instance=\(ctx.instanceID)").isEmpty)
    }
}
