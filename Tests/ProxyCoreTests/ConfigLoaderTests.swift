import Foundation
import Testing
@testable import ProxyCore

@Suite struct ConfigLoaderTests {
    func load(_ text: String) throws -> ConfigLoader.Loaded {
        try ConfigLoader.parse(data: Data(text.utf8), file: "test.json")
    }

    func errorMessage(_ text: String) -> String {
        do {
            _ = try load(text)
            return ""
        } catch let e as ProxyError {
            #expect(e.code == .invalidConfig)
            return e.message
        } catch {
            return "\(error)"
        }
    }

    @Test func arrayForm() throws {
        let c = try load(#"{"mcpServers":[{"name":"a","command":"uvx","args":["x"],"env":{"K":"v"}},{"name":"b","url":"http://127.0.0.1:9/mcp"}]}"#).config
        #expect(c.servers.map(\.name) == ["a", "b"])
        #expect(c.servers[0].command == "uvx")
        #expect(c.servers[0].args == ["x"])
        #expect(c.servers[0].env == ["K": "v"])
        #expect(c.servers[0].effectiveProtocol == .stdio)
        #expect(c.servers[1].effectiveProtocol == .http)
        #expect(c.listen == "127.0.0.1:8080")
        #expect(c.routingMode == .retrieveTools)
    }

    @Test func objectFormClaudeDesktop() throws {
        let c = try load(#"{"mcpServers":{"zeta":{"command":"npx","args":["-y","srv"]},"alpha":{"url":"https://example.test/sse","type":"sse"}}}"#).config
        #expect(c.servers.map(\.name) == ["alpha", "zeta"])
        #expect(c.servers[0].effectiveProtocol == .sse)
        #expect(c.servers[1].args == ["-y", "srv"])
    }

    @Test func commentsAndTrailingCommas() throws {
        let c = try load("""
        // a comment
        { /* block */ "listen": "127.0.0.1:9000", // trailing
          "mcpServers": [ {"name": "a", "command": "x // not a comment",}, ], }
        """).config
        #expect(c.listen == "127.0.0.1:9000")
        #expect(c.servers[0].command == "x // not a comment")
    }

    @Test func fullIsolationBlock() throws {
        let c = try load("""
        {"docker_isolation": {"mode": "docker", "enabled": false, "memory_limit": "1g", "cpu_limit": 2, "timeout": "45s",
          "network_mode": "none", "registry": "r.example", "default_images": {"python": "py:custom"}, "extra_args": ["--x"],
          "user": "1000:1000", "pids_limit": 64, "tmpfs_size": "16m"},
         "sandbox": {"allow_degraded": true, "read_paths": ["/opt"], "write_paths": ["/srv"], "memory_limit": "2g",
          "max_open_files": 512, "max_processes": 32, "cpu_seconds": 60},
         "mcpServers": [{"name": "s", "command": "python", "working_dir": "/w", "timeout": "500ms",
           "isolation": {"mode": "sandbox", "image": "i", "memory_limit": "256m", "cpu_limit": "0.5", "network_mode": "bridge",
           "working_dir": "/app", "extra_args": ["--y"], "volumes": ["/a:/b"], "user": "1:1", "pids_limit": 8,
           "allow": ["writable_rootfs"], "read_paths": ["/r"], "write_paths": ["/w2"], "allow_tcp_connect": [443]}}]}
        """).config
        let d = c.dockerIsolation
        #expect(d.mode == .docker && d.enabled == false && d.memoryLimit == "1g" && d.cpuLimit == "2" && d.timeout == 45)
        #expect(d.networkMode == "none" && d.registry == "r.example" && d.defaultImages["python"] == "py:custom")
        #expect(d.defaultImages["node"] == "node:20")  // seed defaults kept
        #expect(d.extraArgs == ["--x"] && d.user == "1000:1000" && d.pidsLimit == 64 && d.tmpfsSize == "16m")
        #expect(c.sandbox.allowDegraded && c.sandbox.readPaths == ["/opt"] && c.sandbox.maxProcesses == 32 && c.sandbox.cpuSeconds == 60)
        let s = c.servers[0]
        #expect(s.workingDir == "/w" && s.startupTimeout == 0.5)
        let i = try #require(s.isolation)
        #expect(i.mode == .sandbox && i.image == "i" && i.memoryLimit == "256m" && i.cpuLimit == "0.5")
        #expect(i.volumes == ["/a:/b"] && i.allow == ["writable_rootfs"] && i.allowTCPConnect == [443] && i.pidsLimit == 8)
    }

    /// `allow_client_requests`: none by default; known kinds only; written back sorted.
    @Test func allowClientRequests() throws {
        let c = try load(#"{"mcpServers": [{"name": "a", "command": "x", "allow_client_requests": ["roots", "sampling"]}, {"name": "b", "command": "y"}]}"#).config
        #expect(c.servers[0].clientRequests == [.roots, .sampling])
        #expect(c.servers[1].clientRequests.isEmpty)
        #expect(ConfigFile.json(for: c.servers[0])["allow_client_requests"] as? [String] == ["roots", "sampling"])
        #expect(errorMessage(#"{"mcpServers": [{"name": "a", "command": "x", "allow_client_requests": ["smapling"]}]}"#)
            .contains("mcpServers[0].allow_client_requests: unknown request kind \"smapling\" (expected sampling, elicitation or roots)"))
        #expect(ClientRequestKind(method: "elicitation/create") == .elicitation)
        #expect(ClientRequestKind(method: "tools/call") == nil)
        let typo = try load(#"{"mcpServers": [{"name": "a", "command": "x", "allow_client_request": ["roots"]}]}"#)
        #expect(typo.warnings.first?.message.contains("allow_client_requests") == true)
    }

    @Test func unknownKeysWarnNotFail() throws {
        let l = try load(#"{"colour": 1, "mcpServers": [{"name": "a", "command": "x", "shiny": true, "isolation": {"sparkle": 1}}]}"#)
        #expect(l.warnings.map(\.path) == ["colour", "mcpServers[0].shiny", "mcpServers[0].isolation.sparkle"])
        #expect(l.warnings.allSatisfy { $0.message.contains("unknown key") })
    }

    @Test(arguments: [
        (#"{"mcpServers": [{"name": "a", "command": "x"}, {"name": "a", "command": "y"}]}"#, "mcpServers[1].name: duplicate server name \"a\" (first defined at mcpServers[0])"),
        (#"{"mcpServers": [{"command": "x"}]}"#, "mcpServers[0].name: a server needs a name"),
        (#"{"mcpServers": [{"name": "a b", "command": "x"}]}"#, "mcpServers[0].name: invalid server name"),
        (#"{"mcpServers": [{"name": "a__b", "command": "x"}]}"#, "invalid server name"),
        (#"{"mcpServers": [{"name": "a"}]}"#, "mcpServers[0]: server \"a\" needs a \"command\""),
        (#"{"mcpServers": [{"name": "a", "command": "x", "url": "http://h/"}]}"#, "has both \"command\" and \"url\""),
        (#"{"mcpServers": [{"name": "a", "command": ""}]}"#, "mcpServers[0].command: command is empty"),
        (#"{"mcpServers": [{"name": "a", "command": 5}]}"#, "mcpServers[0].command: expected a string, found a number"),
        (#"{"mcpServers": [{"name": "a", "command": "x", "args": "y"}]}"#, "mcpServers[0].args: expected an array of strings"),
        (#"{"mcpServers": [{"name": "a", "command": "x", "args": [1]}]}"#, "mcpServers[0].args[0]: expected a string"),
        (#"{"mcpServers": [{"name": "a", "command": "x", "env": {"K": []}}]}"#, "mcpServers[0].env.K: expected a string"),
        (#"{"mcpServers": [{"name": "a", "command": "x", "env": {"A=B": "v"}}]}"#, "invalid environment variable name"),
        (#"{"mcpServers": [{"name": "a", "url": "ftp://h/x"}]}"#, "mcpServers[0].url: expected an http:// or https:// URL"),
        (#"{"mcpServers": [{"name": "a", "command": "x", "protocol": "carrier-pigeon"}]}"#, "mcpServers[0].protocol: unknown protocol"),
        (#"{"mcpServers": [{"name": "a", "url": "http://h/", "protocol": "stdio"}]}"#, "protocol stdio needs a \"command\""),
        (#"{"mcpServers": [{"name": "a", "command": "x", "protocol": "sse"}]}"#, "protocol sse needs a \"url\""),
        (#"{"mcpServers": [{"name": "a", "command": "x", "enabled": "yes"}]}"#, "mcpServers[0].enabled: expected true or false"),
        (#"{"mcpServers": [{"name": "a", "command": "x", "timeout": "soon"}]}"#, "mcpServers[0].timeout: expected a duration"),
        (#"{"mcpServers": [{"name": "a", "command": "x", "isolation": {"mode": "vm"}}]}"#, "mcpServers[0].isolation.mode: unknown isolation mode \"vm\""),
        (#"{"mcpServers": [{"name": "a", "command": "x", "isolation": {"memory_limit": "lots"}}]}"#, "isolation.memory_limit: expected a size"),
        (#"{"mcpServers": [{"name": "a", "command": "x", "isolation": {"cpu_limit": "-1"}}]}"#, "isolation.cpu_limit: expected a positive CPU count"),
        (#"{"mcpServers": [{"name": "a", "command": "x", "isolation": {"allow_tcp_connect": [70000]}}]}"#, "port 70000 is out of range"),
        (#"{"mcpServers": [{"name": "a", "command": "x", "isolation": {"allow_tcp_connect": "443"}}]}"#, "expected an array of port numbers"),
        (#"{"mcpServers": [{"name": "a", "command": "x", "isolation": []}]}"#, "mcpServers[0].isolation: expected an object"),
        (#"{"mcpServers": "nope"}"#, "mcpServers: expected an array of servers or an object keyed by server name"),
        (#"{"mcpServers": [42]}"#, "mcpServers[0]: expected an object, found a number"),
        (#"{"listen": "localhost"}"#, "listen: expected HOST:PORT"),
        (#"{"routing_mode": "psychic"}"#, "routing_mode: expected \"retrieve_tools\" or \"direct\""),
        (#"{"max_request_body": "huge"}"#, "max_request_body: expected a size"),
        (#"{"docker_isolation": {"mode": "sandbox", "pids_limit": 0}}"#, "docker_isolation.pids_limit: expected a whole number ≥ 1"),
        (#"{"docker_isolation": {"timeout": true}}"#, "docker_isolation.timeout: expected a duration"),
        (#"{"docker_isolation": {"default_images": {"python": 3}}}"#, "docker_isolation.default_images.python: expected a string"),
        (#"{"sandbox": {"max_open_files": 3}}"#, "sandbox.max_open_files: expected a whole number ≥ 16"),
        (#"{"sandbox": {"allow_degraded": 1}}"#, "sandbox.allow_degraded: expected true or false"),
        (#"[]"#, "$: expected an object, found an array"),
    ])
    func errorPaths(text: String, expected: String) {
        let message = errorMessage(text)
        #expect(message.contains(expected), "got: \(message)")
        #expect(message.hasPrefix("test.json: invalid config"), "got: \(message)")
    }

    @Test func allErrorsReportedAtOnce() {
        let message = errorMessage(#"{"listen": 1, "mcpServers": [{"name": "a"}, {"name": "a", "command": 2}]}"#)
        #expect(message.contains("listen: expected a string"))
        #expect(message.contains("mcpServers[0]: server \"a\" needs"))
        #expect(message.contains("mcpServers[1].command"))
    }

    @Test func syntaxErrorNamesLine() {
        let message = errorMessage("{\n  \"listen\": \"x\",\n  oops\n}")
        #expect(message.contains("test.json: not valid JSON"), "got: \(message)")
    }

    @Test(arguments: [("30s", 30.0), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0), ("15", 15.0), ("1.5s", 1.5)])
    func durations(text: String, seconds: Double) {
        #expect(ConfigLoader.parseDuration(text) == seconds)
    }

    @Test func badDurations() {
        #expect(ConfigLoader.parseDuration("-1s") == nil)
        #expect(ConfigLoader.parseDuration("x") == nil)
        #expect(ConfigLoader.parseDuration(true) == nil)
    }

    @Test(arguments: [("512m", 512 << 20), ("1g", 1 << 30), ("64k", 64 << 10), ("100", 100), ("2GiB", 2 << 30), ("1.5g", 3 << 29)])
    func byteSizes(text: String, bytes: Int) {
        #expect(ConfigLoader.parseByteSize(text) == bytes)
    }

    @Test func defaultConfigParses() throws {
        let l = try load(DefaultConfig.text)
        #expect(l.warnings.isEmpty)
        #expect(l.config.servers.isEmpty)
        // Confined by default: the sandbox on Linux (no daemon needed), docker elsewhere.
        #if os(Linux)
        #expect(l.config.dockerIsolation.mode == IsolationMode.sandbox)
        #else
        #expect(l.config.dockerIsolation.mode == IsolationMode.docker)
        #endif
    }

    @Test func configFileRoundTripKeepsForm() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfgtest-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/c.json"
        try Data(#"{"custom": 1, "mcpServers": {"a": {"command": "x"}}}"#.utf8).write(to: URL(fileURLWithPath: path))
        var s = ServerConfig(name: "b"); s.command = "y"
        try ConfigFile.updateServer(path: path, name: "b", create: true) { _ in ConfigFile.json(for: s) }
        try ConfigFile.updateServer(path: path, name: "a", create: false) { e in var e = e!; e["quarantined"] = false; return e }
        let l = try ConfigLoader.load(path: path)
        #expect(l.config.servers.map(\.name) == ["a", "b"])
        #expect(l.config.servers[0].quarantined == false)
        let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        #expect(raw["custom"] as? Int == 1)
        #expect(raw["mcpServers"] is [String: Any])
        #expect(throws: ProxyError.self) { try ConfigFile.updateServer(path: path, name: "b", create: true) { _ in [:] } }
        #expect(throws: ProxyError.self) { try ConfigFile.updateServer(path: path, name: "zz", create: false) { _ in [:] } }
        // An edit that would make the config invalid is not written.
        #expect(throws: ProxyError.self) { try ConfigFile.updateServer(path: path, name: "a", create: false) { _ in ["args": 5] } }
        try ConfigFile.updateServer(path: path, name: "a", create: false) { _ in nil }
        #expect(try ConfigLoader.load(path: path).config.servers.map(\.name) == ["b"])
    }
}
