import Foundation
import ProxyCore
import Testing

/// Mistakes that used to hide: typos of known keys, duplicate keys, syntax errors without a line.
@Suite("Config diagnostics")
struct ConfigDiagnosticsTests {
    func message(_ text: String) -> String {
        do {
            _ = try ConfigLoader.parse(data: Data(text.utf8), file: "t.json")
            return ""
        } catch let e as ProxyError {
            return e.message
        } catch {
            return "\(error)"
        }
    }

    /// Typos that would loosen confinement are errors.
    @Test(arguments: [
        (#"{"docker_isolaton": {"mode": "none"}}"#, "docker_isolaton: unknown key; did you mean \"docker_isolation\"?"),
        (#"{"sandbx": {"allow_degraded": false}}"#, "did you mean \"sandbox\"?"),
        (#"{"mcpServers": {"a": {"command": "x", "isolaton": {"mode": "docker"}}}}"#, "did you mean \"isolation\"?"),
        (#"{"mcpServers": {"a": {"command": "x", "isolation": {"mdoe": "none"}}}}"#, "did you mean \"mode\"?"),
        (#"{"docker_isolation": {"network_mod": "none"}}"#, "did you mean \"network_mode\"?"),
        (#"{"docker_isolation": {"engin": "podman"}}"#, "docker_isolation.engin: unknown key; did you mean \"engine\"?"),
        (#"{"mcpServers": {"a": {"command": "x", "isolation": {"oci_runtim": "runsc"}}}}"#, "did you mean \"oci_runtime\"?"),
        (#"{"docker_isolation": {"engine": "Podman"}}"#, "docker_isolation.engine: expected a name such as \"docker\" or \"podman\", found \"Podman\""),
        (#"{"mcpServers": {"a": {"command": "x", "isolation": {"oci_runtime": 1}}}}"#, "mcpServers.a.isolation.oci_runtime"),
    ])
    func confinementTyposAreErrors(text: String, expected: String) {
        let m = message(text)
        #expect(m.contains(expected), "got: \(m)")
    }

    /// The engine and OCI runtime keys load globally and per server (names are checked when the
    /// server is planned, against the Isolation layer's registries).
    @Test func engineAndRuntimeKeysLoad() throws {
        let text = #"{"docker_isolation": {"engine": "podman", "oci_runtime": "runsc"}, "mcpServers": {"a": {"command": "x", "isolation": {"engine": "docker", "oci_runtime": "runc"}}, "b": {"command": "y"}}}"#
        let l = try ConfigLoader.parse(data: Data(text.utf8))
        #expect(l.config.dockerIsolation.engine == "podman")
        #expect(l.config.dockerIsolation.ociRuntime == "runsc")
        #expect(l.config.server(named: "a")?.isolation?.engine == "docker")
        #expect(l.config.server(named: "a")?.isolation?.ociRuntime == "runc")
        #expect(l.config.server(named: "b")?.isolation?.engine == nil)
        #expect(ProxyConfig().dockerIsolation.engine == "docker" && ProxyConfig().dockerIsolation.ociRuntime == "runc")
    }

    /// Other typos stay warnings, with the key they probably meant.
    @Test(arguments: [
        (#"{"mcpServers": {"a": {"command": "x", "arg": ["y"]}}}"#, "mcpServers.a.arg", "args"),
        (#"{"lisen": "127.0.0.1:1"}"#, "lisen", "listen"),
        (#"{"mcp_auht": "none"}"#, "mcp_auht", "mcp_auth"),
        (#"{"security": {"scaners": []}}"#, "security.scaners", "scanners"),
    ])
    func otherTyposWarnWithAGuess(text: String, path: String, guess: String) throws {
        let l = try ConfigLoader.parse(data: Data(text.utf8))
        let w = try #require(l.warnings.first { $0.path == path })
        #expect(w.message.contains("did you mean \"\(guess)\"?"), "got: \(w.message)")
    }

    @Test func missingCommandAlsoNamesTheTypo() {
        let m = message(#"{"mcpServers": [{"name": "a", "comand": "x"}]}"#)
        #expect(m.contains("command"), "got: \(m)")
        #expect(m.contains("comand"), "got: \(m)")
    }

    @Test func farUnknownKeysStayWarnings() throws {
        let l = try ConfigLoader.parse(data: Data(#"{"my_team_notes": "x", "mcpServers": {"a": {"command": "x", "autoApprove": []}}}"#.utf8))
        #expect(l.warnings.map(\.path).sorted() == ["mcpServers.a.autoApprove", "my_team_notes"])
    }

    @Test func duplicateKeysAreRefusedWithLines() {
        let m = message("{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\",\n      \"quarantined\": true,\n      \"quarantined\": false}\n  }\n}")
        #expect(m.contains("quarantined"), "got: \(m)")
        #expect(m.contains("lines 4, 5"), "got: \(m)")
        let top = message("{\"listen\": \"127.0.0.1:1\", // first\n \"listen\": \"0.0.0.0:1\"}")
        #expect(top.contains("listen: the key appears 2 times"), "got: \(top)")
    }

    @Test func syntaxErrorsNameLineAndColumn() {
        let m = message("{\n  \"listen\": \"x\",\n  oops\n}")
        #expect(m.contains("line 3"), "got: \(m)")
    }

    @Test(arguments: [("docker_isolaton", "docker_isolation"), ("comand", "command"), ("agrs", "args"),
                      ("enviroment", nil), ("quarantine", "quarantined"), ("xyz", nil), ("url", "urls")] as [(String, String?)])
    func closestKey(key: String, expected: String?) {
        let known: Set<String> = ["docker_isolation", "command", "args", "env", "quarantined", "listen", "urls"]
        #expect(ConfigLoader.didYouMean(key, among: known) == expected)
    }
}
