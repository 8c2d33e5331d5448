import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRDB
import ProxyCore
import Testing
@testable import MCPSecurity

@Suite("Secret store")
struct SecretStoreTests {
    func make(_ dir: TempDir, env: [String: String] = [:]) throws -> SecretStore {
        SecretStore(store: try SecurityStore.open(dataDir: dir.path), dataDir: dir.path, environment: env)
    }

    func rawDatabase(_ dir: TempDir) -> Data {
        // The main file and the WAL: a value must be in neither.
        var d = FileManager.default.contents(atPath: dir.file("mcpproxy.db")) ?? Data()
        d += FileManager.default.contents(atPath: dir.file("mcpproxy.db-wal")) ?? Data()
        return d
    }

    @Test("round trip; the database holds no plain value; the key file is created 0600")
    func roundTrip() throws {
        let dir = TempDir()
        let s = try make(dir)
        let value = "ghp_roundtrip_\(UUID().uuidString)"
        #expect(try s.set(name: "gh", value: value) == false)
        #expect(try s.value(name: "gh") == value)
        #expect(try s.value(name: "absent") == nil)
        #expect(try s.set(name: "gh", value: value + "2") == true)
        #expect(try s.value(name: "gh") == value + "2")
        #expect(rawDatabase(dir).range(of: Data(value.utf8)) == nil)
        var st = stat()
        #expect(stat(dir.file("master.key"), &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        let list = try s.list()
        #expect(list.map(\.name) == ["gh"])
        #expect(list[0].scope == "global")
        #expect(try s.remove(name: "gh"))
        #expect(try s.remove(name: "gh") == false)
        #expect(try s.value(name: "gh") == nil)
    }

    @Test("a workspace's own secret shadows the global one for that workspace's instances only")
    func workspaceSecretsComeFirst() throws {
        let dir = TempDir()
        let s = try make(dir)
        try s.set(name: "token", value: "global-value")
        try s.set(name: "token", scope: "team1", value: "team1-value")
        try s.set(name: "only-team1", scope: "team1", value: "t1")
        #expect(try s.secretValue(named: "token", workspace: "team1") == "team1-value")
        #expect(try s.secretValue(named: "token", workspace: "team2") == "global-value")
        #expect(try s.secretValue(named: "token", workspace: nil) == "global-value")
        #expect(try s.secretValue(named: "only-team1", workspace: "team1") == "t1")
        #expect(try s.secretValue(named: "only-team1", workspace: nil) == nil)      // never leaks to shared instances
        #expect(try s.secretValue(named: "only-team1", workspace: "team2") == nil)  // nor to another workspace
        var server = ServerConfig(name: "srv")
        server.command = "x"
        server.env = ["TOKEN": "${secret:token}"]
        #expect(try SecretResolver.resolve(server, source: s, workspace: "team1").env["TOKEN"] == "team1-value")
        #expect(try SecretResolver.resolve(server, source: s).env["TOKEN"] == "global-value")
    }

    @Test("a ciphertext moved to another name or scope does not decrypt")
    func associatedData() throws {
        let dir = TempDir()
        let s = try make(dir)
        try s.set(name: "a", value: "value-a")
        try s.set(name: "b", value: "value-b")
        try s.set(name: "a", scope: "team1", value: "value-team")
        let sql = "UPDATE secrets SET ciphertext = (SELECT ciphertext FROM secrets WHERE scope = 'global' AND name = 'a') WHERE scope = ? AND name = ?"
        let q = try DatabaseQueue(path: dir.file("mcpproxy.db"))
        try q.write { db in
            try db.execute(sql: sql, arguments: ["global", "b"])
            try db.execute(sql: sql, arguments: ["team1", "a"])
        }
        for (name, scope) in [("b", "global"), ("a", "team1")] {
            do {
                _ = try s.value(name: name, scope: scope)
                Issue.record("a moved ciphertext must not decrypt")
            } catch let e as ProxyError {
                #expect(e.message.contains("does not belong to this name"))
            }
        }
        #expect(try s.value(name: "a") == "value-a")
    }

    @Test("rotation re-encrypts every value under a new key and replaces the key file")
    func rotation() throws {
        let dir = TempDir()
        let s = try make(dir)
        for i in 0..<5 { try s.set(name: "s\(i)", value: "v\(i)") }
        let oldKey = try String(contentsOfFile: dir.file("master.key"), encoding: .utf8)
        let oldID = try s.list()[0].keyID
        let (newID, count) = try s.rotateKey()
        #expect(count == 5)
        #expect(newID != oldID)
        #expect(try String(contentsOfFile: dir.file("master.key"), encoding: .utf8) != oldKey)
        #expect(!FileManager.default.fileExists(atPath: dir.file("master.key.new")))
        #expect(try s.list().allSatisfy { $0.keyID == newID })
        for i in 0..<5 { #expect(try s.value(name: "s\(i)") == "v\(i)") }
        var st = stat()
        #expect(stat(dir.file("master.key"), &st) == 0 && st.st_mode & 0o777 == 0o600)
        // The old key no longer opens anything: it is another key.
        let old = SecretStore(store: s.store, dataDir: dir.path, environment: ["MCPPROXY_MASTER_KEY": oldKey])
        #expect(throws: ProxyError.self) { try old.value(name: "s0") }
    }

    @Test("an interrupted rotation is finished (committed) or undone (not committed) by the next use")
    func interruptedRotation() throws {
        let dir = TempDir()
        let s = try make(dir)
        try s.set(name: "x", value: "vx")
        // Not committed: a stray pending key file with no row under it is removed.
        try MasterKey.writeKeyFile(MasterKey.random(origin: "t"), path: dir.file("master.key.new"), exclusive: true)
        #expect(try s.value(name: "x") == "vx")
        #expect(!FileManager.default.fileExists(atPath: dir.file("master.key.new")))
        // Committed but not renamed: rows under the pending key; the next use renames it.
        let pending = MasterKey.random(origin: "t")
        try MasterKey.writeKeyFile(pending, path: dir.file("master.key.new"), exclusive: true)
        let sealed = try SecretStore.seal(Array("vx".utf8), key: pending, scope: "global", name: "x")
        let q = try DatabaseQueue(path: dir.file("mcpproxy.db"))
        try q.write { try $0.execute(sql: "UPDATE secrets SET key_id = ?, ciphertext = ?", arguments: [pending.id, Data(sealed)]) }
        #expect(try s.value(name: "x") == "vx")
        #expect(try MasterKey.readKeyFile(dir.file("master.key"))?.id == pending.id)
    }

    @Test("a wrong master key is named as such")
    func wrongKey() throws {
        let dir = TempDir()
        let k1 = MasterKey.random(origin: "t").base64, k2 = MasterKey.random(origin: "t").base64
        try make(dir, env: ["MCPPROXY_MASTER_KEY": k1]).set(name: "gh", value: "v")
        #expect(!FileManager.default.fileExists(atPath: dir.file("master.key")))  // the env key writes no file
        #expect(try make(dir, env: ["MCPPROXY_MASTER_KEY": k1]).value(name: "gh") == "v")
        do {
            _ = try make(dir, env: ["MCPPROXY_MASTER_KEY": k2]).value(name: "gh")
            Issue.record("another key must fail")
        } catch let e as ProxyError {
            #expect(e.message.contains("secret \"gh\" was encrypted with another master key"))
        }
        for bad in ["not base64!", Data(repeating: 1, count: 16).base64EncodedString()] {
            do {
                _ = try make(dir, env: ["MCPPROXY_MASTER_KEY": bad]).value(name: "gh")
                Issue.record("a malformed key must fail")
            } catch let e as ProxyError {
                #expect(e.message.contains("MCPPROXY_MASTER_KEY"))
            }
        }
        // Rotation under an environment key needs the new key from the environment.
        #expect(throws: ProxyError.self) { try make(dir, env: ["MCPPROXY_MASTER_KEY": k1]).rotateKey() }
        let r = try make(dir, env: ["MCPPROXY_MASTER_KEY": k1, "MCPPROXY_NEW_MASTER_KEY": k2]).rotateKey()
        #expect(r.count == 1)
        #expect(try make(dir, env: ["MCPPROXY_MASTER_KEY": k2]).value(name: "gh") == "v")
    }

    @Test("a key file readable by group or others is refused with the fix")
    func keyFilePermissions() throws {
        let dir = TempDir()
        let s = try make(dir)
        try s.set(name: "gh", value: "v")
        chmod(dir.file("master.key"), 0o644)
        do {
            _ = try s.value(name: "gh")
            Issue.record("a 0644 key file must be refused")
        } catch let e as ProxyError {
            #expect(e.message.contains("chmod 600 \(dir.file("master.key"))"))
        }
        #expect(throws: ProxyError.self) { try s.set(name: "other", value: "v") }
        chmod(dir.file("master.key"), 0o600)
        #expect(try s.value(name: "gh") == "v")
        // A symlink is not a key file.
        try FileManager.default.moveItem(atPath: dir.file("master.key"), toPath: dir.file("real.key"))
        symlink(dir.file("real.key"), dir.file("master.key"))
        #expect(throws: ProxyError.self) { try s.value(name: "gh") }
    }

    @Test("names and values are checked")
    func validation() throws {
        let dir = TempDir()
        let s = try make(dir)
        #expect(throws: ProxyError.self) { try s.set(name: "a b", value: "v") }
        #expect(throws: ProxyError.self) { try s.set(name: "ok", value: "") }
        #expect(throws: ProxyError.self) { try s.set(name: "ok", value: String(repeating: "x", count: SecretStore.maxValueBytes + 1)) }
    }
}
