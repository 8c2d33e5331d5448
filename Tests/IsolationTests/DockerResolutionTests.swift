import Foundation
import Testing
import ProxyCore

/// Exhaustive checks of `IsolationResolver` against seed 001: every combination of per-server
/// mode, per-server legacy `enabled`, a missing isolation block, global mode, global legacy
/// `enabled`, and the kind of server (plain stdio command, a docker command, a URL).
@Suite("Isolation mode resolution (seed 001), exhaustive")
struct DockerResolutionTests {
    enum Kind: String, CaseIterable, Sendable { case command, dockerCommand, dockerPath, dockerExe, url, httpWithCommand }

    struct Case: Sendable, CustomStringConvertible {
        var serverMode: IsolationMode?
        var serverEnabled: Bool?
        var hasBlock: Bool
        var globalMode: IsolationMode?
        var globalEnabled: Bool?
        var kind: Kind
        var description: String {
            "server(mode:\(serverMode?.rawValue ?? "-") enabled:\(serverEnabled.map(String.init) ?? "-") block:\(hasBlock)) global(mode:\(globalMode?.rawValue ?? "-") enabled:\(globalEnabled.map(String.init) ?? "-")) \(kind)"
        }
    }

    static let modes: [IsolationMode?] = [nil] + IsolationMode.allCases.map { Optional($0) }
    static let flags: [Bool?] = [nil, true, false]

    static let allCases: [Case] = {
        var out: [Case] = []
        for kind in Kind.allCases {
            for gm in modes { for ge in flags {
                out.append(Case(serverMode: nil, serverEnabled: nil, hasBlock: false, globalMode: gm, globalEnabled: ge, kind: kind))
                for sm in modes { for se in flags {
                    out.append(Case(serverMode: sm, serverEnabled: se, hasBlock: true, globalMode: gm, globalEnabled: ge, kind: kind))
                } }
            } }
        }
        return out
    }()

    static func server(_ c: Case) -> ServerConfig {
        var s = ServerConfig(name: "s")
        switch c.kind {
        case .command: s.command = "uvx"; s.args = ["pkg"]
        case .dockerCommand: s.command = "docker"; s.args = ["run", "-i", "--rm", "img"]
        case .dockerPath: s.command = "/usr/local/bin/docker"
        case .dockerExe: s.command = "C:/Program Files/Docker/DOCKER.EXE"
        case .url: s.url = "http://127.0.0.1:9/mcp"
        case .httpWithCommand: s.command = "uvx"; s.protocolKind = .http
        }
        if c.hasBlock {
            var iso = ServerIsolationConfig()
            iso.mode = c.serverMode
            iso.enabled = c.serverEnabled
            s.isolation = iso
        }
        return s
    }

    static func global(_ c: Case) -> DockerIsolationConfig {
        var g = DockerIsolationConfig()
        g.mode = c.globalMode
        g.enabled = c.globalEnabled
        return g
    }

    @Test("every combination resolves by the seed's precedence", arguments: allCases)
    func precedence(_ c: Case) {
        let d = IsolationResolver.resolve(Self.server(c), global: Self.global(c))
        switch c.kind {
        case .url, .httpWithCommand:
            #expect(d == IsolationDecision(mode: .none, source: .notStdio))
        case .dockerCommand, .dockerPath, .dockerExe:
            #expect(d == IsolationDecision(mode: .none, source: .dockerCommandSkipped))
            #expect(d.reason == "docker command skipped")
        case .command:
            // The seed's rule, written out step by step.
            if let m = c.serverMode {
                #expect(d == IsolationDecision(mode: m, source: .perServerMode))
            } else if let e = c.serverEnabled {
                #expect(d == IsolationDecision(mode: e ? .docker : .none, source: .perServerLegacyEnabled))
            } else if let m = c.globalMode {
                #expect(d == IsolationDecision(mode: m, source: .globalMode))
            } else if let e = c.globalEnabled {
                #expect(d == IsolationDecision(mode: e ? .docker : .none, source: .globalLegacyEnabled))
            } else {
                #expect(d == IsolationDecision(mode: .none, source: .defaultNone))
            }
        }
    }

    @Test("the case table is the full cross product")
    func coverage() {
        // 6 kinds × 4 global modes × 3 global flags × (1 missing block + 4 × 3 block combinations)
        #expect(Self.allCases.count == 6 * 4 * 3 * (1 + 4 * 3))
    }

    @Test("seed 001's own examples")
    func seedExamples() {
        // {"docker_isolation": {"mode": "sandbox"}, ... {"isolation": {"mode": "none"}}}
        var g = DockerIsolationConfig()
        g.mode = .sandbox
        var trusted = ServerConfig(name: "trusted-local")
        trusted.command = "uvx"; trusted.args = ["x"]
        var iso = ServerIsolationConfig(); iso.mode = IsolationMode.none
        trusted.isolation = iso
        #expect(IsolationResolver.resolve(trusted, global: g).mode == .none)
        var other = ServerConfig(name: "other")
        other.command = "uvx"
        #expect(IsolationResolver.resolve(other, global: g) == IsolationDecision(mode: .sandbox, source: .globalMode))
        // An explicit mode always wins over enabled, at both levels.
        var g2 = DockerIsolationConfig(); g2.mode = IsolationMode.none; g2.enabled = true
        #expect(IsolationResolver.resolve(other, global: g2).mode == .none)
        var iso2 = ServerIsolationConfig(); iso2.mode = .docker; iso2.enabled = false
        other.isolation = iso2
        #expect(IsolationResolver.resolve(other, global: g2) == IsolationDecision(mode: .docker, source: .perServerMode))
    }

    @Test("the reasons are the stable strings logs, the API and doctor show")
    func reasons() {
        #expect(IsolationDecision.Source.perServerMode.rawValue == "per-server mode")
        #expect(IsolationDecision.Source.perServerLegacyEnabled.rawValue == "per-server legacy enabled")
        #expect(IsolationDecision.Source.globalMode.rawValue == "global mode")
        #expect(IsolationDecision.Source.globalLegacyEnabled.rawValue == "global legacy enabled")
        #expect(IsolationDecision.Source.dockerCommandSkipped.rawValue == "docker command skipped")
        #expect(IsolationDecision(mode: .docker, source: .globalMode).description == "docker (global mode)")
    }

    @Test("docker command detection", arguments: [
        ("docker", true), ("/usr/bin/docker", true), ("Docker.exe", true), ("./docker", true),
        ("dockerd", false), ("docker-compose", false), ("podman", false), ("uvx", false), ("/opt/docker/bin/node", false),
    ])
    func dockerCommand(_ command: String, _ expected: Bool) {
        #expect(IsolationResolver.isDockerCommand(command) == expected)
    }
}
