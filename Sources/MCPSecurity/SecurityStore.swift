import Foundation
import GRDB
import NIOConcurrencyHelpers
import ProxyCore

/// A server's security state as stored.
public struct StoredServer: Sendable, Codable, Equatable {
    public var name: String
    public var quarantined: Bool
    /// Set by an approval made before any tools were seen (or by a config that marks the server
    /// trusted): the next tool list seen is pinned as approved (trust on first use).
    public var pinOnNextSight: Bool
    /// `ServerIdentity.of` the server as approved (or as first seen): a server whose command, URL
    /// or image changed is a different server and goes back to quarantine.
    public var identity: String?
    public var updatedAt: Double
}

/// A tool definition as stored: pinned at approval, or the last one seen.
public struct StoredTool: Sendable, Equatable {
    public var server: String
    public var tool: String
    public var fingerprint: String
    public var annotationsHash: String
    /// `ToolFingerprint.storedDefinition` of the tool.
    public var definition: JSONValue
    /// Approval time (pins) or last-seen time (observed tools), seconds since 1970.
    public var at: Double
    /// For pins: approved despite hard scanner findings.
    public var forced: Bool
}

/// One tool call in the activity log. Arguments are kept only by size and hash unless the config
/// says to log them (`log_call_arguments`).
public struct ActivityRecord: Sendable, Codable, Equatable {
    public var id: Int64?
    /// Seconds since 1970.
    public var at: Double
    public var server: String
    public var tool: String
    public var durationMs: Double
    public var outcome: ActivityOutcome
    public var requestID: String
    public var argumentsBytes: Int?
    public var argumentsSHA256: String?
    /// The arguments verbatim, only when configured.
    public var arguments: String?
    /// Who made the call: `admin`, `token:NAME` or `jwt:SUBJECT`.
    public var caller: String? = nil

    enum CodingKeys: String, CodingKey {
        case id, at, server, tool, durationMs = "duration_ms", outcome, requestID = "request_id",
             argumentsBytes = "arguments_bytes", argumentsSHA256 = "arguments_sha256", arguments, caller
    }
}

/// The security state in SQLite (`<dataDir>/mcpproxy.db`): quarantine status, pinned and observed
/// tool definitions, scan results and the activity log. It survives restarts; a corrupt or locked
/// database is reported as an error and never reset or rewritten.
public final class SecurityStore: Sendable {
    /// The database file name inside the data directory.
    public static let fileName = "mcpproxy.db"

    /// The database file.
    public let path: String
    private let db: DatabaseQueue

    private init(path: String, db: DatabaseQueue) {
        self.path = path
        self.db = db
    }

    /// Opens (creating when absent) `<dataDir>/mcpproxy.db`.
    public static func open(dataDir: String) throws -> SecurityStore {
        do {
            try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw ProxyError(.unavailable, "\(dataDir): cannot create the data directory; check its permissions or choose another with --data-dir",
                             cause: error)
        }
        return try open(path: (dataDir as NSString).appendingPathComponent(fileName))
    }

    /// Opens (creating when absent) the database at `path`. Throws a `ProxyError` that says what is
    /// wrong and what to do when the file is not a SQLite database, is corrupt, or is locked.
    public static func open(path: String, busyTimeout: TimeInterval = 2) throws -> SecurityStore {
        try checkHeader(path)
        var config = Configuration()
        config.busyMode = .timeout(busyTimeout)
        config.label = "mcpproxy.security"
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
            // A file with a valid header can still be damaged: check before writing anything.
            let check = try queue.read { db in try String.fetchOne(db, sql: "PRAGMA quick_check") }
            if check != "ok" { throw corrupt(path, detail: check ?? "quick_check returned nothing") }
            // WAL: readers never wait for the writer, and commits need no fsync of the main file
            // (synchronous=NORMAL), so the activity log is cheap on the call path.
            try queue.writeWithoutTransaction { db in
                _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
            try migrator.migrate(queue)
            // Take the write lock once now, so a database held by another process is reported at
            // start-up rather than on the first approval.
            try queue.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE; COMMIT") }
        } catch let error as ProxyError {
            throw error
        } catch {
            throw describe(error, path: path, doing: "open")
        }
        // The database holds tool definitions and call history: keep it private to the user.
        chmod(path, 0o600)
        return SecurityStore(path: path, db: queue)
    }

    private static func checkHeader(_ path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }  // absent: created
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 16)) ?? Data()
        if head.isEmpty { return }  // an empty file is a new database to SQLite
        if head != Data("SQLite format 3\0".utf8) {
            throw corrupt(path, detail: "the file does not start with the SQLite header")
        }
    }

    static func corrupt(_ path: String, detail: String) -> ProxyError {
        ProxyError(.unavailable,
                   "\(path): the security database is not a valid SQLite database or is corrupt; mcpproxy left it untouched. "
                   + "Restore it from a backup, or move it aside to start with empty security state (every server is then quarantined again)",
                   detail: detail)
    }

    static func describe(_ error: Error, path: String, doing: String) -> ProxyError {
        if let e = error as? DatabaseError {
            switch e.resultCode {
            case .SQLITE_NOTADB, .SQLITE_CORRUPT:
                return corrupt(path, detail: e.message ?? "\(e.resultCode)")
            case .SQLITE_BUSY, .SQLITE_LOCKED:
                return ProxyError(.unavailable,
                                  "\(path): the security database is locked by another process (another mcpproxy with the same data directory?); stop it or use another --data-dir",
                                  detail: e.message, cause: e)
            case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_IOERR, .SQLITE_FULL:
                return ProxyError(.unavailable,
                                  "\(path): cannot \(doing) the security database (\(e.resultCode)); check the file's permissions and free disk space",
                                  detail: e.message, cause: e)
            default:
                return ProxyError(.internalError, "\(path): security database error while trying to \(doing)", cause: e)
            }
        }
        return ProxyError(.internalError, "\(path): security database error while trying to \(doing)", cause: error)
    }

    private static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE servers (
                    name TEXT PRIMARY KEY NOT NULL,
                    quarantined INTEGER NOT NULL,
                    pin_on_next_sight INTEGER NOT NULL DEFAULT 0,
                    updated_at REAL NOT NULL);
                CREATE TABLE tool_pins (
                    server TEXT NOT NULL, tool TEXT NOT NULL,
                    fingerprint TEXT NOT NULL, annotations_hash TEXT NOT NULL,
                    definition TEXT NOT NULL, at REAL NOT NULL, forced INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (server, tool));
                CREATE TABLE tools_seen (
                    server TEXT NOT NULL, tool TEXT NOT NULL,
                    fingerprint TEXT NOT NULL, annotations_hash TEXT NOT NULL,
                    definition TEXT NOT NULL, at REAL NOT NULL,
                    PRIMARY KEY (server, tool));
                CREATE TABLE scans (
                    server TEXT PRIMARY KEY NOT NULL, report TEXT NOT NULL, scanned_at REAL NOT NULL);
                CREATE TABLE activity (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at REAL NOT NULL, server TEXT NOT NULL, tool TEXT NOT NULL,
                    duration_ms REAL NOT NULL, outcome TEXT NOT NULL, request_id TEXT NOT NULL,
                    args_bytes INTEGER, args_sha256 TEXT, args TEXT);
                CREATE INDEX activity_by_server ON activity (server, at);
                """)
        }
        m.registerMigration("v2: server identity") { db in
            try db.execute(sql: "ALTER TABLE servers ADD COLUMN identity TEXT")
        }
        m.registerMigration("v3: identities and pending servers") { db in
            try db.execute(sql: """
                CREATE TABLE agent_tokens (
                    name TEXT PRIMARY KEY NOT NULL,
                    token_hash TEXT NOT NULL UNIQUE,
                    servers TEXT,
                    intent TEXT NOT NULL,
                    manage_servers INTEGER NOT NULL DEFAULT 0,
                    created_at REAL NOT NULL,
                    expires_at REAL,
                    revoked_at REAL);
                CREATE TABLE pending_servers (
                    name TEXT PRIMARY KEY NOT NULL,
                    config TEXT NOT NULL,
                    added_by TEXT NOT NULL,
                    added_at REAL NOT NULL);
                ALTER TABLE activity ADD COLUMN caller TEXT;
                """)
        }
        m.registerMigration("v4: secrets") { db in
            // Values are ChaCha20-Poly1305 ciphertexts (SecretStore); never plain text.
            try db.execute(sql: """
                CREATE TABLE secrets (
                    scope TEXT NOT NULL, name TEXT NOT NULL,
                    key_id TEXT NOT NULL, ciphertext BLOB NOT NULL,
                    created_at REAL NOT NULL, updated_at REAL NOT NULL,
                    PRIMARY KEY (scope, name));
                """)
        }
        registerItemPins(&m)
        m.registerMigration("monitor holds") { db in
            try db.execute(sql: """
                CREATE TABLE monitor_holds (
                    server TEXT PRIMARY KEY NOT NULL,
                    rule TEXT NOT NULL, reason TEXT NOT NULL,
                    since REAL NOT NULL, event_id INTEGER NOT NULL);
                """)
        }
        return m
    }

    func write<T>(_ doing: String, _ body: (Database) throws -> T) throws -> T {
        do {
            let result = try db.write(body)
            if healthBox.withLockedValue({ $0.health.failing }) { noteWrite(nil) }
            return result
        } catch let e as ProxyError {
            throw e  // thrown by the body on purpose (the transaction rolled back); not a write failure
        } catch {
            let e = SecurityStore.describe(error, path: path, doing: doing)
            noteWrite(e)
            throw e
        }
    }

    // MARK: Health

    /// Whether writes to the database succeed, for `/healthz` and the console. Start-up problems
    /// (corrupt, locked, unreadable) stop start-up with their message; this is what can go wrong
    /// after: a full disk, a file made read-only, an I/O error.
    public struct Health: Sendable, Equatable {
        /// The last write failed (and none has succeeded since).
        public var failing = false
        /// Writes that failed since start-up.
        public var failedWrites = 0
        /// Why the last failed write failed, without the file's path (the health route is public).
        public var lastError: String?
        /// When the current run of failures began.
        public var failingSince: Date?
    }

    private struct HealthBox {
        var health = Health()
        var observer: (@Sendable (Health) -> Void)?
    }
    private let healthBox = NIOLockedValueBox(HealthBox())
    /// Called when writes start failing and when they succeed again: one line when the database
    /// starts failing and one when it recovers, not one per write.
    public func onHealthChange(_ observer: @escaping @Sendable (Health) -> Void) {
        healthBox.withLockedValue { $0.observer = observer }
    }

    /// The current write health.
    public var writeHealth: Health { healthBox.withLockedValue { $0.health } }

    private func noteWrite(_ error: ProxyError?) {
        let (changed, now, observer) = healthBox.withLockedValue { box -> (Bool, Health, (@Sendable (Health) -> Void)?) in
            let was = box.health.failing
            if let error {
                box.health.failing = true
                box.health.failedWrites += 1
                box.health.lastError = error.detail.map { "\(Self.reason(error.message)) (\($0))" } ?? Self.reason(error.message)
                if !was { box.health.failingSince = Date() }
            } else {
                box.health.failing = false
                box.health.failingSince = nil
            }
            return (was != box.health.failing, box.health, box.observer)
        }
        if changed { observer?(now) }
    }

    /// The message without the leading file path (`/path: cannot write ...` → `cannot write ...`).
    static func reason(_ message: String) -> String {
        guard message.hasPrefix("/"), let r = message.range(of: ": ") else { return message }
        return String(message[r.upperBound...])
    }

    func read<T>(_ doing: String, _ body: (Database) throws -> T) throws -> T {
        do { return try db.read(body) } catch { throw SecurityStore.describe(error, path: path, doing: doing) }
    }

    // MARK: Servers

    /// The stored state of a server, nil when it was never seen.
    public func server(_ name: String) throws -> StoredServer? {
        try read("read server state") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM servers WHERE name = ?", arguments: [name]).map(Self.server(from:))
        }
    }

    /// Every stored server, by name.
    public func servers() throws -> [StoredServer] {
        try read("read server states") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM servers ORDER BY name").map(Self.server(from:))
        }
    }

    private static func server(from row: Row) -> StoredServer {
        StoredServer(name: row["name"], quarantined: row["quarantined"], pinOnNextSight: row["pin_on_next_sight"],
                     identity: row["identity"], updatedAt: row["updated_at"])
    }

    /// Creates or updates a server's state; a nil `identity` keeps the stored one.
    public func setServer(_ name: String, quarantined: Bool, pinOnNextSight: Bool, identity: String? = nil) throws {
        try write("save server state") { db in
            try db.execute(sql: """
                INSERT INTO servers (name, quarantined, pin_on_next_sight, identity, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(name) DO UPDATE SET quarantined = excluded.quarantined,
                    pin_on_next_sight = excluded.pin_on_next_sight,
                    identity = COALESCE(excluded.identity, servers.identity), updated_at = excluded.updated_at
                """, arguments: [name, quarantined, pinOnNextSight, identity, Date().timeIntervalSince1970])
        }
    }

    /// Forgets everything about a server (when it is removed from the config for good).
    public func deleteServer(_ name: String) throws {
        try write("delete server state") { db in
            for table in ["servers"] { try db.execute(sql: "DELETE FROM \(table) WHERE name = ?", arguments: [name]) }
            for table in ["tool_pins", "tools_seen", "scans", "item_pins", "item_baselines"] {
                try db.execute(sql: "DELETE FROM \(table) WHERE server = ?", arguments: [name])
            }
        }
    }

    // MARK: Tools

    /// Pinned (approved) tool definitions of a server, by tool name.
    public func pins(server: String) throws -> [String: StoredTool] {
        try tools(table: "tool_pins", server: server)
    }

    /// The last tool definitions seen from a server, by tool name.
    public func observed(server: String) throws -> [String: StoredTool] {
        try tools(table: "tools_seen", server: server)
    }

    private func tools(table: String, server: String) throws -> [String: StoredTool] {
        try read("read \(table)") { db in
            var out: [String: StoredTool] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM \(table) WHERE server = ?", arguments: [server]) {
                let text: String = row["definition"]
                let definition = (try? JSONValue.parse(Data(text.utf8))) ?? .null
                let forced: Bool = table == "tool_pins" ? row["forced"] : false
                let t = StoredTool(server: row["server"], tool: row["tool"], fingerprint: row["fingerprint"],
                                   annotationsHash: row["annotations_hash"], definition: definition, at: row["at"],
                                   forced: forced)
                out[t.tool] = t
            }
            return out
        }
    }

    /// Pins tool definitions as approved (replacing earlier pins of the same tools). `prints`,
    /// when given, are `ToolFingerprint.prints(tools)` (computed once by the caller). One
    /// transaction and one prepared statement for the whole list.
    public func pin(server: String, tools: [ToolDefinition], forced: Bool = false, prints: [ToolFingerprint.Prints]? = nil) throws {
        let now = Date().timeIntervalSince1970
        let prints = prints ?? tools.map(ToolFingerprint.prints)
        try write("pin tools") { db in
            let insert = try db.makeStatement(sql: """
                INSERT OR REPLACE INTO tool_pins (server, tool, fingerprint, annotations_hash, definition, at, forced)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """)
            for (t, p) in zip(tools, prints) {
                try insert.execute(arguments: [server, t.name, p.fingerprint, p.annotations, p.stored, now, forced])
            }
        }
    }

    /// The fingerprints of a server's pins, by tool name: what a verdict needs, without reading
    /// and parsing every pinned definition.
    public func pinPrints(server: String) throws -> [String: (fingerprint: String, annotationsHash: String)] {
        try read("read tool_pins") { db in
            var out: [String: (fingerprint: String, annotationsHash: String)] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT tool, fingerprint, annotations_hash FROM tool_pins WHERE server = ?",
                                           arguments: [server])
            while let row = try rows.next() {
                let tool: String = row[0], fingerprint: String = row[1], annotations: String = row[2]
                out[tool] = (fingerprint, annotations)
            }
            return out
        }
    }

    /// Replaces the set of tools last seen from a server (`prints` as for `pin`).
    public func replaceObserved(server: String, tools: [ToolDefinition], prints: [ToolFingerprint.Prints]? = nil) throws {
        let now = Date().timeIntervalSince1970
        let prints = prints ?? tools.map(ToolFingerprint.prints)
        try write("record observed tools") { db in
            try db.execute(sql: "DELETE FROM tools_seen WHERE server = ?", arguments: [server])
            let insert = try db.makeStatement(sql: """
                INSERT OR REPLACE INTO tools_seen (server, tool, fingerprint, annotations_hash, definition, at)
                VALUES (?, ?, ?, ?, ?, ?)
                """)
            for (t, p) in zip(tools, prints) {
                try insert.execute(arguments: [server, t.name, p.fingerprint, p.annotations, p.stored, now])
            }
        }
    }

    // MARK: Scans

    /// Saves a server's latest scan report.
    public func saveScan(_ report: ScanReport) throws {
        let data = try JSONEncoder().encode(report)
        try write("save scan result") { db in
            try db.execute(sql: "INSERT OR REPLACE INTO scans (server, report, scanned_at) VALUES (?, ?, ?)",
                           arguments: [report.server, String(decoding: data, as: UTF8.self), report.scannedAt])
        }
    }

    /// A server's latest scan report.
    public func scan(server: String) throws -> ScanReport? {
        let text: String? = try read("read scan result") { db in
            try String.fetchOne(db, sql: "SELECT report FROM scans WHERE server = ?", arguments: [server])
        }
        guard let text else { return nil }
        do { return try JSONDecoder().decode(ScanReport.self, from: Data(text.utf8)) } catch {
            throw ProxyError(.internalError, "\(path): the stored scan result of server \"\(server)\" cannot be read; rescan it",
                             cause: error)
        }
    }

    // MARK: Activity

    /// Appends a tool call to the activity log; keeps the newest `keep` entries.
    public func appendActivity(_ r: ActivityRecord, keep: Int = 100_000) throws {
        try appendActivity([r], keep: keep)
    }

    /// Appends several tool calls in one transaction (the gateway batches them off the hot path).
    public func appendActivity(_ records: [ActivityRecord], keep: Int = 100_000) throws {
        guard !records.isEmpty else { return }
        try write("append to the activity log") { db in
            let statement = try db.cachedStatement(sql: """
                INSERT INTO activity (at, server, tool, duration_ms, outcome, request_id, args_bytes, args_sha256, args, caller)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            var pruneAt: Int64? = nil
            for r in records {
                try statement.execute(arguments: [r.at, r.server, r.tool, r.durationMs, r.outcome.rawValue, r.requestID, r.argumentsBytes,
                                                  r.argumentsSHA256, r.arguments, r.caller])
                let id = db.lastInsertedRowID
                if id % 1000 == 0 { pruneAt = id }
            }
            // Bounded: prune in batches rather than on every insert.
            if let id = pruneAt { try db.execute(sql: "DELETE FROM activity WHERE id <= ?", arguments: [id - Int64(keep)]) }
        }
    }

    /// The newest activity entries, newest first, optionally for one server.
    public func activity(server: String? = nil, limit: Int = 100) throws -> [ActivityRecord] {
        try read("read the activity log") { db in
            let rows: [Row]
            if let server {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM activity WHERE server = ? ORDER BY id DESC LIMIT ?",
                                        arguments: [server, limit])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM activity ORDER BY id DESC LIMIT ?", arguments: [limit])
            }
            return rows.map {
                ActivityRecord(id: $0["id"], at: $0["at"], server: $0["server"], tool: $0["tool"], durationMs: $0["duration_ms"],
                               outcome: ActivityOutcome(stored: $0["outcome"]), requestID: $0["request_id"], argumentsBytes: $0["args_bytes"],
                               argumentsSHA256: $0["args_sha256"], arguments: $0["args"], caller: $0["caller"])
            }
        }
    }
}
