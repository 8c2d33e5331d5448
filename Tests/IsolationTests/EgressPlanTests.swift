import Foundation
@testable import Isolation
import ProxyCore
import Testing

/// Docker planning of a server with `egress` (docs/egress.md).
@Suite("Egress planning")
struct EgressPlanTests {
    func server(_ egress: [String]?, env: [String: String] = [:], _ configure: (inout ServerIsolationConfig) -> Void = { _ in }) throws -> ServerConfig {
        var s = DockerFixture.server(env: env, configure)
        s.egress = try egress?.map(EgressRule.parse)
        return s
    }

    @Test func egressPutsTheServerOnItsOwnInternalNetworkWithProxyVariables() throws {
        let plan = try DockerFixture.plan(try server(["api.example.com:443"]) { $0.networkMode = "bridge" })
        let egress = try #require(plan.egress)
        #expect(egress.network == "mcpproxy-egress-abcdef0123")
        #expect(egress.hostInterface == "mcpxeabcdef0123")
        #expect(egress.hostInterface.utf8.count <= 15)
        #expect(egress.labels[EgressPlan.networkLabel] == "true")
        #expect(egress.labels[DockerPlanner.Label.managed] == "true")
        #expect(egress.labels[DockerPlanner.Label.ownerPID] == "4242")
        #expect(DockerFixture.values(after: "--network", in: plan.arguments) == [egress.network])
        let envNames = DockerFixture.values(after: "--env", in: plan.arguments)
        for name in EgressPlan.proxyVariables { #expect(envNames.contains(name)) }
        // network_mode is overridden, and said so.
        #expect(plan.warnings.contains { $0.contains("network_mode \"bridge\" is ignored") })
        #expect(plan.enforcement["egress"] == "api.example.com:443")
        #expect(plan.enforcement["network"]?.contains("internal network") == true)
        #expect(DockerPlanner.facts(of: plan).networks == [egress.network])
    }

    @Test func withoutEgressTheNetworkModeStays() throws {
        let plan = try DockerFixture.plan(try server(nil) { $0.networkMode = "none" })
        #expect(plan.egress == nil)
        #expect(DockerFixture.values(after: "--network", in: plan.arguments) == ["none"])
        #expect(!DockerFixture.values(after: "--env", in: plan.arguments).contains("HTTP_PROXY"))
    }

    @Test func anEmptyListStillConfinesAndAllowsNothing() throws {
        let plan = try DockerFixture.plan(try server([]))
        #expect(plan.egress?.policy.rules == [])
        #expect(plan.enforcement["egress"] == "none (no destination allowed)")
    }

    @Test func aNetworkInExtraArgsOrADeclaredProxyVariableIsRefused() throws {
        #expect(throws: ProxyError.self) {
            try DockerFixture.plan(try server(["a.example:443"]) { $0.extraArgs = ["--network", "bridge"] })
        }
        #expect(throws: ProxyError.self) {
            try DockerFixture.plan(try server(["a.example:443"], env: ["HTTPS_PROXY": "http://elsewhere:3128"]))
        }
    }

    @Test func egressNeedsDockerHere() throws {
        var s = try server(["a.example:443"])
        s.isolation?.mode = IsolationMode.none
        do {
            _ = try Launcher.plan(server: s, config: ProxyConfig(), context: DockerFixture.context())
            Issue.record("planned")
        } catch let e as ProxyError {
            #expect(e.code == .invalidConfig)
            #expect(e.message.contains("egress needs isolation mode docker"))
        }
    }

    @Test func networkCreateArgumentsPerEngine() throws {
        let plan = try DockerFixture.plan(try server(["a.example:443"]))
        let egress = try #require(plan.egress)
        let docker = ContainerLifecycle.egressNetworkCreate(egress, engine: .docker)
        #expect(Array(docker.prefix(3)) == ["network", "create", "--internal"])
        #expect(docker.contains("com.docker.network.bridge.name=\(egress.hostInterface)"))
        #expect(docker.contains("\(EgressPlan.networkLabel)=true"))
        #expect(docker.last == egress.network)
        let podman = ContainerLifecycle.egressNetworkCreate(egress, engine: .podman)
        #expect(!podman.contains { $0.contains("bridge.name") } && podman.last == egress.network)
        #expect(podman.contains("--internal"))
    }

    @Test func fenceRulesAcceptOnlyTheProxyPort() throws {
        var egress = try #require(try DockerFixture.plan(try server(["a.example:443"])).egress)
        egress.gateway = "172.30.0.1"
        let rules = EgressFence.rules(egress, port: 4567)
        #expect(rules.count == 3)
        #expect(rules[0].spec.contains("4567") && rules[0].spec.contains("172.30.0.1") && rules[0].spec.contains("tcp"))
        #expect(rules[0].spec.last == "ACCEPT")
        #expect(rules[1].spec.last == "DROP" && rules[1].tool == "iptables")
        #expect(rules[2].spec.last == "DROP" && rules[2].tool == "ip6tables")
        for r in rules { #expect(r.spec.contains(egress.hostInterface)) }
    }
}
