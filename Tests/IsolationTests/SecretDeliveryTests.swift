import Foundation
import Testing
@testable import Isolation
import ProxyCore

@Suite("Secret delivery into containers: mounts, entrypoint, file; no value on the command line")
struct SecretDeliveryTests {
    typealias F = DockerFixture
    static let value = "s3cr3t-value-for-the-planner"

    static func context() -> LaunchContext {
        var c = F.context()
        c.sandboxLauncher = "/opt/mcpproxy/mcpproxy-sandbox"
        c.secretsBaseDir = "/run/mcpproxy-secrets"
        c.secretEnvNames = ["GH_TOKEN", "MULTI"]
        return c
    }

    static func server(_ configure: (inout ServerIsolationConfig) -> Void = { _ in }) -> ServerConfig {
        F.server(args: ["--name", "x"], env: ["GH_TOKEN": value, "MULTI": "line1\nline2 \(value)", "PLAIN": "visible"]) {
            $0.image = "mcpproxy-fixture:test"
            configure(&$0)
        }
    }

    @Test("secret variables go to the file; mounts read-only; the launcher is the entrypoint; the command follows --")
    func planShape() throws {
        let plan = try F.plan(Self.server(), context: Self.context())
        let d = try #require(plan.secrets)
        #expect(d.hostDir == "/run/mcpproxy-secrets/4242-mcpproxy-srv-abcdef012345")
        #expect(d.hostFile == d.hostDir + "/env")
        #expect(d.hostLauncher == "/opt/mcpproxy/mcpproxy-sandbox")
        #expect(d.names == ["GH_TOKEN", "MULTI"])
        #expect(d.contents == "GH_TOKEN=\(Self.value)\0MULTI=line1\nline2 \(Self.value)\0")
        #expect(d.uid == 65534 && d.gid == 65534)
        let a = plan.arguments
        #expect(F.values(after: "--volume", in: a) == [
            "/run/mcpproxy-secrets/4242-mcpproxy-srv-abcdef012345:/run/mcpproxy/secrets:ro",
            "/opt/mcpproxy/mcpproxy-sandbox:/run/mcpproxy/launch:ro",
        ])
        #expect(F.value(after: "--entrypoint", in: a) == "/run/mcpproxy/launch")
        let image = try #require(a.lastIndex(of: "mcpproxy-fixture:test"))
        #expect(Array(a[(image + 1)...]) == ["--env-file", "/run/mcpproxy/secrets/env", "--", "/fixture", "--name", "x"])
        // The plain variable still travels as before (name on the command line, value in the
        // client's environment); the secret ones are in neither.
        #expect(a.contains("PLAIN"))
        #expect(plan.environment["PLAIN"] == "visible")
        #expect(!a.contains("GH_TOKEN") && !a.contains("MULTI"))
        #expect(plan.environment["GH_TOKEN"] == nil && plan.environment["MULTI"] == nil)
        let everything = (a + plan.redactedCommandLine + Array(plan.environment.values) + plan.files.map(\.contents)
                          + Array(plan.enforcement.values) + plan.warnings).joined(separator: "\n")
        #expect(!everything.contains(Self.value))
        #expect(plan.enforcement["secrets"] == "2 via read-only tmpfs file, removed after start")
        #expect(ContainerLifecycle.commandInContainer(plan) == "/fixture")
        // The engine-side model of the run sees the two read-only binds.
        let facts = DockerPlanner.facts(of: plan)
        #expect(facts.binds.contains("/opt/mcpproxy/mcpproxy-sandbox:/run/mcpproxy/launch:ro"))
    }

    @Test("without secret variables the plan is unchanged (no mounts, no entrypoint)")
    func noSecretsNoChange() throws {
        var c = Self.context()
        c.secretEnvNames = []
        let plan = try F.plan(Self.server(), context: c)
        #expect(plan.secrets == nil)
        #expect(!plan.arguments.contains("--entrypoint"))
        #expect(plan.environment["GH_TOKEN"] == Self.value)
    }

    @Test("no memory-backed directory, no launcher, an --entrypoint in extra_args: clear config errors")
    func refusals() throws {
        var c = Self.context()
        c.secretsBaseDir = nil
        #expect { try F.plan(Self.server(), context: c) } throws: { e in
            (e as? ProxyError)?.code == .invalidConfig && (e as? ProxyError)?.message.contains("memory-backed") == true
        }
        c = Self.context()
        c.sandboxLauncher = nil
        #expect { try F.plan(Self.server(), context: c) } throws: { e in
            (e as? ProxyError)?.message.contains("mcpproxy-sandbox") == true
        }
        #expect { try F.plan(Self.server { $0.extraArgs = ["--entrypoint", "/bin/sh"] }, context: Self.context()) } throws: { e in
            (e as? ProxyError)?.message.contains("--entrypoint") == true
        }
    }

    @Test("the owner follows --user: numeric uid:gid (also from extra_args), none for names or the image user")
    func owner() throws {
        let named = try F.plan(Self.server { $0.user = "node:node" }, context: Self.context())
        #expect(named.secrets?.uid == nil)
        let extra = try F.plan(Self.server { $0.extraArgs = ["--user", "1000:1001"] }, context: Self.context())
        #expect(extra.secrets?.uid == 1000 && extra.secrets?.gid == 1001)
        let image = try F.plan(Self.server { $0.allow = ["image_user"] }, context: Self.context())
        #expect(image.secrets?.uid == nil)
        #expect(SecretDelivery.numericOwner("12") == nil)
        #expect(SecretDelivery.numericOwner("12:34")! == (12, 34))
    }

    @Test("the image's entrypoint is placed after the launcher's --, before the command")
    func imageEntrypoint() {
        let args = ["run", "--entrypoint", "/run/mcpproxy/launch", "img:1", "--env-file", "/run/mcpproxy/secrets/env", "--", "node", "s.js"]
        #expect(SecretDelivery.withImageEntrypoint(args, image: "img:1", entrypoint: ["docker-entrypoint.sh"])
                == ["run", "--entrypoint", "/run/mcpproxy/launch", "img:1", "--env-file", "/run/mcpproxy/secrets/env", "--",
                    "docker-entrypoint.sh", "node", "s.js"])
        #expect(SecretDelivery.withImageEntrypoint(args, image: "img:1", entrypoint: []) == args)
        #expect(SecretDelivery.encode(["A": "x\0y"]).bad == "A")
    }

    @Test("the file is written 0400 in a 0700 directory on tmpfs, deleted on demand; orphans of dead proxies go")
    func writeAndRemove() throws {
        guard let base = SecretDelivery.baseDirectory() else {
            Issue.record("no memory-backed directory on this host (candidates: \(SecretDelivery.candidates(environment: ProcessSettings.current.environment, uid: geteuid())))")
            return
        }
        let d = SecretDelivery(hostDir: base + "/\(getpid())-unit-\(UUID().uuidString.prefix(8))", hostLauncher: "/x",
                               contents: "A=1\0", names: ["A"], uid: geteuid(), gid: getegid())
        try d.write()
        var st = stat()
        #expect(stat(d.hostDir, &st) == 0 && st.st_mode & 0o777 == 0o700)
        #expect(stat(d.hostFile, &st) == 0 && st.st_mode & 0o777 == 0o400)
        #expect(try String(contentsOfFile: d.hostFile, encoding: .utf8) == "A=1\0")
        d.removeFile()
        #expect(!FileManager.default.fileExists(atPath: d.hostFile))
        #expect(FileManager.default.fileExists(atPath: d.hostDir))
        d.removeDirectory()
        #expect(!FileManager.default.fileExists(atPath: d.hostDir))
        // Owner unknown (a user name, the image's user) and not the proxy's uid: the container
        // user must read it by path: launch directory 0711, file 0444; the base stays 0700.
        let open_ = SecretDelivery(hostDir: base + "/\(getpid())-unit-\(UUID().uuidString.prefix(8))", hostLauncher: "/x",
                                   contents: "B=2\0", names: ["B"], uid: nil, gid: nil)
        try open_.write()
        defer { open_.removeDirectory() }
        #expect(stat(open_.hostDir, &st) == 0 && st.st_mode & 0o777 == 0o711)
        #expect(stat(open_.hostFile, &st) == 0 && st.st_mode & 0o777 == 0o444)
        #expect(stat(base, &st) == 0 && st.st_mode & 0o777 == 0o700 && st.st_uid == geteuid())
        // A directory of a dead proxy (pid 999999999 does not exist) is an orphan; ours is not.
        let dead = base + "/999999999-mcpproxy-gone-1"
        let mine = base + "/\(getpid())-mcpproxy-mine-1"
        try FileManager.default.createDirectory(atPath: dead, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: mine, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: mine) }
        let removed = SecretDelivery.cleanupOrphans(base: base)
        #expect(removed.contains("999999999-mcpproxy-gone-1"))
        #expect(!FileManager.default.fileExists(atPath: dead))
        #expect(FileManager.default.fileExists(atPath: mine))
    }
}

@Suite("Secret delivery: the image entrypoint from image inspect")
struct SecretEntrypointJSONTests {
    @Test("null, a list, or garbage from {{json .Config.Entrypoint}}")
    func parse() throws {
        var c = SecretDeliveryTests.context()
        c.secretEnvNames = ["GH_TOKEN"]
        let plan = try DockerFixture.plan(SecretDeliveryTests.server(), context: c)
        #expect(ContainerLifecycle.keepingImageEntrypoint(plan, entrypointJSON: "null\n").arguments == plan.arguments)
        #expect(ContainerLifecycle.keepingImageEntrypoint(plan, entrypointJSON: "not json").arguments == plan.arguments)
        let spliced = ContainerLifecycle.keepingImageEntrypoint(plan, entrypointJSON: "[\"/ep\",\"-x\"]\n").arguments
        #expect(Array(spliced.suffix(6)) == ["--", "/ep", "-x", "/fixture", "--name", "x"])
    }
}
