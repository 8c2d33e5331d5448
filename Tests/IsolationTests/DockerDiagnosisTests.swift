import Foundation
import Testing
@testable import Isolation

@Suite("Docker exit diagnosis, error classification and orphan selection (pure)")
struct DockerDiagnosisTests {
    typealias L = ContainerLifecycle

    static let classified: [(String, ContainerEngine.ErrorKind?)] = [
        ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?", .daemonUnreachable),
        ("error during connect: Get \"http://%2Fnope.sock/v1.24/info\": dial unix /nope.sock: connect: no such file or directory", .daemonUnreachable),
        ("permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock: ... docker.sock: connect: permission denied", .daemonUnreachable),
        ("context \"colima\" does not exist", .daemonUnreachable),
        ("the input device is not a TTY", .notATTY),
        ("Unable to find image 'nope:1' locally", .imageMissing),
        ("docker: Error response from daemon: pull access denied for nope, repository does not exist or may require 'docker login'", .imageMissing),
        ("Error response from daemon: manifest for python:9 not found: manifest unknown", .imageMissing),
        ("Error: No such image: nope:1", .imageMissing),
        ("Error response from daemon: No such container: abc", .noSuchContainer),
        ("Error: No such object: abc", .noSuchContainer),
        ("docker: Error response from daemon: failed to create task: exec: \"uvx\": executable file not found in $PATH: unknown.", .commandNotFound),
        ("exec /fixture: permission denied", .permissionDenied),
        ("some unrelated failure", nil),
        ("", nil),
    ]

    @Test("docker CLI stderr is classified", arguments: classified)
    func classify(_ text: String, _ kind: ContainerEngine.ErrorKind?) {
        #expect(ContainerEngine.classify(stderr: text) == kind)
    }

    struct Diag: Sendable, CustomStringConvertible {
        let label: String
        let status: Int32
        let stderr: [String]
        let oom: Bool?
        let expect: [String]?
        var description: String { label }
    }

    static let diagnoses: [Diag] = [
        .init(label: "OOM event", status: 137, stderr: [], oom: true, expect: ["out of memory", "OOMKilled", "512m", "raise memory_limit"]),
        .init(label: "OOM event beats other text", status: 137, stderr: ["Read-only file system"], oom: true, expect: ["OOMKilled"]),
        .init(label: "137 without event data", status: 137, stderr: [], oom: nil, expect: ["SIGKILL", "exit 137", "most likely", "raise memory_limit"]),
        .init(label: "137, engine says not OOM", status: 137, stderr: [], oom: false, expect: ["SIGKILL", "not by the OOM killer"]),
        .init(label: "daemon unreachable", status: 1, stderr: ["Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?"], oom: nil,
              expect: ["Docker daemon is unreachable", "DOCKER_HOST", "DOCKER_CONTEXT"]),
        .init(label: "not a TTY", status: 1, stderr: ["the input device is not a TTY"], oom: nil, expect: ["not a TTY", "wrapped in docker again", "mode none"]),
        .init(label: "image missing", status: 125, stderr: ["Unable to find image 'img:1' locally", "docker: Error response from daemon: pull access denied for img"], oom: nil,
              expect: ["image \"img:1\" was not found", "pull access denied"]),
        .init(label: "command missing in image", status: 127, stderr: ["docker: Error response from daemon: failed to create shim task: exec: \"uvx\": executable file not found in $PATH: unknown."], oom: nil,
              expect: ["command \"/fixture\" was not found in image \"img:1\""]),
        .init(label: "exit 127 without text", status: 127, stderr: [], oom: nil, expect: ["not found in image", "exit 127"]),
        .init(label: "exit 126 permission", status: 126, stderr: ["exec /fixture: permission denied"], oom: nil, expect: ["cannot be executed", "permission denied"]),
        .init(label: "exit 126 without text", status: 126, stderr: [], oom: nil, expect: ["could not be executed (exit 126)"]),
        .init(label: "docker run failure 125", status: 125, stderr: ["docker: Error response from daemon: Conflict. The container name is already in use."], oom: nil,
              expect: ["could not create or start the container", "already in use"]),
        .init(label: "read-only root", status: 1, stderr: ["OSError: [Errno 30] Read-only file system: '/app/cache'"], oom: nil,
              expect: ["read-only container file system", "writable_rootfs", ":rw"]),
        .init(label: "engine without docker-init", status: 125, stderr: ["docker: Error response from daemon: exec: \"docker-init\": executable file not found in $PATH: unknown."], oom: nil,
              expect: ["no docker-init", "no_init"]),
        .init(label: "plain failure", status: 1, stderr: ["Traceback: ValueError"], oom: nil, expect: nil),
        .init(label: "clean exit", status: 0, stderr: [], oom: false, expect: nil),
    ]

    @Test("the client's exit is diagnosed with what to do", arguments: diagnoses)
    func diagnose(_ d: Diag) {
        let text = L.diagnosis(server: "srv", image: "img:1", memoryLimit: "512m", command: "/fixture",
                               exitStatus: d.status, stderrTail: d.stderr, oomKilled: d.oom)
        guard let expect = d.expect else {
            #expect(text == nil)
            return
        }
        guard let t = text else {
            Issue.record("no diagnosis for \(d.label)")
            return
        }
        for part in expect { #expect(t.contains(part), "\(part) missing in \(t)") }
        #expect(t.hasPrefix("server \"srv\""))
    }

    // MARK: orphan selection

    static func labels(instance: String, pid: Int32 = 100, host: String = "h", boot: String = "b",
                       start: String? = "5", managed: String = "true") -> [String: String] {
        var l = ["mcpproxy.managed": managed, "mcpproxy.server": "s", "mcpproxy.instance": instance,
                 "mcpproxy.owner_pid": String(pid), "mcpproxy.owner_host": host, "mcpproxy.owner_boot": boot]
        if let start { l["mcpproxy.owner_start"] = start }
        return l
    }

    struct OrphanCase: Sendable, CustomStringConvertible {
        let label: String
        let labels: [String: String]
        let remove: Bool
        let reason: String
        var description: String { label }
    }

    static let orphanCases: [OrphanCase] = [
        .init(label: "own instance, owner alive", labels: labels(instance: "me", pid: 1), remove: true, reason: "this proxy instance"),
        .init(label: "foreign instance, owner alive", labels: labels(instance: "other", pid: 1), remove: false, reason: "is alive"),
        .init(label: "foreign instance, owner dead", labels: labels(instance: "other", pid: 2), remove: true, reason: "no longer running"),
        .init(label: "foreign instance, pid reused", labels: labels(instance: "other", pid: 1, start: "999"), remove: true, reason: "no longer running"),
        .init(label: "foreign instance, older boot", labels: labels(instance: "other", pid: 1, boot: "old"), remove: true, reason: "last boot"),
        .init(label: "other host, owner pid dead here", labels: labels(instance: "other", pid: 2, host: "elsewhere"), remove: false, reason: "host \"elsewhere\""),
        .init(label: "no owner labels", labels: ["mcpproxy.managed": "true", "mcpproxy.instance": "x"], remove: false, reason: "no owner labels"),
        .init(label: "not managed", labels: labels(instance: "me", managed: "false"), remove: false, reason: "not labelled"),
        .init(label: "no start label, owner alive", labels: labels(instance: "other", pid: 1, start: nil), remove: false, reason: "is alive"),
    ]

    /// pid 1 is alive with start time "5" (or any start when the label is absent); pid 2 is dead.
    static let isAlive: @Sendable (Int32, String?) -> Bool = { pid, start in pid == 1 && (start == nil || start == "5") }

    @Test("orphan selection: own instance or dead owner on this host; never a live or unknown owner", arguments: orphanCases)
    func orphans(_ c: OrphanCase) {
        let d = L.selectOrphans([.init(id: "c1", labels: c.labels)], instanceID: "me", host: "h", bootID: "b", isAlive: Self.isAlive)
        #expect(d.count == 1)
        #expect(d[0].remove == c.remove)
        #expect(d[0].reason.contains(c.reason), "\(d[0].reason)")
        #expect(d[0].id == "c1")
    }

    @Test("an empty instance id (the manual command) removes only dead owners' containers")
    func manualCleanup() {
        let d = L.selectOrphans([.init(id: "a", labels: Self.labels(instance: "", pid: 1)),
                                 .init(id: "b", labels: Self.labels(instance: "x", pid: 2))],
                                instanceID: "", host: "h", bootID: "b", isAlive: Self.isAlive)
        #expect(d.map(\.remove) == [false, true])
    }

    @Test("inspect output parsing tolerates junk lines")
    func parseInspect() {
        let text = "abc\t{\"mcpproxy.managed\":\"true\",\"mcpproxy.server\":\"s\"}\n\nnot-a-line\ndef\tnull\n"
        let parsed = L.parseInspectLabels(text)
        #expect(parsed == [.init(id: "abc", labels: ["mcpproxy.managed": "true", "mcpproxy.server": "s"]),
                           .init(id: "def", labels: [:])])
    }

    @Test("process liveness uses the start time to reject a reused pid")
    func liveness() {
        let me = getpid()
        let start = ContainerOwner.processStartTime(me)
        #expect(L.processIsAlive(me, nil))
        #expect(L.processIsAlive(me, start))
        #expect(!L.processIsAlive(me, "1"))
        #expect(!L.processIsAlive(0, nil))
        #expect(!L.processIsAlive(Int32.max, nil))
    }
}
