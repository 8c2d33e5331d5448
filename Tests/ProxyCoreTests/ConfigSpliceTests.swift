import Foundation
import ProxyCore
import Testing

/// Edits of the config file keep the user's comments and formatting (issue: `upstream approve`
/// used to drop every comment, the default template's too).
@Suite("Config edits in place")
struct ConfigSpliceTests {
    static let listForm = """
    // my config
    {
      "listen": "127.0.0.1:8080", // keep this
      "mcpServers": [
        // the time server
        { "name": "time", "command": "uvx", "args": ["mcp-server-time"] },
        {
          "name": "git",   // git tools
          "command": "uvx",
          "quarantined": true
        }
      ]
    }

    """
    static let objectForm = """
    {
      /* servers */
      "mcpServers": {
        "time": { "command": "uvx" }, // time
        "git": {
          "command": "uvx",
          "quarantined": true // approve me
        }
      }
    }
    """

    func edit(_ text: String, _ name: String, create: Bool = false, _ f: @escaping ([String: Any]?) -> [String: Any]?) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("splice-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/c.json"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        try ConfigFile.updateServer(path: path, name: name, create: create, edit: f)
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    func servers(_ text: String) throws -> [String: ServerConfig] {
        let l = try ConfigLoader.parse(data: Data(text.utf8))
        return Dictionary(uniqueKeysWithValues: l.config.servers.map { ($0.name, $0) })
    }

    @Test(arguments: [listForm, objectForm])
    func approveKeepsComments(text: String) throws {
        let out = try edit(text, "git") { e in var e = e!; e["quarantined"] = false; return e }
        for comment in text.components(separatedBy: "\n").compactMap({ l -> String? in
            if let r = l.range(of: "//") { return String(l[r.lowerBound...]) }
            if let r = l.range(of: "/*") { return String(l[r.lowerBound...]) }
            return nil
        }) {
            #expect(out.contains(comment), "lost \(comment)")
        }
        #expect(try servers(out)["git"]?.quarantined == false)
        #expect(try servers(out)["time"]?.command == "uvx")
        // Only the value changed.
        #expect(out.replacingOccurrences(of: "false", with: "true") == text)
    }

    @Test(arguments: [listForm, objectForm])
    func addedKeyKeepsComments(text: String) throws {
        let out = try edit(text, "time") { e in var e = e!; e["enabled"] = false; return e }
        #expect(out.contains("// time") || out.contains("// the time server"))
        #expect(try servers(out)["time"]?.enabled == false)
        #expect(try servers(out)["git"]?.quarantined == true)
    }

    @Test(arguments: [listForm, objectForm])
    func removeKeepsTheRest(text: String) throws {
        let out = try edit(text, "git") { _ in nil }
        #expect(try servers(out).keys.sorted() == ["time"])
        #expect(out.contains("time"))
        #expect(!out.contains("\"git\""))
        let out2 = try edit(text, "time") { _ in nil }
        #expect(try servers(out2).keys.sorted() == ["git"])
    }

    @Test(arguments: [listForm, objectForm, #"{"mcpServers": []}"#, #"{"mcpServers": {}}"#,
                      "{\n  // none yet\n  \"mcpServers\": [\n    // { \"name\": \"x\" }\n  ]\n}\n"])
    func createAppends(text: String) throws {
        let out = try edit(text, "new", create: true) { _ in ["command": "/bin/echo", "args": ["a b"], "quarantined": true] }
        let s = try servers(out)
        #expect(s["new"]?.command == "/bin/echo")
        #expect(s["new"]?.args == ["a b"])
        #expect(s.count == (try servers(text)).count + 1)
        if text.contains("// none yet") { #expect(out.contains("// none yet") && out.contains("// { \"name\": \"x\" }")) }
    }

    /// An entry appended after one with a trailing comment leaves that comment on its own entry;
    /// a removed entry that had its line to itself leaves no blank line.
    @Test func appendAndRemoveKeepLinesTidy() throws {
        let text = "{\n  \"mcpServers\": [\n    {\"name\": \"a\", \"command\": \"echo\"} // first\n  ]\n}\n"
        let added = try edit(text, "b", create: true) { _ in ["command": "x"] }
        #expect(added.contains("{\"name\": \"a\", \"command\": \"echo\"}, // first\n"))
        #expect(try servers(added).keys.sorted() == ["a", "b"])
        let removed = try edit(added, "a") { _ in nil }
        #expect(!removed.contains("// first") && !removed.contains("\n\n"), "\(removed)")
        #expect(try servers(removed).keys.sorted() == ["b"])
        let obj = "{\"mcpServers\": {\n  \"a\": {\"command\": \"echo\"}, // one\n  \"b\": {\"command\": \"x\"}\n}}\n"
        let objRemoved = try edit(obj, "a") { _ in nil }
        #expect(objRemoved == "{\"mcpServers\": {\n  \"b\": {\"command\": \"x\"}\n}}\n", "\(objRemoved)")
    }

    @Test func removingAKeyFallsBackToAValidRewrite() throws {
        let out = try edit(Self.listForm, "git") { e in var e = e!; e.removeValue(forKey: "quarantined"); return e }
        #expect(try servers(out)["git"]?.quarantined == nil)
        #expect(out.contains("// the time server"))  // the entry alone was rewritten
    }

    @Test func defaultTemplateSurvivesAnAddition() throws {
        let out = try edit(DefaultConfig.text, "time", create: true) { _ in ["command": "uvx", "args": ["mcp-server-time"]] }
        #expect(out.contains("// Isolation of stdio servers"))
        #expect(out.contains("// { \"name\": \"remote\""))
        #expect(try servers(out)["time"]?.args == ["mcp-server-time"])
    }
}
