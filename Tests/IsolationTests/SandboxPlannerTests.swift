import Foundation
import Testing
@testable import Isolation
import ProxyCore

/// A machine made of a table: paths that exist, executables, file contents and symlinks.
struct SandboxFakeHost: SandboxHost {
    var dirs: Set<String> = []
    var files: [String: String] = [:]          // path → contents
    var executables: Set<String> = []
    var links: [String: String] = [:]          // path → resolved path
    var swiftRuntime: [String: [String]] = [:] // executable → library dirs
    var effectiveUID: UInt32 = 0
    var unsearchable: Set<String> = []        // dirs the sandbox uid may not enter

    func resolve(_ p: String) -> String { links[p] ?? p }
    func exists(_ path: String) -> Bool {
        let p = resolve(path)
        return dirs.contains(p) || files[p] != nil || executables.contains(p)
    }
    func isDirectory(_ path: String) -> Bool { dirs.contains(resolve(path)) }
    func isExecutableFile(_ path: String) -> Bool { executables.contains(resolve(path)) }
    func realPath(_ path: String) -> String? { exists(path) ? resolve(path) : nil }
    func readText(_ path: String, limit: Int) -> String? { files[resolve(path)].map { String($0.prefix(limit)) } }
    func runtimeLibraryDirectories(forExecutable path: String) -> [String] { swiftRuntime[path] ?? [] }
    func unsearchableAncestor(of path: String, uid: UInt32, gid: UInt32) -> String? {
        var prefix = ""
        for part in path.split(separator: "/").dropLast() {
            prefix += "/" + part
            if unsearchable.contains(prefix) { return prefix }
        }
        return nil
    }

    /// A typical Debian host with the probe built under /work/proj.
    static var debian: SandboxFakeHost {
        var h = SandboxFakeHost()
        h.dirs = ["/usr", "/bin", "/lib", "/lib64", "/etc/ssl", "/proc", "/sys/fs/cgroup", "/home/u", "/home/u/.ssh",
                  "/srv/data", "/work/proj", "/home/u/project"]
        for f in ["/etc/passwd", "/etc/group", "/etc/resolv.conf", "/etc/ld.so.cache", "/etc/hosts", "/etc/shadow",
                  "/dev/null", "/dev/zero", "/dev/urandom", "/home/u/.ssh/id_rsa"] { h.files[f] = "" }
        h.executables = ["/usr/bin/python3.11", "/work/proj/probe", "/usr/bin/env"]
        h.links["/usr/bin/python3"] = "/usr/bin/python3.11"
        h.executables.insert("/usr/bin/python3")
        return h
    }
}

fileprivate let fullKernel = SandboxKernel(landlockABI: 7, canUnshareNetwork: true, cgroupsWritable: true)

fileprivate func context(platform: String = "linux", launcher: String? = "/opt/mcpproxy/bin/mcpproxy-sandbox") -> LaunchContext {
    LaunchContext(dataDir: "/home/u/.mcpproxy", instanceID: "inst", proxyPID: 42,
                  hostEnvironment: ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/home/u", "LANG": "C.UTF-8",
                                    "AWS_SECRET_ACCESS_KEY": "hostsecret", "MCPPROXY_API_KEY": "k"],
                  sandboxLauncher: launcher, runtimeDir: "/run/mcpproxy", homeDir: "/home/u", launchID: "l1",
                  platform: platform)
}

fileprivate func server(_ command: String = "python3", args: [String] = ["-m", "srv"],
            _ edit: (inout ServerIsolationConfig) -> Void = { _ in }) -> ServerConfig {
    var s = ServerConfig(name: "s1")
    s.command = command
    s.args = args
    var iso = ServerIsolationConfig()
    iso.mode = .sandbox
    edit(&iso)
    s.isolation = iso
    return s
}

fileprivate func plan(_ s: ServerConfig, config: ProxyConfig = ProxyConfig(), host: SandboxFakeHost = .debian,
          kernel: SandboxKernel = fullKernel, ctx: LaunchContext = context()) throws -> LaunchPlan {
    try SandboxPlanner.plan(server: s, command: s.command!, config: config,
                            decision: IsolationDecision(mode: .sandbox, source: .perServerMode),
                            context: ctx, host: host, kernel: kernel)
}

/// The launcher options (before "--") as (option, value) pairs; flags get an empty value.
fileprivate func options(_ p: LaunchPlan) -> [(String, String)] {
    var out: [(String, String)] = []
    var i = 0
    let a = p.arguments
    while i < a.count, a[i] != "--" {
        if launcherFlags.contains(a[i]) { out.append((a[i], "")); i += 1; continue }
        out.append((a[i], a[i + 1])); i += 2
    }
    return out
}
fileprivate let launcherFlags: Set<String> = ["--allow-degraded", "--deny-unix", "--cgroup-optional", "--tcp-connect-none"]
fileprivate func values(_ p: LaunchPlan, _ option: String) -> [String] { options(p).filter { $0.0 == option }.map(\.1) }
fileprivate func command(_ p: LaunchPlan) -> [String] { Array(p.arguments.drop { $0 != "--" }.dropFirst()) }

@Suite struct SandboxPlannerTests {
    @Test func basicPlanRunsTheLauncherWithTheResolvedCommand() throws {
        let p = try plan(server())
        #expect(p.executable == "/opt/mcpproxy/bin/mcpproxy-sandbox")
        #expect(command(p) == ["/usr/bin/python3", "-m", "srv"])
        #expect(values(p, "--name") == ["s1"])
        #expect(p.mode == .sandbox)
        #expect(p.workingDirectory == nil)
        #expect(p.warnings.isEmpty)
        #expect(p.enforcement["degraded"] == "no")
        #expect(p.enforcement["not_enforced"] == "none")
        #expect(p.enforcement["landlock"] == "abi 7")
        #expect(!p.arguments.contains("--allow-degraded"))
    }

    @Test func systemPathsAreReadExecuteAndEtcIsGrantedEntryByEntry() throws {
        let p = try plan(server())
        let rx = values(p, "--rx"), ro = values(p, "--ro")
        #expect(rx.contains("/usr") && rx.contains("/bin") && rx.contains("/lib") && rx.contains("/lib64"))
        #expect(!rx.contains("/lib32"))  // absent on this host
        #expect(ro.contains("/etc/passwd") && ro.contains("/etc/ssl") && ro.contains("/etc/resolv.conf"))
        #expect(ro.contains("/proc"))
        #expect(!ro.contains("/etc") && !rx.contains("/etc") && !ro.contains("/etc/shadow"))
        #expect(values(p, "--dev") == ["/dev/null", "/dev/zero", "/dev/urandom"])
        for secret in ["/home/u", "/home/u/.ssh", "/home/u/.mcpproxy"] {
            #expect(!p.arguments.contains(secret))
        }
    }

    @Test func privateHomeAndTempDirAreCreatedWritableAndInTheEnvironment() throws {
        let p = try plan(server())
        let home = "/run/mcpproxy/sandbox/s1/home", tmp = "/run/mcpproxy/sandbox/s1/tmp"
        #expect(values(p, "--mkdir") == [home, tmp])
        #expect(values(p, "--rw") == [home, tmp])
        #expect(values(p, "--chdir") == [home])
        let env = SandboxPlanner.serverEnvironment(of: p)
        #expect(env["HOME"] == home)
        #expect(env["TMPDIR"] == tmp)
        #expect(env["XDG_CACHE_HOME"] == home + "/.cache")
        // Root: both are private tmpfs mounts of sandbox.home_size.
        #expect(values(p, "--tmpfs") == ["\(home)=\(512 << 20)", "\(tmp)=\(512 << 20)"])
        #expect(p.enforcement["home"] == "\(home) (private tmpfs, size 512m)")
    }

    @Test func environmentIsAllowlistedAndDeclaredEnvWinsAndIsRedacted() throws {
        var s = server()
        s.env = ["API_TOKEN": "tok-12345", "LANG": "de_DE.UTF-8"]
        s.args = ["--token", "tok-12345"]
        let p = try plan(s)
        let env = SandboxPlanner.serverEnvironment(of: p)
        #expect(env["AWS_SECRET_ACCESS_KEY"] == nil)
        #expect(env["MCPPROXY_API_KEY"] == nil)
        #expect(env["API_TOKEN"] == "tok-12345")
        #expect(env["LANG"] == "de_DE.UTF-8")
        #expect(env["PATH"] == "/usr/local/bin:/usr/bin:/bin")
        // The launcher itself sees only prefixed names: nothing the loader or libc reads.
        #expect(p.environment.keys.allSatisfy { $0.hasPrefix(SandboxPlanner.environmentPrefix) })
        #expect(p.environment["PATH"] == nil && p.environment["API_TOKEN"] == nil)
        #expect(!p.redactedCommandLine.joined(separator: " ").contains("tok-12345"))
        // The policy travels in argv only, never in the environment.
        #expect(!p.environment.values.contains { $0.contains("--rx") })
    }

    @Test func rootProxyDropsToTheConfiguredUser() throws {
        var c = ProxyConfig()
        c.sandbox.user = "1000:1001"
        let p = try plan(server(), config: c)
        #expect(values(p, "--uid") == ["1000"] && values(p, "--gid") == ["1001"])
        #expect(p.enforcement["uid"]?.hasPrefix("1000:1001 (configured") == true)
        let perServer = try plan(server { $0.user = "2000" }, config: c)
        #expect(values(perServer, "--uid") == ["2000"] && values(perServer, "--gid") == ["2000"])
    }

    @Test func nonRootProxyDoesNotPlanADrop() throws {
        var h = SandboxFakeHost.debian
        h.effectiveUID = 1000
        let p = try plan(server(), host: h)
        #expect(values(p, "--uid").isEmpty)
        #expect(p.enforcement["uid"]?.contains("not root") == true)
    }

    @Test(arguments: ["0:0", "0", "1000:0"])
    func rootUserIsRefusedWithoutOptIn(spec: String) throws {
        var c = ProxyConfig()
        c.sandbox.user = spec
        #expect(throws: ProxyError.self) { try plan(server(), config: c) }
        do { _ = try plan(server(), config: c) } catch let e as ProxyError { #expect(e.code == .refused) }
        c.sandbox.allowDegraded = true
        let p = try plan(server { $0.allow = ["root"] }, config: c)
        #expect(p.warnings.contains { $0.contains("root") })
    }

    @Test(arguments: ["nobody", "1000:x", "a:b:c", ""])
    func nonNumericUserIsInvalid(spec: String) {
        var c = ProxyConfig()
        c.sandbox.user = spec
        do { _ = try plan(server(), config: c); Issue.record("expected an error") }
        catch let e as ProxyError { #expect(e.code == .invalidConfig) } catch { Issue.record("\(error)") }
    }

    @Test func networkModes() throws {
        #expect(values(try plan(server()), "--net") == ["host"])
        let none = try plan(server { $0.networkMode = "none" })
        #expect(values(none, "--net") == ["none"])
        #expect(none.enforcement["network"]?.contains("namespace") == true)
        var c = ProxyConfig()
        c.dockerIsolation.networkMode = "none"
        #expect(values(try plan(server(), config: c), "--net") == ["none"])
        let custom = try plan(server { $0.networkMode = "my-docker-net" })
        #expect(values(custom, "--net") == ["host"])
        #expect(custom.warnings.contains { $0.contains("my-docker-net") })
    }

    @Test func networkNoneFallsBackToLandlockTCPWithoutNamespaces() throws {
        let k = SandboxKernel(landlockABI: 4, canUnshareNetwork: false, cgroupsWritable: true)
        var c = ProxyConfig()
        c.sandbox.allowDegraded = true  // ABI 4 < 6: scoping is missing anyway
        let p = try plan(server { $0.networkMode = "none" }, config: c, kernel: k)
        #expect(p.enforcement["network"]?.contains("Landlock") == true)
        #expect(p.enforcement["not_enforced"]?.contains("network") == false)
    }

    @Test func networkNoneWithoutNamespaceOrLandlockNetIsDegraded() throws {
        let k = SandboxKernel(landlockABI: 3, canUnshareNetwork: false, cgroupsWritable: true)
        do { _ = try plan(server { $0.networkMode = "none" }, kernel: k); Issue.record("expected refusal") }
        catch let e as ProxyError {
            #expect(e.code == .unsupported)
            #expect(e.message.contains("network none"))
            #expect(e.message.contains("allow_degraded"))
        }
    }

    @Test func tcpConnectAllowlist() throws {
        let p = try plan(server { $0.allowTCPConnect = [443, 8080] })
        #expect(values(p, "--tcp-connect") == ["443", "8080"])
        #expect(p.enforcement["tcp_connect"] == "only ports 443, 8080")
        let withNone = try plan(server { $0.allowTCPConnect = [443]; $0.networkMode = "none" })
        #expect(values(withNone, "--tcp-connect").isEmpty)
        #expect(withNone.warnings.contains { $0.contains("allow_tcp_connect") })
    }

    @Test func resourceLimits() throws {
        var c = ProxyConfig()
        let d = try plan(server(), config: c)
        #expect(values(d, "--rlimit") == ["as=\(8 << 30)", "nofile=1024", "nproc=256"])
        c.sandbox.memoryLimit = "512m"
        c.sandbox.maxOpenFiles = 64
        c.sandbox.maxProcesses = 16
        c.sandbox.cpuSeconds = 30
        let p = try plan(server { $0.memoryLimit = "256m"; $0.cpuLimit = "0.5" }, config: c)
        #expect(values(p, "--rlimit") == ["as=\(512 << 20)", "nofile=64", "nproc=16", "cpu=30"])
        #expect(values(p, "--cgroup-memory") == ["\(256 << 20)"])
        #expect(values(p, "--cgroup-cpus") == ["0.5"])
        #expect(p.enforcement["memory"] == "256m (cgroup)")
        #expect(p.enforcement["cpu"] == "0.5 cpus (cgroup)")
        let pids = try plan(server { $0.pidsLimit = 8 }, config: c)
        #expect(values(pids, "--rlimit").contains("nproc=8"))
    }

    @Test func cpuLimitWithoutCgroupsIsDegradedButMemoryFallsBack() throws {
        let k = SandboxKernel(landlockABI: 7, canUnshareNetwork: true, cgroupsWritable: false)
        let mem = try plan(server { $0.memoryLimit = "256m" }, kernel: k)
        #expect(mem.enforcement["memory"]?.contains("RLIMIT_AS") == true)
        #expect(throws: ProxyError.self) { try plan(server { $0.cpuLimit = "1.0" }, kernel: k) }
    }

    @Test(arguments: [1, 2, 3, 4, 5])
    func olderLandlockIsDegraded(abi: Int) throws {
        let k = SandboxKernel(landlockABI: abi, canUnshareNetwork: true, cgroupsWritable: true)
        #expect(throws: ProxyError.self) { try plan(server(), kernel: k) }
        var c = ProxyConfig()
        c.sandbox.allowDegraded = true
        let p = try plan(server(), config: c, kernel: k)
        #expect(p.arguments.contains("--allow-degraded"))
        #expect(p.enforcement["degraded"]?.hasPrefix("yes") == true)
        #expect(p.enforcement["not_enforced"]?.contains("scoping") == true)
        #expect(p.warnings.contains { $0.contains("degraded") })
        #expect(p.enforcement["landlock"] == "abi \(abi)")
    }

    @Test func kernelWithoutLandlockIsRefusedUnlessAllowed() throws {
        let k = SandboxKernel(landlockABI: 0, canUnshareNetwork: true, cgroupsWritable: true)
        do { _ = try plan(server(), kernel: k); Issue.record("expected refusal") }
        catch let e as ProxyError { #expect(e.code == .unsupported); #expect(e.message.contains("filesystem")) }
        var c = ProxyConfig()
        c.sandbox.allowDegraded = true
        let p = try plan(server(), config: c, kernel: k)
        #expect(p.enforcement["filesystem"] == "NOT confined")
        #expect(p.enforcement["landlock"] == "unavailable")
    }

    @Test(arguments: ["~", "~/.ssh", "~/.ssh/id_rsa", "/", "/home", "/home/u/.mcpproxy", "/home/u/.mcpproxy/db",
                      "~/.config", "/home/u/link-to-aws"])
    func pathsCoveringSecretsAreRefused(path: String) throws {
        var h = SandboxFakeHost.debian
        h.dirs.formUnion(["/home", "/home/u/.config", "/home/u/.aws", "/home/u/.mcpproxy", "/home/u/.mcpproxy/db"])
        h.links["/home/u/link-to-aws"] = "/home/u/.aws"
        for key in ["read", "write"] {
            // "/" and "/home" as write paths are system directories: refused with no opt-in (below).
            if key == "write" && (path == "/" || path == "/home") { continue }
            let s = server { key == "read" ? ($0.readPaths = [path]) : ($0.writePaths = [path]) }
            do { _ = try plan(s, host: h); Issue.record("\(key) \(path) was accepted") }
            catch let e as ProxyError {
                #expect(e.code == .refused)
                #expect(e.message.contains("broad_paths"))
                #expect(e.message.contains("s1"))
            }
            let allowed = server {
                key == "read" ? ($0.readPaths = [path]) : ($0.writePaths = [path])
                $0.allow = ["broad_paths"]
            }
            let p = try plan(allowed, host: h)
            #expect(p.warnings.contains { $0.contains("would expose") })
        }
    }

    @Test func globalPathsAreCheckedToo() {
        var c = ProxyConfig()
        c.sandbox.readPaths = ["~"]
        #expect(throws: ProxyError.self) { try plan(server(), config: c) }
    }

    @Test func directoryWithDotEnvIsRefused() {
        var h = SandboxFakeHost.debian
        h.dirs.insert("/srv/app")
        h.files["/srv/app/.env"] = "KEY=1"
        #expect(throws: ProxyError.self) { try plan(server { $0.readPaths = ["/srv/app"] }, host: h) }
    }

    @Test func narrowPathsAreGranted() throws {
        let p = try plan(server { $0.readPaths = ["/srv/data"]; $0.writePaths = ["~/project"] })
        #expect(values(p, "--ro").contains("/srv/data"))
        #expect(values(p, "--rw").contains("/home/u/project"))
        #expect(p.warnings.isEmpty)
    }

    @Test func missingPathsAreSkippedWithAWarning() throws {
        let p = try plan(server { $0.readPaths = ["/nope"]; $0.writePaths = ["/nope2"] })
        #expect(!p.arguments.contains("/nope") && !p.arguments.contains("/nope2"))
        #expect(p.warnings.count == 2)
    }

    @Test func workingDirIsCreatedGrantedAndEntered() throws {
        let p = try plan(server { $0.workingDir = "~/project/work" })
        #expect(values(p, "--mkdir").contains("/home/u/project/work"))
        #expect(values(p, "--rw").contains("/home/u/project/work"))
        #expect(values(p, "--chdir") == ["/home/u/project/work"])
        var s = server()
        s.workingDir = "/srv/data"
        #expect(values(try plan(s), "--chdir") == ["/srv/data"])
        #expect(throws: ProxyError.self) { try plan(server { $0.workingDir = "~" }) }
    }

    @Test func venvPythonGrantsTheVenvAndItsBaseInstall() throws {
        var h = SandboxFakeHost.debian
        h.dirs.formUnion(["/work/proj/.venv", "/opt/py/3.11", "/opt/py/3.11/bin"])
        h.files["/work/proj/.venv/pyvenv.cfg"] = "home = /opt/py/3.11/bin\nversion = 3.11.7\n"
        h.executables.formUnion(["/work/proj/.venv/bin/python", "/opt/py/3.11/bin/python3.11"])
        h.links["/work/proj/.venv/bin/python"] = "/opt/py/3.11/bin/python3.11"
        let p = try plan(server("/work/proj/.venv/bin/python", args: ["-m", "mcp_server_time"]), host: h)
        let rx = values(p, "--rx")
        #expect(rx.contains("/work/proj/.venv"))
        #expect(rx.contains("/opt/py/3.11"))
        #expect(command(p).first == "/work/proj/.venv/bin/python")
    }

    @Test func envShebangGrantsTheInterpreterInstall() throws {
        var h = SandboxFakeHost.debian
        h.executables.formUnion(["/opt/nodejs/bin/node", "/opt/npm/bin/npx"])
        h.links["/opt/npm/bin/npx"] = "/opt/npm/lib/node_modules/npm/bin/npx-cli.js"
        h.executables.insert("/opt/npm/lib/node_modules/npm/bin/npx-cli.js")
        h.files["/opt/npm/lib/node_modules/npm/bin/npx-cli.js"] = "#!/usr/bin/env node\nrequire('x')\n"
        var ctx = context()
        ctx.hostEnvironment["PATH"] = "/opt/npm/bin:/opt/nodejs/bin:/usr/bin"
        let p = try plan(server("npx", args: ["-y", "pkg"]), host: h, ctx: ctx)
        #expect(command(p) == ["/opt/npm/bin/npx", "-y", "pkg"])
        #expect(values(p, "--rx").contains("/opt/npm"))
        #expect(values(p, "--rx").contains("/opt/nodejs"))
    }

    @Test func binaryInHomeBinDoesNotExposeHome() throws {
        var h = SandboxFakeHost.debian
        h.dirs.insert("/home/u/bin")
        h.executables.insert("/home/u/bin/tool")
        let p = try plan(server("/home/u/bin/tool", args: []), host: h)
        #expect(values(p, "--rx").contains("/home/u/bin"))
        #expect(!values(p, "--rx").contains("/home/u"))
    }

    @Test func swiftRuntimeDirectoryIsGranted() throws {
        var h = SandboxFakeHost.debian
        h.executables.insert("/work/proj/.build/debug/fixture")
        h.swiftRuntime["/work/proj/.build/debug/fixture"] = ["/opt/swift/usr/lib/swift/linux"]
        let p = try plan(server("/work/proj/.build/debug/fixture", args: []), host: h)
        #expect(values(p, "--rx").contains("/opt/swift/usr/lib/swift/linux"))
        #expect(values(p, "--rx").contains("/work/proj/.build/debug"))
    }

    @Test func commandNotFoundAndLauncherMissing() {
        do { _ = try plan(server("no-such-tool")); Issue.record("expected notFound") }
        catch let e as ProxyError { #expect(e.code == .notFound); #expect(e.message.contains("no-such-tool")) } catch {}
        do { _ = try plan(server(), ctx: context(launcher: nil)); Issue.record("expected unavailable") }
        catch let e as ProxyError { #expect(e.code == .unavailable); #expect(e.message.contains("mcpproxy-sandbox")) } catch {}
        do { _ = try plan(server("./rel-missing")); Issue.record("expected notFound") }
        catch let e as ProxyError { #expect(e.code == .notFound) } catch {}
    }

    @Test(arguments: ["macos", "windows", "other"])
    func otherPlatformsRunUnconfinedWithAWarning(platform: String) throws {
        let p = try plan(server(), ctx: context(platform: platform, launcher: nil))
        #expect(p.executable == "python3")
        #expect(p.arguments == ["-m", "srv"])
        #expect(p.warnings.count == 1)
        #expect(p.warnings[0].contains("unconfined"))
        #expect(p.enforcement["isolation"] == "none")
        #expect(p.environment["AWS_SECRET_ACCESS_KEY"] == nil)
    }

    @Test func exitStatusesAreDescribed() {
        for s: Int32 in [120, 121, 122, 123] { #expect(SandboxPlanner.ExitStatus.describe(s) != nil) }
        #expect(SandboxPlanner.ExitStatus.describe(0) == nil)
        #expect(SandboxPlanner.ExitStatus.describe(1) == nil)
    }

    @Test func sandboxUserLoadsFromConfig() throws {
        let text = #"{"sandbox": {"user": "1000:1000", "allow_degraded": true}, "mcpServers": []}"#
        let loaded = try ConfigLoader.parse(data: Data(text.utf8))
        #expect(loaded.config.sandbox.user == "1000:1000")
        #expect(loaded.warnings.isEmpty)
        #expect(ProxyConfig().sandbox.user == nil)
        let range = try ConfigLoader.parse(data: Data(#"{"sandbox": {"uid_range": "5000-5009", "home_size": "64m"}}"#.utf8))
        #expect(range.config.sandbox.uidRange == "5000-5009" && range.config.sandbox.homeSize == "64m")
        #expect(range.warnings.isEmpty)
    }

    @Test func pathHelpers() {
        #expect(SandboxPlanner.isWithin("/a/b", "/a"))
        #expect(SandboxPlanner.isWithin("/a", "/a/"))
        #expect(!SandboxPlanner.isWithin("/ab", "/a"))
        #expect(SandboxPlanner.isWithin("/x", "/"))
        #expect(SandboxPlanner.sanitized("a b/c") == "a_b_c")
        #expect(SandboxPlanner.absolute("x/../y", base: "/w") == "/w/y")
    }
}

/// Issue 9: a launcher nothing can hook, system dirs refused, per-server limits, unix sockets,
/// the proxy's own port; issue 16: an interpreter the dropped uid cannot reach.
@Suite struct SandboxHardeningPlannerTests {
    static let loaderVariables = ["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "LD_DEBUG", "LD_BIND_NOW", "GCONV_PATH",
                                  "MALLOC_CHECK_", "MALLOC_ARENA_MAX", "MALLOC_PERTURB_", "GLIBC_TUNABLES", "LOCPATH",
                                  "NLSPATH", "HOSTALIASES", "RES_OPTIONS", "LOCALDOMAIN", "TZDIR", "NIS_PATH",
                                  "RESOLV_HOST_CONF", "GETCONF_DIR", "MCPX_SANDBOX_ENV_PATH"]

    @Test(arguments: loaderVariables)
    func loaderVariablesAreRefusedWithoutOptIn(name: String) throws {
        var s = server()
        s.env = [name: "/tmp/evil", "API_TOKEN": "t"]
        do { _ = try plan(s); Issue.record("\(name) was accepted") }
        catch let e as ProxyError {
            #expect(e.code == .refused)
            #expect(e.message.contains(name) && e.message.contains("loader_env") && e.message.contains("s1"))
        }
        var allowed = server { $0.allow = ["loader_env"] }
        allowed.env = [name: "/tmp/evil"]
        let p = try plan(allowed)
        #expect(p.warnings.contains { $0.contains(name) && $0.contains("loader_env") })
        // Even allowed, the launcher only ever sees it under the inert prefix.
        #expect(p.environment[name] == nil || name.hasPrefix("MCPX_SANDBOX_ENV_"))
        #expect(p.environment["MCPX_SANDBOX_ENV_" + name] == "/tmp/evil")
        #expect(SandboxPlanner.serverEnvironment(of: p)[name] == "/tmp/evil")
    }

    @Test(arguments: ["PATH", "LANG", "TMPDIR", "HOME", "PYTHONPATH", "NODE_OPTIONS", "LDAP_URI", "OLD_LD", "XLD_PRELOAD", "MALLOC"])
    func ordinaryVariablesPass(name: String) throws {
        var s = server()
        s.env = [name: "/usr/bin:/bin"]
        let p = try plan(s)
        #expect(SandboxPlanner.serverEnvironment(of: p)[name] == "/usr/bin:/bin")
        #expect(!p.warnings.contains { $0.contains("loader") })
    }

    @Test func launcherEnvironmentIsOnlyPrefixedNames() throws {
        var s = server()
        s.env = ["TOKEN": "abc"]
        let p = try plan(s)
        #expect(!p.environment.isEmpty)
        for k in p.environment.keys {
            #expect(k.hasPrefix("MCPX_SANDBOX_ENV_"))
            #expect(!SandboxPlanner.isLoaderVariable(String(k.dropFirst("MCPX_SANDBOX_ENV_".count))) || k == "MCPX_SANDBOX_ENV_MCPX_SANDBOX_ENV_")
        }
    }

    static let systemDirs = ["/", "/etc", "/etc/nginx", "/usr", "/usr/local/share/app", "/bin", "/sbin", "/lib", "/lib64",
                             "/boot", "/proc", "/sys", "/dev", "/dev/shm", "/var/lib", "/var/lib/docker", "/var/log", "/root",
                             "/root/work", "/run", "/run/user/0", "/var/run", "/home", "/home/alice", "/home/alice/work",
                             "/srv/link-to-etc"]

    @Test(arguments: systemDirs)
    func systemAndOtherUsersDirsAreNeverWritable(path: String) {
        var h = SandboxFakeHost.debian
        h.links["/srv/link-to-etc"] = "/etc"
        h.dirs.formUnion(["/etc", "/srv"])
        for key in ["working_dir", "write_paths"] {
            // broad_paths does not open these: there is no opt-in.
            let s = server {
                if key == "working_dir" { $0.workingDir = path } else { $0.writePaths = [path] }
                $0.allow = ["broad_paths"]
            }
            do { _ = try plan(s, host: h); Issue.record("\(key) \(path) was accepted") }
            catch let e as ProxyError {
                #expect(e.code == .refused, "\(key) \(path): \(e)")
                #expect(e.message.contains(key) && e.message.contains("may not write"), "\(e.message)")
            } catch { Issue.record("\(error)") }
        }
    }

    @Test(arguments: ["/srv/data", "~/project", "/opt/app/data", "/var/tmp/app", "/tmp/work", "/home/u/project/sub"])
    func ordinaryDirsAreWritable(path: String) throws {
        var h = SandboxFakeHost.debian
        h.dirs.formUnion(["/opt/app/data", "/var/tmp/app", "/tmp/work", "/home/u/project/sub"])
        let p = try plan(server { $0.writePaths = [path]; $0.workingDir = path }, host: h)
        #expect(values(p, "--chdir").count == 1)
    }

    @Test func eachServerGetsItsOwnStableUIDFromTheRange() throws {
        var c = ProxyConfig()
        let names = ["alpha", "beta", "gamma", "delta", "s1"]
        c.servers = names.map { ServerConfig(name: $0) }
        var uids: [String: UInt32] = [:]
        for n in names {
            var s = server()
            s.name = n
            let p = try plan(s, config: c)
            let uid = try #require(UInt32(values(p, "--uid").first ?? ""))
            #expect(values(p, "--gid") == [String(uid)])
            #expect((1_900_000_000...1_900_065_535).contains(uid))
            #expect(p.enforcement["uid"]?.contains("own uid") == true)
            uids[n] = uid
        }
        #expect(Set(uids.values).count == names.count, "uids collide: \(uids)")
        // Stable: the same config gives the same uid.
        #expect(try plan(server(), config: c).arguments == plan(server(), config: c).arguments)
        // A tiny range still separates them; one too small is an error.
        c.sandbox.uidRange = "7000-7004"
        var seen = Set<String>()
        for n in names { var s = server(); s.name = n; seen.insert(values(try plan(s, config: c), "--uid")[0]) }
        #expect(seen == Set((7000...7004).map(String.init)))
        c.sandbox.uidRange = "7000-7003"
        do { _ = try plan(server(), config: c); Issue.record("range too small accepted") }
        catch let e as ProxyError { #expect(e.code == .invalidConfig && e.message.contains("uid_range")) }
    }

    @Test(arguments: ["", "5", "0-10", "10-5", "a-b", "1-4294967295"])
    func badUIDRangesAreInvalid(range: String) {
        #expect(ConfigLoader.parseUIDRange(range) == nil)
        let loaded = try? ConfigLoader.parse(data: Data(#"{"sandbox": {"uid_range": "\#(range)"}}"#.utf8))
        #expect(loaded == nil)
    }

    @Test func cgroupPerLaunchWithDefaultLimits() throws {
        let p = try plan(server())
        #expect(values(p, "--cgroup") == ["s1-l1"])
        #expect(values(p, "--cgroup-memory") == ["\(2 << 30)"])
        #expect(values(p, "--cgroup-cpus") == ["1"])
        #expect(values(p, "--cgroup-pids") == ["256"])
        #expect(p.arguments.contains("--cgroup-optional"))
        #expect(p.enforcement["memory"] == "2g (cgroup, default)")
        #expect(p.enforcement["cpu"] == "1 cpus (cgroup, default)")
        #expect(p.enforcement["pids"] == "256 (cgroup pids.max and RLIMIT_NPROC)")
        #expect(p.cgroupDirectories == ["/sys/fs/cgroup/mcpproxy/s1-l1"])
        let v1 = try plan(server(), kernel: SandboxKernel(landlockABI: 7, canUnshareNetwork: true, cgroupsWritable: true, cgroupV2: false))
        #expect(v1.cgroupDirectories == ["/sys/fs/cgroup/memory/mcpproxy/s1-l1", "/sys/fs/cgroup/cpu/mcpproxy/s1-l1",
                                         "/sys/fs/cgroup/pids/mcpproxy/s1-l1"])
        // Configured limits replace the defaults and are not optional.
        let set = try plan(server { $0.memoryLimit = "300m"; $0.cpuLimit = "0.25"; $0.pidsLimit = 9 })
        #expect(values(set, "--cgroup-memory") == ["\(300 << 20)"] && values(set, "--cgroup-cpus") == ["0.25"])
        #expect(values(set, "--cgroup-pids") == ["9"] && !set.arguments.contains("--cgroup-optional"))
    }

    @Test func defaultLimitsWithoutCgroupsDoNotDegrade() throws {
        let k = SandboxKernel(landlockABI: 7, canUnshareNetwork: true, cgroupsWritable: false)
        let p = try plan(server(), kernel: k)
        #expect(p.enforcement["degraded"] == "no")
        #expect(p.enforcement["memory"]?.contains("RLIMIT_AS") == true)
        #expect(p.enforcement["cpu"]?.hasPrefix("no limit") == true)
        #expect(p.enforcement["pids"] == "256 (RLIMIT_NPROC)")
        #expect(p.cgroupDirectories.isEmpty)
    }

    @Test func nonRootHomeIsBoundedByFileSize() throws {
        var h = SandboxFakeHost.debian
        h.effectiveUID = 1000
        var c = ProxyConfig()
        c.sandbox.homeSize = "64m"
        let p = try plan(server(), config: c, host: h)
        #expect(values(p, "--tmpfs").isEmpty)
        #expect(values(p, "--rlimit").contains("fsize=\(64 << 20)"))
        #expect(p.enforcement["home"]?.contains("RLIMIT_FSIZE") == true)
        #expect(p.enforcement["rlimits"]?.contains("fsize=64m") == true)
    }

    @Test func unixSocketsAreDeniedByDefault() throws {
        for mode in ["none", "host"] {
            let p = try plan(server { $0.networkMode = mode })
            #expect(p.arguments.contains("--deny-unix"))
            #expect(p.enforcement["unix_sockets"]?.hasPrefix("denied") == true)
            #expect(values(p, "--hide").isEmpty)
        }
    }

    @Test func unixSocketsOptInHidesSocketDirsOrDegrades() throws {
        var h = SandboxFakeHost.debian
        h.dirs.formUnion(["/run", "/tmp", "/var/tmp", "/dev/shm"])
        h.links["/var/run"] = "/run"
        var ctx = context()
        ctx.runtimeDir = "/home/u/.mcpproxy-run"
        let p = try plan(server { $0.allow = ["unix_sockets"] }, host: h, ctx: ctx)
        #expect(!p.arguments.contains("--deny-unix"))
        #expect(values(p, "--hide") == ["/run", "/tmp", "/var/tmp", "/dev/shm"])
        #expect(p.warnings.contains { $0.contains("unix_sockets") })
        // A socket dir that holds a grant (the runtime dir under /run) cannot be hidden: degraded.
        do { _ = try plan(server { $0.allow = ["unix_sockets"] }, host: h); Issue.record("expected refusal") }
        catch let e as ProxyError { #expect(e.code == .unsupported && e.message.contains("unix sockets under /run")) }
        // Without root there is no private mount view at all.
        h.effectiveUID = 1000
        do { _ = try plan(server { $0.allow = ["unix_sockets"] }, host: h, ctx: ctx); Issue.record("expected refusal") }
        catch let e as ProxyError { #expect(e.code == .unsupported && e.message.contains("pathname unix sockets")) }
        var c = ProxyConfig()
        c.sandbox.allowDegraded = true
        let degraded = try plan(server { $0.allow = ["unix_sockets"] }, config: c, host: h, ctx: ctx)
        #expect(degraded.enforcement["unix_sockets"]?.contains("NOT confined") == true)
    }

    @Test func theProxyListenPortIsNeverGranted() throws {
        var ctx = context()
        ctx.proxyListenPorts = [8080]
        let p = try plan(server { $0.allowTCPConnect = [443, 8080] }, ctx: ctx)
        #expect(values(p, "--tcp-connect") == ["443"])
        #expect(p.warnings.contains { $0.contains("8080") && $0.contains("listen port") })
        #expect(p.enforcement["proxy_port"]?.hasPrefix("unreachable") == true)
        let only = try plan(server { $0.allowTCPConnect = [8080] }, ctx: ctx)
        #expect(values(only, "--tcp-connect").isEmpty && only.arguments.contains("--tcp-connect-none"))
        #expect(only.enforcement["tcp_connect"] == "no port")
        let open = try plan(server(), ctx: ctx)
        #expect(open.enforcement["proxy_port"]?.hasPrefix("reachable") == true)
        let none = try plan(server { $0.networkMode = "none" }, ctx: ctx)
        #expect(none.enforcement["proxy_port"] == "unreachable (no network)")
    }

    @Test func interpreterUnderRootIsRefusedWithAHint() throws {
        var h = SandboxFakeHost.debian
        h.dirs.formUnion(["/root", "/root/.venv", "/root/.venv/bin"])
        h.executables.insert("/root/.venv/bin/python")
        h.unsearchable = ["/root"]
        do { _ = try plan(server("/root/.venv/bin/python", args: ["-m", "srv"]), host: h); Issue.record("expected refusal") }
        catch let e as ProxyError {
            #expect(e.code == .refused)
            #expect(e.message.contains("unprivileged uid") && e.message.contains("cannot enter /root"), "\(e.message)")
            #expect(e.message.contains("/opt"))
        }
        // A non-root proxy drops nothing: the same path is fine.
        h.effectiveUID = 1000
        _ = try plan(server("/root/.venv/bin/python", args: ["-m", "srv"]), host: h)
    }
}

/// `egress` in sandbox mode (docs/egress.md): the launcher joins a namespace the proxy made.
@Suite("Sandbox egress planning")
struct SandboxEgressPlannerTests {
    func withEgress(_ rules: [String], env: [String: String] = [:], _ edit: (inout ServerIsolationConfig) -> Void = { _ in }) throws -> ServerConfig {
        var s = server("python3", args: ["-m", "srv"], edit)
        s.egress = try rules.map(EgressRule.parse)
        s.env = env
        return s
    }

    @Test func egressWinsOverNetworkModeAndTCPPorts() throws {
        var ctx = context()
        ctx.proxyListenPorts = [8080]
        let p = try plan(try withEgress(["api.example.com:443"]) { $0.networkMode = "none"; $0.allowTCPConnect = [443] }, ctx: ctx)
        let egress = try #require(p.egress)
        #expect(egress.network == "mcpx-42-l1")
        #expect(egress.hostInterface == "mcpxsl1")
        #expect(egress.variablePrefix == SandboxPlanner.environmentPrefix)
        #expect(values(p, "--net") == ["netns:/run/netns/mcpx-42-l1"])
        #expect(values(p, "--tcp-connect").isEmpty && !p.arguments.contains("--tcp-connect-none"))
        #expect(p.enforcement["network"]?.hasPrefix("egress: own network namespace mcpx-42-l1") == true)
        #expect(p.enforcement["egress"] == "api.example.com:443")
        #expect(p.enforcement["proxy_port"] == nil)  // set once the proxy listens
        #expect(p.warnings.contains { $0.contains("allow_tcp_connect is ignored") })
        #expect(p.warnings.contains { $0.contains("network_mode \"none\" is ignored") })
        #expect(egress.environment(proxyURL: "http://198.18.0.1:5").keys.sorted() == EgressPlan.proxyVariables.map { SandboxPlanner.environmentPrefix + $0 }.sorted())
    }

    @Test func egressNeedsRootAndLinuxAndOwnsTheProxyVariables() throws {
        var h = SandboxFakeHost.debian
        h.effectiveUID = 1000
        do { _ = try plan(try withEgress(["a.example:443"]), host: h); Issue.record("planned") }
        catch let e as ProxyError { #expect(e.code == .unsupported && e.message.contains("needs a root proxy")) }
        do { _ = try plan(try withEgress(["a.example:443"]), ctx: context(platform: "macos")); Issue.record("planned") }
        catch let e as ProxyError { #expect(e.code == .unsupported && e.message.contains("needs Linux")) }
        do { _ = try plan(try withEgress(["a.example:443"], env: ["https_proxy": "http://x:1"])); Issue.record("planned") }
        catch let e as ProxyError { #expect(e.code == .invalidConfig && e.message.contains("env.https_proxy")) }
    }

    /// The real launcher refuses to start when the namespace it should join is not there
    /// (never the host network instead).
    @Test func theLauncherFailsClosedWithoutItsNamespace() throws {
        let launcher = SandboxProducts.launcher
        let p = Process()
        p.executableURL = URL(fileURLWithPath: launcher)
        p.arguments = ["--name", "t", "--net", "netns:/run/netns/mcpx-does-not-exist", "--allow-degraded", "--", "/bin/true"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 121, "\(text)")
        #expect(text.contains("network namespace /run/netns/mcpx-does-not-exist"), "\(text)")
    }

    @Test func subnetsAreDistinctSlash30sInTheBenchmarkingRange() {
        #expect(SandboxEgress.subnet(0) == ("198.18.0.1", "198.18.0.2"))
        #expect(SandboxEgress.subnet(1) == ("198.18.0.5", "198.18.0.6"))
        #expect(SandboxEgress.subnet(16384) == ("198.19.0.1", "198.19.0.2"))
        #expect(SandboxEgress.subnet(32767) == ("198.19.255.253", "198.19.255.254"))
        #expect(SandboxEgress.subnet(32768) == SandboxEgress.subnet(0))
        let all = Set((0..<32768).map { SandboxEgress.subnet(UInt32($0)).host })
        #expect(all.count == 32768)
        #expect(all.allSatisfy { AddressClass.of(IPAddress($0)!) == .privateRange })
    }
}

@Suite struct WorkspaceSandboxPlanTests {
    func ctx(_ ws: String?) -> LaunchContext {
        var c = context()
        c.workspace = ws
        c.workspaceRoot = "/var/lib/mcpproxy/ws-x"
        return c
    }

    @Test func aWorkspaceInstanceHasTheWorkspacesOwnPersistentHome() throws {
        let p = try plan(server(), ctx: ctx("alpha"))
        let home = "/var/lib/mcpproxy/ws-x/alpha/sandbox/s1/home"
        #expect(p.environment[SandboxPlanner.environmentPrefix + "HOME"] == home)
        #expect(values(p, "--mkdir").contains(home))
        #expect(values(p, "--rw").contains(home))
        // Root proxy: the home is not a tmpfs (it outlives the instance); TMPDIR still is.
        #expect(!values(p, "--tmpfs").contains { $0.hasPrefix(home) })
        #expect(values(p, "--tmpfs").contains { $0.hasPrefix("/run/mcpproxy/sandbox/s1@alpha/tmp") })
        #expect(p.enforcement["home"]?.contains("workspace alpha") == true)
    }

    @Test func twoWorkspacesGetTwoHomes() throws {
        let a = try plan(server(), ctx: ctx("alpha")), b = try plan(server(), ctx: ctx("beta"))
        #expect(Set(values(a, "--rw")).isDisjoint(with: values(b, "--rw").filter { $0.contains("/ws-x/") }))
        let shared = try plan(server(), ctx: ctx(nil))
        #expect(!values(shared, "--rw").contains { $0.contains("/ws-x/") })
    }
}
