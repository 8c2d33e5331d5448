import Foundation
import ProxyCore
import Testing
@testable import MCPSecurity

@Suite("security config section")
struct SecurityConfigTests {
    @Test("security.scanners is parsed with defaults")
    func parses() throws {
        let c = try ConfigLoader.parse(data: Data(#"""
        {"security": {"scanners": [{"name": "deep", "image": "local/scan:1", "args": ["--strict"], "timeout": "45s"},
                                    {"name": "quick", "image": "local/quick:2"}]},
         "mcpServers": {}}
        """#.utf8))
        #expect(c.warnings.isEmpty)
        #expect(c.config.security.scanners == [
            ScannerPluginConfig(name: "deep", image: "local/scan:1", args: ["--strict"], timeout: 45),
            ScannerPluginConfig(name: "quick", image: "local/quick:2"),
        ])
    }

    @Test(arguments: [
        (#"{"security": {"scanners": {}}}"#, "security.scanners"),
        (#"{"security": {"scanners": [{"image": "x"}]}}"#, "security.scanners[0].name"),
        (#"{"security": {"scanners": [{"name": "a"}]}}"#, "security.scanners[0].image"),
        (#"{"security": {"scanners": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}}"#, "duplicate scanner name"),
    ])
    func rejects(_ json: String, _ mention: String) {
        let error = #expect(throws: ProxyError.self) { try ConfigLoader.parse(data: Data(json.utf8)) }
        #expect(error?.message.contains(mention) == true, "\(error?.message ?? "")")
    }

    @Test("unknown keys in the section are warnings, with the key they probably meant")
    func unknownKeys() throws {
        let c = try ConfigLoader.parse(data: Data(#"{"security": {"scaners": []}}"#.utf8))
        #expect(c.warnings.map(\.path) == ["security.scaners"])
        #expect(c.warnings.first?.message.contains("did you mean \"scanners\"?") == true)
    }
}

@Suite struct ScannerSkipReasonTests {
    // Seed 001: Docker-based scanners run only under docker; elsewhere a mode-specific reason.
    @Test func dockerScannersAreSkippedOutsideDockerMode() {
        let plugin = ScannerPluginConfig(name: "probe", image: "img")
        #expect(ScannerPluginPlanner.skipReason(plugin, mode: .docker) == nil)
        #expect(ScannerPluginPlanner.skipReason(plugin, mode: .sandbox)?.contains("sandbox") == true)
        #expect(ScannerPluginPlanner.skipReason(plugin, mode: .none)?.contains("none") == true)
    }
}
