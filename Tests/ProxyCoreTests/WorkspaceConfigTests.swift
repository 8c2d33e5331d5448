import Foundation
import Testing
@testable import ProxyCore

@Suite struct WorkspaceConfigTests {
    func load(_ text: String) throws -> ConfigLoader.Loaded {
        try ConfigLoader.parse(data: Data(text.utf8), file: "test.json")
    }

    func error(_ text: String) -> String {
        do { _ = try load(text); return "" } catch let e as ProxyError { return e.message } catch { return "\(error)" }
    }

    let server = #""mcpServers":[{"name":"files","command":"/bin/f","instance":"workspace","idle_timeout":"90s"}]"#

    @Test func workspacesAndInstanceScopeLoad() throws {
        let c = try load(#"{\#(server),"workspaces":{"beta":{"members":["tok-b","jwt:alice"]},"alpha":{"members":["token:tok-a"],"servers":["files","files"],"intent":"write"}}}"#).config
        #expect(c.workspaces.map(\.name) == ["alpha", "beta"])
        #expect(c.workspaces[0] == WorkspaceConfig(name: "alpha", members: ["token:tok-a"], servers: ["files"], intent: "write"))
        #expect(c.workspaces[1].members == ["token:tok-b", "jwt:alice"])
        #expect(c.workspaces[1].servers == nil && c.workspaces[1].intent == nil)
        #expect(c.workspace(ofMember: "token:tok-b")?.name == "beta")
        #expect(c.workspace(ofMember: "jwt:alice")?.name == "beta")
        #expect(c.workspace(ofMember: "token:alice") == nil)
        #expect(c.servers[0].instance == .workspace)
        #expect(c.servers[0].idleTimeout == 90)
    }

    @Test func sharedIsTheDefault() throws {
        let c = try load(#"{"mcpServers":[{"name":"a","command":"x"}]}"#).config
        #expect(c.servers[0].instance == .shared && c.servers[0].idleTimeout == nil && c.workspaces.isEmpty)
    }

    @Test func mistakesAreNamed() {
        #expect(error(#"{"workspaces":{"Bad Name":{}}}"#).contains("invalid workspace name \"Bad Name\""))
        #expect(error(#"{"workspaces":{"a":{"members":["t"]},"b":{"members":["token:t"]}}}"#)
            .contains("token:t is already a member of workspace \"a\""))
        #expect(error(#"{"workspaces":{"a":{"intent":"admin"}}}"#).contains("workspaces.a.intent"))
        #expect(error(#"{"mcpServers":[{"name":"a","command":"x","instance":"session"}]}"#).contains("not supported yet"))
        #expect(error(#"{"mcpServers":[{"name":"a","command":"x","instance":"per-user"}]}"#).contains("expected \"shared\" or \"workspace\""))
        #expect(error(#"{"mcpServers":[{"name":"a","url":"http://127.0.0.1:1/mcp","instance":"workspace"}]}"#).contains("need a stdio server"))
        #expect(error(#"{"mcpServers":[{"name":"a","command":"x","idle_timeout":"0s"}]}"#).contains("idle_timeout"))
    }

    @Test func typosGetDidYouMean() throws {
        let w = try load(#"{"workspace":{},"mcpServers":[{"name":"a","command":"x","instanse":"shared","idle_timout":"5s"}],"workspaces":{"a":{"member":[]}}}"#).warnings
        let suggestions = Set(w.compactMap(\.suggestion))
        #expect(suggestions.isSuperset(of: ["workspaces", "instance", "idle_timeout", "members"]), "\(w)")
    }

    @Test func namesOfWhatAWorkspaceOwns() {
        #expect(WorkspaceNames.network("alpha") == "mcpproxy-ws-alpha")
        #expect(WorkspaceNames.volume(workspace: "alpha", server: "My.Files") == "mcpproxy-ws-alpha-my.files")
        #expect(WorkspaceNames.sandboxHome(root: "/r", workspace: "a", server: "s") == "/r/a/sandbox/s/home")
        #expect(WorkspaceNames.dockerData(root: "/r", workspace: "a", server: "s") == "/r/a/docker/s")
        #expect(WorkspaceNames.root(dataDir: "/home/u/.mcpproxy", isRoot: false) == "/home/u/.mcpproxy/workspaces")
        let r1 = WorkspaceNames.root(dataDir: "/d1", isRoot: true), r2 = WorkspaceNames.root(dataDir: "/d2", isRoot: true)
        #expect(r1.hasPrefix("/var/lib/mcpproxy/ws-") && r1 != r2 && r1 == WorkspaceNames.root(dataDir: "/d1", isRoot: true))
        #expect(WorkspaceConfig.isValidName("team-1_x") && !WorkspaceConfig.isValidName("-a") && !WorkspaceConfig.isValidName("A")
                && !WorkspaceConfig.isValidName(String(repeating: "a", count: 33)))
    }

    @Test func configFileWritesInstanceKeys() throws {
        var s = ServerConfig(name: "f")
        s.command = "x"
        s.instance = .workspace
        s.idleTimeout = 30
        let o = ConfigFile.json(for: s)
        #expect(o["instance"] as? String == "workspace" && o["idle_timeout"] as? String == "30.0s")
        let shared = ConfigFile.json(for: ServerConfig(name: "g"))
        #expect(shared["instance"] == nil)
    }
}
