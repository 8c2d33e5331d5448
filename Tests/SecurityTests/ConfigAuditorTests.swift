import Foundation
import ProxyCore
import Testing
@testable import MCPSecurity

private func audit(_ json: String, imageUser: @escaping ConfigAuditor.ImageUserLookup = { _ in "1000:1000" }) throws -> AuditReport {
    let config = try ConfigLoader.parse(data: Data(json.utf8)).config
    return ConfigAuditor(home: "/home/alice", imageUser: imageUser).audit(config)
}

/// A `docker run` server with every limit and a non-root user, plus `extra` arguments.
private func dockerServer(_ extra: String) -> String {
    #"{"mcpServers": {"srv": {"command": "docker", "args": ["run", "-i", "--rm", "--user", "1000:1000", "--memory", "256m", "--cpus", "1", "--pids-limit", "64", "#
        + extra + #""ghcr.io/acme/mcp:1.2"]}}}"#
}

/// A server in isolation mode docker with `iso` added to its isolation block.
private func isolated(_ iso: String, global: String = "") -> String {
    #"{"docker_isolation": {"mode": "docker"\#(global)}, "mcpServers": {"srv": {"command": "python3", "args": ["server.py"], "isolation": {"image": "python:3.11"\#(iso)}}}}"#
}

@Suite("Config audit")
struct ConfigAuditorTests {
    /// One config per rule: the finding is there, with the expected severity and server.
    @Test(arguments: [
        // seed 003's five
        (isolated(#", "user": "root""#), "root-user", AuditFinding.Severity.high),
        (isolated("", global: #", "user": "0:0""#), "root-user", .high),
        (dockerServer(#""--user", "0", "#), "root-user", .high),
        (dockerServer(#""--privileged", "#), "privileged", .high),
        (isolated(#", "allow": ["privileged"]"#), "privileged", .high),
        (dockerServer(#""-v", "/var/run/docker.sock:/var/run/docker.sock", "#), "docker-socket", .high),
        (isolated(#", "volumes": ["/run/docker.sock:/var/run/docker.sock:ro"]"#), "docker-socket", .high),
        (dockerServer(#""-v", "/:/host:ro", "#), "broad-mount", .high),
        (dockerServer(#""-v", "~/:/home/user", "#), "broad-mount", .high),
        (isolated(#", "volumes": ["/home:/data:ro"]"#), "broad-mount", .high),
        (dockerServer(#""--mount", "type=bind,source=/home/alice/.ssh,target=/keys,readonly", "#), "broad-mount", .high),
        (isolated(#", "volumes": ["/home/alice/projects/app:/work"]"#), "rw-mount", .low),
        (#"{"mcpServers": {"srv": {"command": "docker", "args": ["run", "-i", "--rm", "--user", "1000", "img:1"]}}}"#, "no-resource-limits", .medium),
        (dockerServer(#""--memory=0", "#), "no-resource-limits", .medium),
        (isolated(#", "extra_args": ["--pids-limit", "-1"]"#), "no-resource-limits", .medium),
        // the additional rules
        (dockerServer(#""--network", "host", "#), "host-network", .high),
        (isolated(#", "network_mode": "host""#), "host-network", .high),
        (dockerServer(#""--pid=host", "#), "host-namespace", .high),
        (dockerServer(#""--cap-add", "SYS_ADMIN", "#), "dangerous-cap-add", .high),
        (isolated(#", "extra_args": ["--cap-add=NET_RAW"]"#), "dangerous-cap-add", .high),
        (dockerServer(#""--security-opt", "seccomp=unconfined", "#), "unconfined-security-opt", .high),
        (dockerServer(#""--device", "/dev/kvm", "#), "host-device", .medium),
        (#"{"mcpServers": {"srv": {"command": "npx", "args": ["-y", "@acme/mcp-server"]}}}"#, "package-runner-unisolated", .high),
        (#"{"mcpServers": {"srv": {"command": "/usr/local/bin/uvx", "args": ["mcp-server-time"]}}}"#, "package-runner-unisolated", .high),
        (#"{"docker_isolation": {"mode": "none"}, "mcpServers": {"srv": {"command": "pnpm", "args": ["dlx", "srv"]}}}"#, "package-runner-unisolated", .high),
        (isolated(#", "allow": ["writable_rootfs"]"#), "writable-rootfs", .low),
        (#"{"mcpServers": {"srv": {"command": "node", "args": ["s.js"], "isolation": {"mode": "sandbox", "write_paths": ["~"]}}}}"#, "sandbox-broad-write", .high),
    ])
    func rule(_ config: String, _ ruleID: String, _ severity: AuditFinding.Severity) throws {
        let report = try audit(config)
        let hits = report.findings.filter { $0.ruleID == ruleID }
        #expect(hits.count >= 1, "no \(ruleID) in \(report.findings.map(\.ruleID))")
        #expect(hits.contains { $0.severity == severity }, "\(ruleID): \(hits.map(\.severity))")
        #expect(hits.allSatisfy { $0.server == "srv" && !$0.why.isEmpty && !$0.fix.isEmpty && !$0.evidence.isEmpty })
        #expect(report.hasHigh == report.findings.contains { $0.severity == .high })
    }

    /// Issue 9's spellings, in a docker-mode server's extra_args and in a docker command's own
    /// args: the audit reads them with the planner's parser and flags each.
    static let spellings: [(extra: String, rule: String)] = [
        (#""-iv/var/run/docker.sock:/s""#, "docker-socket"),
        (#""-iu0""#, "root-user"),
        (#""--privileged=t""#, "privileged"),
        (#""--use-api-socket=t""#, "docker-socket"),
        (#""--mount", "\"type=bind\",\"source=/var/run/docker.sock\",target=/s""#, "docker-socket"),
        (#""--mount", "type=volume,src=v,dst=/d,volume-opt=device=/var/run,volume-opt=o=bind""#, "docker-option-refused"),
        (#""--user", "00""#, "root-user"),
        (#""--user", "+0""#, "root-user"),
        (#""--user", "65534:0""#, "root-user"),
        (#""--group-add", "docker""#, "docker-socket"),
        (#""--group-add", "0""#, "root-user"),
        (#""--cap-add", "SYS_MODULE""#, "dangerous-cap-add"),
        (#""--cap-add", "DAC_READ_SEARCH""#, "dangerous-cap-add"),
        (#""--security-opt", "seccomp=/root/p.json""#, "unconfined-security-opt"),
        (#""--env-file", "/root/.env""#, "docker-option-refused"),
        (#""--network", "container:other""#, "docker-option-refused"),
        (#""-v", "/var/lib/docker:/d""#, "docker-socket"),
        (#""-v", "/run/containerd/containerd.sock:/c""#, "docker-socket"),
        (#""--pid=host""#, "host-namespace"),
    ]

    @Test("every issue-9 spelling is flagged in extra_args of a docker-mode server", arguments: spellings)
    func spellingsInExtraArgs(_ extra: String, _ rule: String) throws {
        let report = try audit(isolated(#", "extra_args": ["# + extra + "]"))
        #expect(report.findings.contains { $0.ruleID == rule && $0.severity == .high }, "\(report.findings.map { "\($0.ruleID): \($0.evidence)" })")
        #expect(report.findings.contains { $0.evidence.contains("mcpServers.srv.isolation.extra_args[0]") || $0.evidence.contains("extra_args:") })
    }

    @Test("every issue-9 spelling is flagged in a docker command's own args", arguments: spellings)
    func spellingsInDockerCommand(_ extra: String, _ rule: String) throws {
        let report = try audit(dockerServer(extra + ", "))
        #expect(report.findings.contains { $0.ruleID == rule && $0.severity == .high }, "\(report.findings.map { "\($0.ruleID): \($0.evidence)" })")
    }

    @Test("an image that is an option is a config error the audit reports")
    func imageIsAnOption() throws {
        let report = try audit(#"{"docker_isolation": {"mode": "docker"}, "mcpServers": {"srv": {"command": "x", "isolation": {"image": "--privileged"}}}}"#)
        #expect(report.findings.contains { $0.ruleID == "docker-config-invalid" && $0.evidence.contains("isolation.image") })
    }

    @Test("the image's configured user is checked when the server sets none")
    func imageUser() throws {
        let cfg = #"{"mcpServers": {"srv": {"command": "docker", "args": ["run", "-i", "--memory", "1g", "--cpus", "1", "--pids-limit", "64", "img:1"]}}}"#
        #expect(try audit(cfg, imageUser: { _ in "" }).findings.map(\.ruleID) == ["root-user"])
        #expect(try audit(cfg, imageUser: { _ in "root" }).findings.first?.severity == .high)
        #expect(try audit(cfg, imageUser: { _ in "node" }).findings.isEmpty)
        let unknown = try audit(cfg, imageUser: { _ in nil })
        #expect(unknown.findings.map(\.severity) == [.medium])
        #expect(unknown.unverifiedImages == ["srv: img:1"])
    }

    @Test("a hardened config has no findings")
    func clean() throws {
        let report = try audit(#"""
        {
          "docker_isolation": {"mode": "docker", "memory_limit": "512m", "cpu_limit": "1.0"},
          "mcpServers": {
            "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/work"],
                      "isolation": {"image": "node:20", "volumes": ["/home/alice/projects/app:/work:ro"]}},
            "time": {"command": "uvx", "args": ["mcp-server-time"]},
            "local": {"command": "python3", "args": ["srv.py"], "isolation": {"mode": "sandbox", "write_paths": ["/home/alice/projects/app/out"]}},
            "remote": {"url": "https://mcp.example.com/mcp"},
            "gh": {"command": "docker", "args": ["run", "-i", "--rm", "--user", "1000:1000", "--memory", "256m", "--cpus", "0.5",
                   "--pids-limit", "64", "--read-only", "--cap-drop", "ALL", "-e", "GITHUB_TOKEN", "ghcr.io/github/github-mcp-server"]}
          }
        }
        """#)
        #expect(report.findings.isEmpty, "\(report.findings)")
        #expect(!report.hasHigh)
    }

    @Test("docker run argument parsing finds the image after value flags")
    func parseRun() {
        let r = DockerRunArgs(["run", "-i", "--rm", "-e", "A=1", "-v", "/a:/b:ro", "--name", "x", "img:2", "--privileged"])
        #expect(r.isRun)
        #expect(r.image == "img:2")
        #expect(!r.privileged)  // after the image: an argument of the server, not of docker
        #expect(r.mounts.first?.readOnly == true)
    }
}
