import Foundation
import Testing
@testable import MCPSecurity

@Suite("Monitor holds in the state database")
struct MonitorHoldStoreTests {
    @Test("a hold survives reopening and is removed by a release")
    func holdSurvivesReopen() throws {
        let dir = TempDir()
        let h = MonitorHold(server: "hog", rule: "memory", reason: "memory 95 MiB is 95% of its limit", since: 1_700_000_000, eventID: 3)
        do {
            let store = try SecurityStore.open(dataDir: dir.path)
            try store.addMonitorHold(h)
            var again = h
            again.reason = "replaced"
            try store.addMonitorHold(again)
        }
        let store = try SecurityStore.open(dataDir: dir.path)
        let all = try store.monitorHolds()
        #expect(all.count == 1)
        #expect(all.first?.server == "hog" && all.first?.rule == "memory" && all.first?.reason == "replaced" && all.first?.eventID == 3)
        #expect(try store.removeMonitorHold("hog"))
        #expect(try !store.removeMonitorHold("hog"))
        #expect(try store.monitorHolds().isEmpty)
    }
}
