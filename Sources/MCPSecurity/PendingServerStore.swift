import Foundation
import GRDB
import ProxyCore

/// A server added over MCP (`upstream_servers add`) that no person has approved yet: it is kept
/// here, not in the config file, and nothing is started for it (state `awaiting_approval`). Being
/// in the database rather than the file means a config reload cannot turn it into a
/// person-written entry.
public struct PendingServer: Sendable, Equatable {
    public var name: String
    /// The entry as it would be written to the config file (`ConfigFile.json(for:)`).
    public var entry: JSONValue
    /// The identity that added it (`token:NAME`, `jwt:SUBJECT`, `admin`).
    public var addedBy: String
    public var addedAt: Double

    public init(name: String, entry: JSONValue, addedBy: String, addedAt: Double) {
        self.name = name
        self.entry = entry
        self.addedBy = addedBy
        self.addedAt = addedAt
    }
}

extension SecurityStore {
    /// Records a server awaiting approval. Refused when one of that name is already waiting.
    public func addPendingServer(_ p: PendingServer) throws {
        try write("record a server awaiting approval") { db in
            if try Int.fetchOne(db, sql: "SELECT 1 FROM pending_servers WHERE name = ?", arguments: [p.name]) != nil {
                throw ProxyError(.conflict, "a server named \"\(p.name)\" is already awaiting approval")
            }
            try db.execute(sql: "INSERT INTO pending_servers (name, config, added_by, added_at) VALUES (?, ?, ?, ?)",
                           arguments: [p.name, p.entry.serialized(), p.addedBy, p.addedAt])
        }
    }

    /// Every server awaiting approval, by name.
    public func pendingServers() throws -> [PendingServer] {
        try read("read servers awaiting approval") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM pending_servers ORDER BY name").map { row in
                let text: String = row["config"]
                return PendingServer(name: row["name"], entry: (try? JSONValue.parse(Data(text.utf8))) ?? .object([:]),
                                     addedBy: row["added_by"], addedAt: row["added_at"])
            }
        }
    }

    /// Forgets a pending server (approved into the config, or rejected); false when absent.
    @discardableResult
    public func removePendingServer(_ name: String) throws -> Bool {
        try write("remove a server awaiting approval") { db in
            try db.execute(sql: "DELETE FROM pending_servers WHERE name = ?", arguments: [name])
            return db.changesCount > 0
        }
    }
}
