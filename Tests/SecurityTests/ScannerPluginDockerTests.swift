import Foundation
import Logging
import ProxyCore
import Testing
@testable import MCPSecurity
import Isolation

/// A scanner plugin image built locally (no registry): a static C program that reports, as a
/// finding, what it could do inside the container (uid, network, writing to /).
enum ProbeImage {
    static let tag = "mcpproxy-test-scanner:latest"

    static let source = #"""
    #include <arpa/inet.h>
    #include <errno.h>
    #include <fcntl.h>
    #include <netinet/in.h>
    #include <stdio.h>
    #include <string.h>
    #include <sys/socket.h>
    #include <unistd.h>
    int main(void) {
        static char buf[1 << 20];
        size_t n = 0, r;
        while ((r = fread(buf + n, 1, sizeof(buf) - 1 - n, stdin)) > 0) n += r;
        buf[n] = 0;
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_port = htons(80);
        inet_pton(AF_INET, "192.0.2.1", &a.sin_addr);
        int c = connect(s, (struct sockaddr *)&a, sizeof a);
        int cerr = errno;
        /* Is / mounted read-only? (Writing as uid 65534 fails anyway, so read the mount table.) */
        char rootfs[8] = "?";
        FILE *m = fopen("/proc/self/mounts", "r");
        char line[4096], dev[1024], mnt[1024], type[256], opts[2048];
        while (m && fgets(line, sizeof line, m)) {
            if (sscanf(line, "%1023s %1023s %255s %2047s", dev, mnt, type, opts) == 4 && strcmp(mnt, "/") == 0) {
                snprintf(rootfs, sizeof rootfs, "%.2s", opts);
            }
        }
        const char *tool = strstr(buf, "\"name\":\"echo\"") ? "echo" : "none";
        printf("{\"findings\":[{\"rule_id\":\"probe\",\"severity\":\"soft\",\"tool\":\"%s\",\"message\":\"uid=%d connect=%s rootfs=%s\"}]}\n",
               tool, (int)getuid(), c == 0 ? "ok" : strerror(cerr), rootfs);
        return 0;
    }
    """#

    /// Builds the image (idempotent: Docker reuses the cached layers).
    static func build() throws {
        let dir = TempDir()
        try source.write(toFile: dir.file("probe.c"), atomically: true, encoding: .utf8)
        try "FROM scratch\nCOPY probe /probe\nENTRYPOINT [\"/probe\"]\n".write(toFile: dir.file("Dockerfile"), atomically: true, encoding: .utf8)
        try run("/usr/bin/gcc", ["-static", "-O1", "-o", dir.file("probe"), dir.file("probe.c")])
        try run(ContainerEngine.docker.executable() ?? "/usr/bin/docker", ["build", "-q", "-t", tag, dir.path])
    }

    static func run(_ exe: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus != 0 {
            throw ProxyError(.internalError, "\(exe) \(args.joined(separator: " ")) failed: \(String(decoding: e, as: UTF8.self))")
        }
    }
}

@Suite("Scanner plugins on the Docker engine", .serialized)
struct ScannerPluginDockerTests {
    private let echo = ToolDefinition(name: "echo", description: "Echo text.", inputSchema: ["type": "object"])

    @Test("a plugin runs hardened: unprivileged, no network, read-only root; its findings are merged")
    func runsHardened() async throws {
        try await Blocking.run { try ProbeImage.build() }  // gcc and docker build: not on the cooperative pool
        let plugin = ScannerPluginConfig(name: "probe", image: ProbeImage.tag, timeout: 30)
        let out = try await DockerScannerRunner().run(plugin, input: ScannerPluginPlanner.input(server: "s", tools: [echo]))
        let findings = try ScannerPluginPlanner.parseOutput(out, plugin: "probe")
        let f = try #require(findings.first)
        #expect(f.tool == "echo")
        #expect(f.ruleID == "plugin.probe.probe")
        #expect(f.message.contains("uid=65534"), "\(f.message)")
        #expect(f.message.contains("connect=Network is unreachable"), "\(f.message)")
        #expect(f.message.contains("rootfs=ro"), "\(f.message)")

        let dir = TempDir()
        let gate = SecurityGate(store: try SecurityStore.open(dataDir: dir.path), log: Logger(label: "test"), plugins: [plugin])
        let v = await gate.evaluate(server: "s", configQuarantined: nil, tools: [echo], isolationMode: .docker, otherServers: [:])
        #expect(v.scan.scanners == ["builtin", "probe"])
        #expect(v.scan.status == .findings)
        #expect(v.scan.skippedScanners.isEmpty)
    }

    @Test("a plugin whose image is missing is reported as skipped and the scan is degraded")
    func missingImage() async throws {
        let dir = TempDir()
        let plugin = ScannerPluginConfig(name: "ghost", image: "mcpproxy-no-such-image:never", timeout: 30)
        let gate = SecurityGate(store: try SecurityStore.open(dataDir: dir.path), log: Logger(label: "test"), plugins: [plugin])
        let v = await gate.evaluate(server: "s", configQuarantined: nil, tools: [echo], isolationMode: .docker, otherServers: [:])
        #expect(v.scan.status == .degraded)
        #expect(v.scan.skippedScanners.first?.reason.hasPrefix("failed: scanner plugin \"ghost\" exited with status") == true,
                "\(v.scan.skippedScanners)")
    }
}
