import Foundation
import ProxyCore
import Testing
@testable import MCPSecurity

/// A temporary directory removed when the test ends.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "mcpproxy-sec-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

@Suite("Security store")
struct SecurityStoreTests {
    @Test("state survives closing and reopening the database")
    func survivesReopen() throws {
        let dir = TempDir()
        let tool = ToolDefinition(name: "echo", description: "Echo text.", inputSchema: ["type": "object"])
        do {
            let store = try SecurityStore.open(dataDir: dir.path)
            try store.setServer("a", quarantined: false, pinOnNextSight: false)
            try store.pin(server: "a", tools: [tool])
            try store.replaceObserved(server: "a", tools: [tool])
            try store.saveScan(ToolScanner().scan(server: "a", tools: [tool], otherServers: [:]))
            try store.appendActivity(ActivityRecord(id: nil, at: 1, server: "a", tool: "echo", durationMs: 2.5, outcome: .ok,
                                                    requestID: "r1", argumentsBytes: 10, argumentsSHA256: "ab", arguments: nil))
        }
        let store = try SecurityStore.open(dataDir: dir.path)
        #expect(store.path == dir.file("mcpproxy.db"))
        #expect(try store.server("a")?.quarantined == false)
        #expect(try store.pins(server: "a")["echo"]?.fingerprint == ToolFingerprint.of(tool))
        #expect(try store.observed(server: "a")["echo"]?.definition["description"] == "Echo text.")
        #expect(try store.scan(server: "a")?.status == .clean)
        let log = try store.activity()
        #expect(log.count == 1)
        #expect(log.first?.requestID == "r1")
        #expect(log.first?.arguments == nil)
        let attrs = try FileManager.default.attributesOfItem(atPath: store.path)
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
    }

    @Test("call outcomes are stored and shown as the same words as before the enum")
    func outcomesKeepTheirWords() throws {
        #expect(ActivityOutcome.allCases.map(\.rawValue) == ["ok", "error", "timeout", "cancelled", "failed"])
        let dir = TempDir()
        let store = try SecurityStore.open(dataDir: dir.path)
        for (i, o) in ActivityOutcome.allCases.enumerated() {
            try store.appendActivity(ActivityRecord(id: nil, at: Double(i), server: "a", tool: "t", durationMs: 1, outcome: o,
                                                    requestID: "\(i)", argumentsBytes: nil, argumentsSHA256: nil, arguments: nil))
        }
        let log = try store.activity()
        #expect(log.map(\.outcome) == ActivityOutcome.allCases.reversed())
        // The REST API shows the stored word.
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(log[0])) as? [String: Any]
        #expect(json?["outcome"] as? String == "failed")
        #expect(ActivityOutcome(stored: "timeout") == .timeout && ActivityOutcome(stored: "edited by hand") == .failed)
    }

    @Test("a file that is not SQLite is reported and left untouched")
    func notSQLite() throws {
        let dir = TempDir()
        let path = dir.file("mcpproxy.db")
        let junk = Data("this is not a database, just some text that happens to be here\n".utf8)
        try junk.write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: ProxyError.self) { try SecurityStore.open(path: path) }
        #expect(error.message.contains(path))
        #expect(error.message.contains("not a valid SQLite database or is corrupt"))
        #expect(error.message.contains("left it untouched"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == junk)
    }

    @Test("a SQLite file with damaged pages is reported and left untouched")
    func damagedPages() throws {
        let dir = TempDir()
        let path = dir.file("mcpproxy.db")
        do {
            let store = try SecurityStore.open(path: path)
            for i in 0..<200 {
                try store.appendActivity(ActivityRecord(id: nil, at: Double(i), server: "s", tool: "t\(i)", durationMs: 1, outcome: .ok,
                                                        requestID: String(repeating: "x", count: 200), argumentsBytes: nil,
                                                        argumentsSHA256: nil, arguments: nil))
            }
        }
        // Merge the WAL into the main file, then overwrite the middle of it with garbage, keeping
        // the SQLite header intact.
        _ = try? FileManager.default.removeItem(atPath: path + "-wal")
        _ = try? FileManager.default.removeItem(atPath: path + "-shm")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(bytes.count > 8192)
        for i in 4096..<min(bytes.count, 4096 * 6) { bytes[i] = UInt8(truncatingIfNeeded: i * 7 + 3) }
        let damaged = Data(bytes)
        try damaged.write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: ProxyError.self) { try SecurityStore.open(path: path) }
        #expect(error.message.contains("corrupt"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == damaged)
    }

    @Test("a database locked by another process is reported as locked")
    func locked() throws {
        let dir = TempDir()
        let path = dir.file("mcpproxy.db")
        _ = try SecurityStore.open(path: path)
        // Another process takes an exclusive lock and holds it.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        holder.arguments = ["-c", """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)
            time.sleep(30)
            """, path]
        let out = Pipe()
        holder.standardOutput = out
        try holder.run()
        defer { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() }
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        #expect(line.contains("locked"))
        let error = try #require(throws: ProxyError.self) { try SecurityStore.open(path: path, busyTimeout: 0.2) }
        #expect(error.message.contains("locked by another process"))
    }
}
