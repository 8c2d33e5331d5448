import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GRDB
import ProxyCore

/// The master key that encrypts secrets at rest: 32 bytes from `MCPPROXY_MASTER_KEY` (base64) or
/// from `<dataDir>/master.key` (base64 text, mode 0600, created on first use). Its id (a hash of
/// the key, never the key) is stored beside each secret, so a secret encrypted under another key
/// is named as such instead of failing as "corrupt".
public struct MasterKey: Sendable {
    public static let environmentVariable = "MCPPROXY_MASTER_KEY"
    /// With `MCPPROXY_MASTER_KEY`, `secret rotate-key` takes the new key from here.
    public static let newKeyEnvironmentVariable = "MCPPROXY_NEW_MASTER_KEY"
    public static let fileName = "master.key"
    /// A rotation in progress: the new key, written before the database is re-encrypted.
    public static let pendingFileName = "master.key.new"

    public let key: SymmetricKey
    /// 16 hex digits of SHA-256("mcpproxy master key id" + key).
    public let id: String
    /// Where it came from: `MCPPROXY_MASTER_KEY` or the key file's path.
    public let origin: String

    public init(bytes: [UInt8], origin: String) throws {
        guard bytes.count == 32 else {
            throw ProxyError(.invalidConfig, "\(origin): the master key must be 32 bytes (base64 of 32 random bytes, e.g. `head -c32 /dev/urandom | base64`), found \(bytes.count) bytes")
        }
        key = SymmetricKey(data: bytes)
        id = String(AgentTokenIssuer.hex(SHA256.hash(data: Array("mcpproxy master key id".utf8) + bytes)).prefix(16))
        self.origin = origin
    }

    /// A new random key (not yet stored anywhere).
    public static func random(origin: String) -> MasterKey {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
        return try! MasterKey(bytes: bytes, origin: origin)
    }

    /// Parses a base64 key (surrounding whitespace ignored).
    public static func parse(base64 text: String, origin: String) throws -> MasterKey {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let d = Data(base64Encoded: t) else {
            throw ProxyError(.invalidConfig, "\(origin): the master key is not valid base64; expected base64 of 32 random bytes (e.g. `head -c32 /dev/urandom | base64`)")
        }
        return try MasterKey(bytes: Array(d), origin: origin)
    }

    public var base64: String { key.withUnsafeBytes { Data($0).base64EncodedString() } }

    /// The key in use: `MCPPROXY_MASTER_KEY` when set, else the key file (created when absent and
    /// `create` is true; nil when absent and `create` is false).
    public static func load(dataDir: String, environment: [String: String] = ProcessSettings.current.environment,
                            create: Bool) throws -> MasterKey? {
        if let v = environment[environmentVariable] {
            return try parse(base64: v, origin: environmentVariable)
        }
        let path = keyFilePath(dataDir: dataDir)
        if let k = try readKeyFile(path) { return k }
        guard create else { return nil }
        let k = random(origin: path)
        try writeKeyFile(k, path: path, exclusive: true)
        return k
    }

    public static func keyFilePath(dataDir: String) -> String { (dataDir as NSString).appendingPathComponent(fileName) }

    /// The key in a key file; nil when the file does not exist. Refuses a file that group or
    /// others may read or write, or that another user owns.
    public static func readKeyFile(_ path: String) throws -> MasterKey? {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return nil }
            throw ProxyError(.unavailable, "\(path): cannot read the master key file (\(String(cString: strerror(errno))))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw ProxyError(.unavailable, "\(path): the master key file is not a regular file (a symlink?); replace it with the key file itself")
        }
        if st.st_mode & 0o077 != 0 {
            throw ProxyError(.unavailable, "\(path): the master key file is readable or writable by group or others (mode \(String(st.st_mode & 0o777, radix: 8))); fix it with `chmod 600 \(path)` (and consider the key exposed: `mcpproxy secret rotate-key`)")
        }
        if st.st_uid != geteuid() {
            throw ProxyError(.unavailable, "\(path): the master key file belongs to uid \(st.st_uid), not to this user (uid \(geteuid())); fix it with `chown \(geteuid()) \(path)` or run mcpproxy as its owner")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ProxyError(.unavailable, "\(path): cannot read the master key file; check its permissions")
        }
        return try parse(base64: String(decoding: data, as: UTF8.self), origin: path)
    }

    /// Writes `key` to `path` with mode 0600 from creation, fsynced (file and directory).
    /// `exclusive`: fail if it exists (first use; two processes racing: the loser reads the winner's).
    static func writeKeyFile(_ k: MasterKey, path: String, exclusive: Bool) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (exclusive ? O_EXCL : O_TRUNC)
        let fd = open(path, flags, 0o600)
        guard fd >= 0 else {
            throw ProxyError(.unavailable, "\(path): cannot create the master key file (\(String(cString: strerror(errno)))); check the data directory's permissions")
        }
        let bytes = Array((k.base64 + "\n").utf8)
        let ok = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count && fchmod(fd, 0o600) == 0 && fsync(fd) == 0
        close(fd)
        guard ok else {
            unlink(path)
            throw ProxyError(.unavailable, "\(path): cannot write the master key file (\(String(cString: strerror(errno))))")
        }
        syncDirectory(dir)
    }

    static func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }
}

/// A secret's listing: never its value.
public struct SecretInfo: Sendable, Equatable {
    public var name: String
    /// `global` or a workspace name.
    public var scope: String
    public var keyID: String
    public var createdAt: Double
    public var updatedAt: Double

    public var listing: JSONValue {
        ["name": .string(name), "workspace": scope == SecretStore.globalScope ? .null : .string(scope),
         "scope": .string(scope), "key_id": .string(keyID),
         "created_at": .number(createdAt.rounded()), "updated_at": .number(updatedAt.rounded())]
    }
}

/// Secrets encrypted at rest in the state database (`secrets` table): ChaCha20-Poly1305 with a
/// random 96-bit nonce per value and `scope`+`name` as associated data, so a ciphertext copied to
/// another row does not decrypt. The database never holds a plain value.
public struct SecretStore: SecretSource {
    public static let globalScope = "global"
    /// Largest accepted value, bytes.
    public static let maxValueBytes = 64 << 10

    public let store: SecurityStore
    public let dataDir: String
    let environment: [String: String]

    /// The store of the database's data directory (where the key file lives).
    public init(store: SecurityStore, environment: [String: String] = ProcessSettings.current.environment) {
        self.init(store: store, dataDir: (store.path as NSString).deletingLastPathComponent, environment: environment)
    }

    public init(store: SecurityStore, dataDir: String, environment: [String: String] = ProcessSettings.current.environment) {
        self.store = store
        self.dataDir = dataDir
        self.environment = environment
    }

    /// Associated data binding a ciphertext to its row.
    static func associatedData(scope: String, name: String) -> [UInt8] {
        Array("mcpproxy-secret-v1\u{0}\(scope)\u{0}\(name)".utf8)
    }

    static func seal(_ value: [UInt8], key: MasterKey, scope: String, name: String) throws -> [UInt8] {
        let box = try ChaChaPoly.seal(value, using: key.key, nonce: ChaChaPoly.Nonce(),
                                      authenticating: associatedData(scope: scope, name: name))
        return Array(box.combined)
    }

    static func open(_ combined: [UInt8], key: MasterKey, scope: String, name: String) throws -> [UInt8] {
        do {
            let box = try ChaChaPoly.SealedBox(combined: combined)
            return Array(try ChaChaPoly.open(box, using: key.key, authenticating: associatedData(scope: scope, name: name)))
        } catch {
            throw ProxyError(.unavailable, "secret \"\(name)\" (\(scope)) cannot be decrypted: its ciphertext does not belong to this name or was altered; set it again with `mcpproxy secret set \(name)`")
        }
    }

    func validate(name: String, scope: String) throws {
        guard SecretReference.isValidName(name) else {
            throw ProxyError(.invalidArgument, "invalid secret name \"\(name)\": use letters, digits, '-', '_' and '.', at most 64 characters")
        }
        guard scope == Self.globalScope || ConfigLoader.isValidServerName(scope) else {
            throw ProxyError(.invalidArgument, "invalid workspace name \"\(scope)\"")
        }
    }

    /// The current key; `create`: make the key file when none exists (only writes do).
    func currentKey(create: Bool) throws -> MasterKey? {
        try finishPendingRotation()
        return try MasterKey.load(dataDir: dataDir, environment: environment, create: create)
    }

    /// Stores (or replaces) a secret. Returns true when it replaced one.
    @discardableResult
    public func set(name: String, scope: String = SecretStore.globalScope, value: String, now: Double = Date().timeIntervalSince1970) throws -> Bool {
        try validate(name: name, scope: scope)
        let bytes = Array(value.utf8)
        guard !bytes.isEmpty else { throw ProxyError(.invalidArgument, "the value of secret \"\(name)\" is empty") }
        guard bytes.count <= Self.maxValueBytes else {
            throw ProxyError(.payloadTooLarge, "the value of secret \"\(name)\" is \(bytes.count) bytes; the limit is \(Self.maxValueBytes)")
        }
        let key = try currentKey(create: true)!
        let sealed = try Self.seal(bytes, key: key, scope: scope, name: name)
        return try store.write("store a secret") { db in
            let existed = try Bool.fetchOne(db, sql: "SELECT 1 FROM secrets WHERE scope = ? AND name = ?", arguments: [scope, name]) ?? false
            try db.execute(sql: """
                INSERT INTO secrets (scope, name, key_id, ciphertext, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (scope, name) DO UPDATE SET key_id = excluded.key_id, ciphertext = excluded.ciphertext,
                    updated_at = excluded.updated_at
                """, arguments: [scope, name, key.id, Data(sealed), now, now])
            return existed
        }
    }

    /// Every secret's listing (no values), by scope then name.
    public func list() throws -> [SecretInfo] {
        try store.read("read secrets") { db in
            try Row.fetchAll(db, sql: "SELECT scope, name, key_id, created_at, updated_at FROM secrets ORDER BY scope, name").map {
                SecretInfo(name: $0["name"], scope: $0["scope"], keyID: $0["key_id"], createdAt: $0["created_at"], updatedAt: $0["updated_at"])
            }
        }
    }

    /// Removes a secret; false when there was none.
    @discardableResult
    public func remove(name: String, scope: String = SecretStore.globalScope) throws -> Bool {
        try validate(name: name, scope: scope)
        return try store.write("remove a secret") { db in
            try db.execute(sql: "DELETE FROM secrets WHERE scope = ? AND name = ?", arguments: [scope, name])
            return db.changesCount > 0
        }
    }

    /// The plain value, nil when absent. A row under another key id: a clear error.
    public func value(name: String, scope: String = SecretStore.globalScope) throws -> String? {
        let row = try store.read("read a secret") { db in
            try Row.fetchOne(db, sql: "SELECT key_id, ciphertext FROM secrets WHERE scope = ? AND name = ?", arguments: [scope, name])
        }
        guard let row else { return nil }
        let keyID: String = row["key_id"]
        let sealed: Data = row["ciphertext"]
        guard let key = try currentKey(create: false) else {
            throw ProxyError(.unavailable, "secret \"\(name)\" was encrypted with another master key (key id \(keyID)), and there is no master key now (no \(MasterKey.environmentVariable), no \(MasterKey.keyFilePath(dataDir: dataDir))); restore the key file or set \(MasterKey.environmentVariable)")
        }
        guard key.id == keyID else {
            throw ProxyError(.unavailable, "secret \"\(name)\" was encrypted with another master key (key id \(keyID); the current key from \(key.origin) has id \(key.id)); use the key it was stored with, or set the secret again with `mcpproxy secret set \(name)`")
        }
        return String(decoding: try Self.open(Array(sealed), key: key, scope: scope, name: name), as: UTF8.self)
    }

    public func secretValue(named name: String) throws -> String? { try value(name: name) }
    public func secretValue(named name: String, workspace: String?) throws -> String? {
        if let workspace, let v = try value(name: name, scope: workspace) { return v }
        return try value(name: name)
    }

    /// Re-encrypts every secret under a new master key in one transaction and replaces the key
    /// file (new file written and fsynced first, renamed over the old one after the commit; an
    /// interrupted rotation is finished or undone by the next use, by the key ids in the rows).
    /// With `MCPPROXY_MASTER_KEY`, the new key comes from `MCPPROXY_NEW_MASTER_KEY` and no file
    /// is written. Returns the new key id and how many secrets were re-encrypted.
    public func rotateKey() throws -> (keyID: String, count: Int) {
        let fromEnvironment = environment[MasterKey.environmentVariable] != nil
        let old = try currentKey(create: true)!
        let new: MasterKey
        let pendingPath = (dataDir as NSString).appendingPathComponent(MasterKey.pendingFileName)
        let keyPath = MasterKey.keyFilePath(dataDir: dataDir)
        if fromEnvironment {
            guard let v = environment[MasterKey.newKeyEnvironmentVariable] else {
                throw ProxyError(.invalidArgument, "the master key comes from \(MasterKey.environmentVariable): set \(MasterKey.newKeyEnvironmentVariable) to the new key (base64 of 32 random bytes) for rotate-key, then use it as \(MasterKey.environmentVariable)")
            }
            new = try MasterKey.parse(base64: v, origin: MasterKey.newKeyEnvironmentVariable)
        } else {
            new = MasterKey.random(origin: keyPath)
            unlink(pendingPath)
            try MasterKey.writeKeyFile(new, path: pendingPath, exclusive: true)
        }
        let count: Int
        do {
            count = try store.write("rotate the master key") { db in
                let rows = try Row.fetchAll(db, sql: "SELECT scope, name, key_id, ciphertext FROM secrets")
                for r in rows {
                    let scope: String = r["scope"], name: String = r["name"], keyID: String = r["key_id"]
                    guard keyID == old.id else {
                        throw ProxyError(.unavailable, "secret \"\(name)\" was encrypted with another master key (key id \(keyID); the current key has id \(old.id)); nothing was rotated. Remove it (`mcpproxy secret rm \(name)`) or restore its key first")
                    }
                    let plain = try Self.open(Array((r["ciphertext"] as Data)), key: old, scope: scope, name: name)
                    let sealed = try Self.seal(plain, key: new, scope: scope, name: name)
                    try db.execute(sql: "UPDATE secrets SET key_id = ?, ciphertext = ? WHERE scope = ? AND name = ?",
                                   arguments: [new.id, Data(sealed), scope, name])
                }
                return rows.count
            }
        } catch {
            if !fromEnvironment { unlink(pendingPath) }
            throw error
        }
        if !fromEnvironment {
            guard rename(pendingPath, keyPath) == 0 else {
                throw ProxyError(.unavailable, "\(keyPath): the secrets were re-encrypted but the new key file could not replace the old one (\(String(cString: strerror(errno)))); the next mcpproxy command finishes the rotation from \(pendingPath): keep that file")
            }
            MasterKey.syncDirectory(dataDir)
        }
        return (new.id, count)
    }

    /// A rotation interrupted after its commit left `master.key.new` with rows already under its
    /// id: rename it into place. One interrupted before the commit left no row under it: remove it.
    func finishPendingRotation() throws {
        let pendingPath = (dataDir as NSString).appendingPathComponent(MasterKey.pendingFileName)
        guard environment[MasterKey.environmentVariable] == nil, FileManager.default.fileExists(atPath: pendingPath),
              let pending = try MasterKey.readKeyFile(pendingPath) else { return }
        let used = try store.read("read secrets") { db in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM secrets WHERE key_id = ? LIMIT 1", arguments: [pending.id]) ?? false
        }
        if used {
            let keyPath = MasterKey.keyFilePath(dataDir: dataDir)
            guard rename(pendingPath, keyPath) == 0 else {
                throw ProxyError(.unavailable, "\(pendingPath): cannot finish an interrupted key rotation (\(String(cString: strerror(errno))))")
            }
            MasterKey.syncDirectory(dataDir)
        } else {
            unlink(pendingPath)
        }
    }

    /// A fingerprint of every secret's (scope, name, updated_at): changes when any is set or
    /// removed, so the proxy can restart the servers that use a changed one.
    public func versions() throws -> [String: Double] {
        try store.read("read secrets") { db in
            var out: [String: Double] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT scope, name, updated_at FROM secrets") {
                out["\(r["scope"] as String)/\(r["name"] as String)"] = r["updated_at"]
            }
            return out
        }
    }
}
