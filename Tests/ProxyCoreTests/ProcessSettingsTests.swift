import Testing
@testable import ProxyCore

/// `ProcessSettings`: the one reading of the environment, typed.
@Suite struct ProcessSettingsTests {
    @Test func defaultsComeFromHome() {
        let s = ProcessSettings(environment: ["HOME": "/home/u"])
        #expect(s.defaultConfigPath == "/home/u/.mcpproxy/mcp_config.json")
        #expect(s.defaultDataDir == "/home/u/.mcpproxy")
        #expect(s.apiKey == nil && s.configPath == nil && s.dataDir == nil)
        #expect(s.path == "/usr/local/bin:/usr/bin:/bin")
    }

    @Test func variablesWinAndEmptyMeansUnset() {
        let s = ProcessSettings(environment: ["HOME": "/h", "MCPPROXY_CONFIG": "/c.json", "MCPPROXY_DATA_DIR": "/d",
                                              "MCPPROXY_API_KEY": "", "PATH": "/bin"])
        #expect(s.defaultConfigPath == "/c.json" && s.defaultDataDir == "/d")
        #expect(s.apiKey == nil)  // an empty key is no key: the data dir's file is used
        #expect(s.path == "/bin")
        #expect(ProcessSettings(environment: ["MCPPROXY_API_KEY": "k"]).apiKey == "k")
    }

    @Test func onlyKeepsTheNamedVariables() {
        let s = ProcessSettings(environment: ["DOCKER_HOST": "unix:///x", "SECRET": "v", "PATH": "/bin"])
        #expect(s.only(["DOCKER_HOST", "CONTAINER_HOST"]) == ["DOCKER_HOST": "unix:///x"])
    }
}
