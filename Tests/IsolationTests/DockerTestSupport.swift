import Foundation
@testable import Isolation
import ProxyCore

/// Shared builders for the docker-isolation tests.
enum DockerFixture {
    static let owner = ContainerOwner(host: "testhost", bootID: "boot-1", pid: 4242, startTime: "777")

    static func context(home: String = "/home/u", hostEnv: [String: String]? = nil,
                        runtimeDir: String = "/run/mcpproxy-test", launchID: String = "abcdef0123456789") -> LaunchContext {
        LaunchContext(dataDir: "\(home)/.mcpproxy", instanceID: "inst-1", proxyPID: 4242,
                      hostEnvironment: hostEnv ?? ["PATH": "/usr/bin:/bin", "HOME": home, "AWS_SECRET_ACCESS_KEY": "hostsecret",
                                                   "DOCKER_HOST": "unix:///var/run/docker.sock", "LANG": "C.UTF-8"],
                      sandboxLauncher: nil, runtimeDir: runtimeDir, homeDir: home, launchID: launchID, platform: "linux")
    }

    static func server(_ name: String = "srv", command: String = "/fixture", args: [String] = [],
                       env: [String: String] = [:], _ configure: (inout ServerIsolationConfig) -> Void = { _ in }) -> ServerConfig {
        var s = ServerConfig(name: name)
        s.command = command
        s.args = args
        s.env = env
        var iso = ServerIsolationConfig()
        iso.mode = .docker
        configure(&iso)
        s.isolation = iso
        return s
    }

    static func config(_ configure: (inout DockerIsolationConfig) -> Void = { _ in }) -> ProxyConfig {
        var c = ProxyConfig()
        configure(&c.dockerIsolation)
        return c
    }

    /// Plans with a fixed owner and, by default, no symlinks anywhere (deterministic).
    static func plan(_ server: ServerConfig, config: ProxyConfig = config(), context: LaunchContext = context(),
                     symlinks: [String: String] = [:]) throws -> LaunchPlan {
        try DockerPlanner.plan(server: server, command: server.command!, config: config,
                               decision: IsolationDecision(mode: .docker, source: .perServerMode),
                               context: context, owner: owner, resolveSymlinks: { symlinks[$0] })
    }

    /// The value following `flag` in `args`, if any.
    static func value(after flag: String, in args: [String]) -> String? {
        guard let i = args.firstIndex(of: flag), i + 1 < args.count else { return nil }
        return args[i + 1]
    }

    /// Every value following `flag` in `args`.
    static func values(after flag: String, in args: [String]) -> [String] {
        var out: [String] = []
        for (i, a) in args.enumerated() where a == flag && i + 1 < args.count { out.append(args[i + 1]) }
        return out
    }
}
