import Foundation
import GRDB
import ProxyCore

/// A server the runtime monitor stopped (`held_by_monitor`): which rule fired and why. Kept in
/// the state database, so a held server stays stopped across restarts of mcpproxy until a person
/// releases it.
public struct MonitorHold: Sendable, Equatable {
    public var server: String
    /// The rule that fired (`memory`, `pids`, `cpu`, `crash_loop`, `egress_denied`).
    public var rule: String
    public var reason: String
    /// When it was held, seconds since 1970.
    public var since: Double
    /// The id of the event that held it (`GET /api/v1/events`); ids restart with the proxy.
    public var eventID: Int

    public init(server: String, rule: String, reason: String, since: Double, eventID: Int) {
        self.server = server
        self.rule = rule
        self.reason = reason
        self.since = since
        self.eventID = eventID
    }
}

extension SecurityStore {
    /// Records (or replaces) a server's monitor hold.
    public func addMonitorHold(_ h: MonitorHold) throws {
        try write("record a monitor hold") { db in
            try db.execute(sql: "INSERT OR REPLACE INTO monitor_holds (server, rule, reason, since, event_id) VALUES (?, ?, ?, ?, ?)",
                           arguments: [h.server, h.rule, h.reason, h.since, h.eventID])
        }
    }

    /// Every held server, by name.
    public func monitorHolds() throws -> [MonitorHold] {
        try read("read monitor holds") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM monitor_holds ORDER BY server").map {
                MonitorHold(server: $0["server"], rule: $0["rule"], reason: $0["reason"], since: $0["since"], eventID: $0["event_id"])
            }
        }
    }

    /// Releases a server; false when it was not held.
    @discardableResult
    public func removeMonitorHold(_ server: String) throws -> Bool {
        try write("release a monitor hold") { db in
            try db.execute(sql: "DELETE FROM monitor_holds WHERE server = ?", arguments: [server])
            return db.changesCount > 0
        }
    }
}
