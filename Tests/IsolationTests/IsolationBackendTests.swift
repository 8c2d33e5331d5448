import Foundation
import Testing
@testable import Isolation
import ProxyCore

/// The seam: one backend per mode through one registry; engines and OCI runtimes through theirs;
/// what the container plan becomes for each engine and runtime (pure).
@Suite("Isolation backends, engines and OCI runtimes", .holdsAThread)
struct IsolationBackendTests {
    typealias F = DockerFixture

    @Test("the registry has one backend per mode, keyed by the backend's own mode", arguments: IsolationMode.allCases)
    func registryKeyedByMode(mode: IsolationMode) {
        let backend = IsolationBackends.standard.backend(for: mode)
        #expect(backend.mode == mode)
        #expect(IsolationBackends.standard.all.filter { $0.mode == mode }.count == 1)
    }

    @Test("a mode without a backend refuses to plan, saying so")
    func missingBackendRefuses() throws {
        let only = IsolationBackends([NoneBackend()])
        let e = try #require(throws: ProxyError.self) {
            try Launcher.plan(server: F.server(), config: F.config(), context: F.context(), backends: only)
        }
        #expect(e.code == .unsupported && e.message.contains("isolation mode docker is not available"))
    }

    @Test("startup timeout, settings that restart servers, and scanner plugins are the backend's answers")
    func backendAnswers() {
        var a = ProxyConfig(), b = ProxyConfig()
        a.dockerIsolation.timeout = 75
        let docker = IsolationBackends.standard.backend(for: .docker)
        let sandbox = IsolationBackends.standard.backend(for: .sandbox)
        let none = IsolationBackends.standard.backend(for: .none)
        #expect(docker.startupTimeout(a) == 75 && sandbox.startupTimeout(a) == 30 && none.startupTimeout(a) == 30)
        b.dockerIsolation.engine = "podman"
        #expect(docker.settingsChanged(from: a, to: b) && !sandbox.settingsChanged(from: a, to: b) && !none.settingsChanged(from: a, to: b))
        var c = ProxyConfig()
        c.sandbox.maxOpenFiles = 10
        #expect(sandbox.settingsChanged(from: ProxyConfig(), to: c) && !docker.settingsChanged(from: ProxyConfig(), to: c))
        let plugin = ScannerPluginConfig(name: "p", image: "img")
        #expect(docker.scannerPluginSkipReason(plugin) == nil)
        #expect(sandbox.scannerPluginSkipReason(plugin)?.contains("isolation mode sandbox") == true)
        #expect(none.scannerPluginSkipReason(plugin)?.contains("isolation mode none") == true)
    }

    @Test("engine and runtime registries: names, defaults, the engine CLI's trust rule")
    func registries() {
        #expect(ContainerEngines.all.map(\.name) == ["docker", "podman"])
        #expect(OCIRuntimes.all.map(\.name) == ["runc", "runsc"])
        #expect(ContainerEngines.named(ContainerEngines.defaultName) == .docker)
        #expect(OCIRuntimes.named(OCIRuntimes.defaultName) == .runc)
        #expect(ContainerEngines.named("Docker") == nil && OCIRuntimes.named("kata") == nil)
        // PATH is never consulted: the same directories whatever the environment says.
        #expect(ContainerEngine.docker.searchDirectories == ContainerEngine.trustedDirectories)
        #expect(!ContainerEngine.trustedDirectories.contains { !$0.hasPrefix("/") || $0.hasPrefix("/home/") || $0.hasPrefix("/root") || $0.hasPrefix("/tmp") })
        let nowhere = ContainerEngine.podman.searching(["/nonexistent"])
        #expect(nowhere.executable() == nil)
        #expect(throws: ProxyError.self) { try nowhere.requireExecutable(server: "s") }
    }

    @Test("podman: the same hardened argv, run by podman, outside a PID namespace of its own")
    func podmanPlan() throws {
        let docker = try F.plan(F.server { $0.image = "mcpproxy-fixture:test" })
        let podman = try F.plan(F.server { $0.image = "mcpproxy-fixture:test"; $0.engine = "podman" })
        #expect(podman.executable == "podman" && docker.executable == "docker")
        #expect(podman.arguments == docker.arguments)
        #expect(podman.redactedCommandLine == ["podman"] + podman.arguments)
        #expect(podman.container?.engine == "podman" && docker.container?.engine == "docker")
        #expect(!podman.ownPIDNamespace && docker.ownPIDNamespace)
        #expect(podman.enforcement["engine"] == "podman" && docker.enforcement["engine"] == nil)
        #expect(F.values(after: "--ulimit", in: podman.arguments) == ["nofile=4096:4096", "nproc=8192:8192"])
        // The podman client sees only its own variables (no DOCKER_HOST, no AWS keys).
        let ctx = F.context(hostEnv: ["PATH": "/usr/bin", "DOCKER_HOST": "unix:///x.sock", "CONTAINER_HOST": "unix:///p.sock",
                                      "AWS_SECRET_ACCESS_KEY": "k"])
        let withEnv = try F.plan(F.server(env: ["CONTAINER_HOST": "tcp://evil:1", "TOKEN": "abcd1234"]) { $0.engine = "podman" }, context: ctx)
        #expect(Set(withEnv.environment.keys) == ["PATH", "CONTAINER_HOST", "TOKEN"])
        #expect(withEnv.environment["CONTAINER_HOST"] == "unix:///p.sock")
        // A server variable the podman client reads goes through the env file, not the client's environment.
        #expect(withEnv.files.first?.contents == "CONTAINER_HOST=tcp://evil:1\n")
        // The global key selects podman for every server; the server's own key wins.
        let global = try F.plan(F.server(), config: F.config { $0.engine = "podman" })
        #expect(global.executable == "podman")
        let back = try F.plan(F.server { $0.engine = "docker" }, config: F.config { $0.engine = "podman" })
        #expect(back.executable == "docker")
    }

    @Test("runsc: --runtime runsc, the kernel boundary in the report, and only network none")
    func gvisorPlan() throws {
        let plan = try F.plan(F.server { $0.networkMode = "none"; $0.ociRuntime = "runsc" })
        #expect(F.value(after: "--runtime", in: plan.arguments) == "runsc")
        #expect(plan.container?.runtime == "runsc")
        #expect(plan.enforcement["oci_runtime"] == "runsc")
        #expect(plan.enforcement["kernel"]?.contains("gVisor") == true)
        let runc = try F.plan(F.server { $0.networkMode = "none" })
        #expect(!runc.arguments.contains("--runtime") && runc.enforcement["oci_runtime"] == "runc")
        // The runtime option comes before extra_args, where a user's own --runtime would win.
        let i = try #require(plan.arguments.firstIndex(of: "--runtime"))
        #expect(i < plan.arguments.firstIndex(of: "mcpproxy-fixture:test") ?? plan.arguments.count)

        let bridged = try #require(throws: ProxyError.self) {
            try F.plan(F.server { $0.ociRuntime = "runsc" })
        }
        #expect(bridged.code == .invalidConfig)
        #expect(bridged.message.contains("docker_isolation.network_mode: network \"bridge\" with oci_runtime runsc"))
        #expect(bridged.message.contains("set network_mode to \"none\""))
        let global = try #require(throws: ProxyError.self) {
            try F.plan(F.server { $0.networkMode = "bridge" }, config: F.config { $0.ociRuntime = "runsc" })
        }
        #expect(global.message.contains("mcpServers.srv.isolation.network_mode: network \"bridge\""))
        let podmanGvisor = try F.plan(F.server { $0.networkMode = "none"; $0.engine = "podman"; $0.ociRuntime = "runsc" })
        #expect(podmanGvisor.executable == "podman" && F.value(after: "--runtime", in: podmanGvisor.arguments) == "runsc")
    }

    @Test("unknown engine or runtime names are config errors naming the known ones")
    func unknownNames() throws {
        let e = try #require(throws: ProxyError.self) { try F.plan(F.server { $0.engine = "containerd" }) }
        #expect(e.code == .invalidConfig)
        #expect(e.message.contains("mcpServers.srv.isolation.engine: unknown container engine \"containerd\" (known: docker, podman)"))
        let r = try #require(throws: ProxyError.self) { try F.plan(F.server(), config: F.config { $0.ociRuntime = "kata" }) }
        #expect(r.message.contains("docker_isolation.oci_runtime: unknown OCI runtime \"kata\" (known: runc, runsc)"))
    }

    @Test("other modes keep their own PID namespace and name no engine")
    func otherModes() throws {
        var s = ServerConfig(name: "plain")
        s.command = "/bin/true"
        var iso = ServerIsolationConfig()
        iso.mode = IsolationMode.none
        s.isolation = iso
        let plan = try Launcher.plan(server: s, config: ProxyConfig(), context: F.context())
        #expect(plan.ownPIDNamespace && plan.container == nil && plan.enforcement == ["isolation": "none"])
    }

    @Test("rootless podman on cgroups v1 is refused (its limits would not hold); rootful or cgroups v2 is fine")
    func podmanLimits() throws {
        let check = try #require(ContainerEngine.podman.limitsCheck)
        #expect(check.arguments == ["info", "--format", "{{.Host.Security.Rootless}} {{.Host.CgroupsVersion}}"])
        #expect(check.problem("true v1\n")?.contains("ignores --memory, --cpus and --pids-limit") == true)
        #expect(check.problem("false v1\n") == nil)
        #expect(check.problem("true v2\n") == nil)
        #expect(check.problem("") == nil)
        #expect(ContainerEngine.docker.limitsCheck == nil)
        // The real query as the tests run it (root): rootful, so no problem whatever the cgroups.
        let out = ContainerEngine.podman.runBlocking(check.arguments, environment: ProcessInfo.processInfo.environment, timeout: 60)
        #expect(out.status == 0, "\(out.stderr)")
        #expect(out.stdout.hasPrefix("false "), "\(out.stdout)")
        #expect(check.problem(out.stdout) == nil)
    }

    @Test("engine error texts of docker and podman are classified alike")
    func podmanErrors() {
        #expect(ContainerEngine.classify(stderr: "Error: unable to connect to Podman socket: dial unix /run/podman/podman.sock: connect: no such file or directory") == .daemonUnreachable)
        #expect(ContainerEngine.classify(stderr: "Error: Cannot connect to Podman. Please verify your connection") == .daemonUnreachable)
        #expect(ContainerEngine.classify(stderr: "Error: mcpproxy-nope:1: image not known") == .imageMissing)
        #expect(ContainerEngine.classify(stderr: "Error: no container with name or ID \"x\" found: no such container") == .noSuchContainer)
    }
}
