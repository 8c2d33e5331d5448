import Foundation
import GRDB
import ProxyCore

/// Pins of prompts and resource templates (`SecurityGate.judge`), by server and kind. A
/// baseline row says the kind was pinned once for the server: from then on an item without a pin
/// is new (held as pending) instead of trusted at first sight.
extension SecurityStore {
    static func registerItemPins(_ m: inout DatabaseMigrator) {
        m.registerMigration("v5: prompt and resource template pins") { db in
            try db.execute(sql: """
                CREATE TABLE item_pins (
                    server TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
                    fingerprint TEXT NOT NULL, definition TEXT NOT NULL, at REAL NOT NULL,
                    forced INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (server, kind, name));
                CREATE TABLE item_baselines (
                    server TEXT NOT NULL, kind TEXT NOT NULL, at REAL NOT NULL,
                    PRIMARY KEY (server, kind));
                """)
        }
    }

    /// Pinned fingerprints of one kind of a server's items by name, and whether a baseline exists.
    public func itemPins(server: String, kind: String) throws -> (pins: [String: String], baseline: Bool) {
        try read("read item_pins") { db in
            var pins: [String: String] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT name, fingerprint FROM item_pins WHERE server = ? AND kind = ?",
                                           arguments: [server, kind])
            while let row = try rows.next() { pins[row[0]] = row[1] }
            let baseline = try Bool.fetchOne(db, sql: "SELECT 1 FROM item_baselines WHERE server = ? AND kind = ?",
                                             arguments: [server, kind]) ?? false
            return (pins, baseline)
        }
    }

    /// Pins items (replacing earlier pins of the same names) and, with `baseline`, records that
    /// the kind is pinned for the server; one transaction.
    public func pinItems(server: String, kind: String, items: [(name: String, fingerprint: String, definition: String)],
                         forced: Bool = false, baseline: Bool = false) throws {
        let now = Date().timeIntervalSince1970
        try write("pin prompts or resource templates") { db in
            let insert = try db.makeStatement(sql: """
                INSERT OR REPLACE INTO item_pins (server, kind, name, fingerprint, definition, at, forced)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """)
            for i in items { try insert.execute(arguments: [server, kind, i.name, i.fingerprint, i.definition, now, forced]) }
            if baseline {
                try db.execute(sql: "INSERT OR REPLACE INTO item_baselines (server, kind, at) VALUES (?, ?, ?)",
                               arguments: [server, kind, now])
            }
        }
    }

    /// Drops a server's baselines (at approval: the items it shows next are pinned as approved).
    public func clearItemBaselines(server: String) throws {
        try write("clear item baselines") { db in
            try db.execute(sql: "DELETE FROM item_baselines WHERE server = ?", arguments: [server])
        }
    }
}
