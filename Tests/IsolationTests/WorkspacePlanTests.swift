import Foundation
import Testing
@testable import Isolation
import ProxyCore

@Suite struct WorkspaceDockerPlanTests {
    func context(_ ws: String?) -> LaunchContext {
        var c = DockerFixture.context()
        c.workspace = ws
        c.workspaceRoot = "/var/lib/mcpproxy/ws-x"
        return c
    }

    @Test func aWorkspaceInstanceGetsItsNetworkVolumeAndLabel() throws {
        let p = try DockerFixture.plan(DockerFixture.server("files"), context: context("alpha"))
        let a = p.arguments
        #expect(DockerFixture.value(after: "--network", in: a) == "mcpproxy-ws-alpha")
        #expect(DockerFixture.values(after: "--volume", in: a) == ["mcpproxy-ws-alpha-files:/workspace:nocopy"])
        #expect(DockerFixture.value(after: "--workdir", in: a) == "/workspace")
        #expect(a.contains("--label") && a.contains("mcpproxy.workspace=alpha"))
        let c = try #require(p.container)
        #expect(c.workspaceNetwork == "mcpproxy-ws-alpha" && c.workspaceVolume == "mcpproxy-ws-alpha-files")
        #expect(c.workspaceVolumeDir == "/var/lib/mcpproxy/ws-x/alpha/docker/files")
        #expect(c.workspaceVolumeOwner == "65534:65534")
        #expect(c.labels["mcpproxy.workspace"] == "alpha")
        #expect(p.enforcement["network"]?.contains("internal") == true)
    }

    @Test func aSharedInstanceIsUnchanged() throws {
        let p = try DockerFixture.plan(DockerFixture.server("files"), context: context(nil))
        #expect(DockerFixture.value(after: "--network", in: p.arguments) == ProxyConfig().dockerIsolation.networkMode)
        #expect(DockerFixture.values(after: "--volume", in: p.arguments).isEmpty)
        #expect(p.container?.workspaceNetwork == nil && p.container?.labels["mcpproxy.workspace"] == nil)
    }

    @Test func anExplicitNetworkModeAndWorkingDirWin() throws {
        let s = DockerFixture.server("files") { $0.networkMode = "bridge"; $0.workingDir = "/data" }
        let p = try DockerFixture.plan(s, context: context("beta"))
        #expect(DockerFixture.value(after: "--network", in: p.arguments) == "bridge")
        #expect(p.container?.workspaceNetwork == nil)
        #expect(DockerFixture.values(after: "--volume", in: p.arguments) == ["mcpproxy-ws-beta-files:/data:nocopy"])
        #expect(DockerFixture.values(after: "--workdir", in: p.arguments) == ["/data"])
    }

    @Test func anImageUserOwnsNothingWeChown() throws {
        let s = DockerFixture.server("files") { $0.allow = ["image_user"] }
        let p = try DockerFixture.plan(s, context: context("alpha"))
        #expect(p.container?.workspaceVolumeOwner == nil)
    }
}

@Suite struct WorkspaceOrphanTests {
    @Test func orphanCleanupNamesTheWorkspaceOfAContainer() {
        let labels = ["mcpproxy.managed": "true", "mcpproxy.server": "files", "mcpproxy.instance": "old",
                      "mcpproxy.owner_pid": "1", "mcpproxy.owner_host": "h", "mcpproxy.owner_boot": "b"]
        var ws = labels
        ws["mcpproxy.workspace"] = "alpha"
        let d = ContainerLifecycle.selectOrphans([.init(id: "c1", labels: labels), .init(id: "c2", labels: ws)],
                                                 instanceID: "new", host: "h", bootID: "b", isAlive: { _, _ in false })
        #expect(d.map(\.server) == ["files", "files@alpha"])
        #expect(d.filter { !$0.remove }.isEmpty)
    }
}
