import ArgumentParser
import Foundation
import MCPSecurity
import ProxyCore

/// `mcpproxy upstream ...`: manage servers in the config file (the running proxy applies the
/// change live).
struct UpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "upstream", abstract: "Manage upstream servers in the config file.",
                                                    subcommands: [List.self, Add.self, Remove.self, Approve.self, Quarantine.self, Release.self, Enable.self, Disable.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List configured servers.")
        @OptionGroup var paths: PathOptions
        @Flag(name: .long, help: "Print JSON.") var json = false
        func run() throws {
            let c = try ConfigLoader.load(path: paths.resolvedConfig).config
            if json {
                // Env values and header values are secrets: only their names are listed.
                let list: [JSONValue] = c.servers.map { s in
                    var o: [String: JSONValue] = ["name": .string(s.name), "enabled": .bool(s.enabled),
                                                  "approval": .string(s.quarantined == false ? "approved" : "quarantined"),
                                                  "protocol": .string(s.effectiveProtocol.rawValue),
                                                  "env": .array(s.env.keys.sorted().map { .string($0) })]
                    if let cmd = s.command { o["command"] = .string(cmd); o["args"] = .array(s.args.map { .string($0) }) }
                    if let u = s.url { o["url"] = .string(URLRedaction.redact(u)) }
                    return .object(o)
                }
                print(JSONValue.object(["servers": .array(list)]).serialized())
                return
            }
            for s in c.servers {
                let q = s.quarantined == false ? "approved" : "quarantined"
                print("\(s.name)\t\(s.enabled ? "enabled" : "disabled")\t\(q)\t\(s.command ?? s.url.map(URLRedaction.redact) ?? "")")
            }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a server to the config (it starts quarantined until you approve it).",
            discussion: """
            A stdio server: `mcpproxy upstream add NAME -- COMMAND [ARGS...]`. An HTTP server:             `mcpproxy upstream add NAME --url URL [--protocol sse]`. The config file keeps its             comments and layout; a running proxy starts the server (quarantined) within a second.
            """)
        @OptionGroup var paths: PathOptions
        @Argument(help: "The server's name.") var name: String
        @Option(name: .long, help: "URL of a streamable-HTTP (or, with --protocol sse, SSE) server.") var url: String?
        @Option(name: .long, help: "http (default for --url) or sse.") var `protocol`: String?
        @Option(name: .long, help: "An environment variable for the server, KEY=VALUE (repeatable).") var env: [String] = []
        @Option(name: .long, help: "Isolation mode for this server: sandbox, docker or none (default: the config's).") var isolation: String?
        @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.") var command: [String] = []

        func validate() throws {
            guard ConfigLoader.isValidServerName(name) else {
                throw ValidationError("invalid server name \"\(name)\": use letters, digits, '-', '_' and '.', at most 64 characters, no \"__\"")
            }
            guard (url == nil) != command.isEmpty else { throw ValidationError("give either a command after -- or --url, not both") }
            if let p = `protocol`, !["http", "sse"].contains(p) { throw ValidationError("--protocol is http or sse") }
            if let i = isolation, !["sandbox", "docker", "none"].contains(i) { throw ValidationError("--isolation is sandbox, docker or none") }
            for e in env where !e.contains("=") || e.hasPrefix("=") { throw ValidationError("--env takes KEY=VALUE, got \"\(e)\"") }
        }

        func run() throws {
            try ConfigFile.updateServer(path: paths.resolvedConfig, name: name, create: true) { _ in
                var e: [String: Any] = [:]
                if let url { e["url"] = url; e["protocol"] = `protocol` ?? "http" } else {
                    e["command"] = command[0]
                    if command.count > 1 { e["args"] = Array(command.dropFirst()) }
                }
                if !env.isEmpty {
                    var m: [String: String] = [:]
                    for kv in env { let i = kv.firstIndex(of: "=")!; m[String(kv[..<i])] = String(kv[kv.index(after: i)...]) }
                    e["env"] = m
                }
                if let isolation { e["isolation"] = ["mode": isolation] }
                return e  // no "quarantined": a new server starts quarantined
            }
            // Values of --env are secrets: never echoed.
            print("added \(name) to \(paths.resolvedConfig); it starts quarantined: review it (`mcpproxy scan \(name)`), then `mcpproxy upstream approve \(name)`")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a server from the config (a running proxy stops it).")
        @OptionGroup var paths: PathOptions
        @Argument var name: String
        func run() async throws {
            try ConfigFile.updateServer(path: paths.resolvedConfig, name: name, create: false) { _ in nil }
            print("removed \(name) from \(paths.resolvedConfig)")
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Approve a server, or one held tool, prompt or resource template.",
            discussion: "With the proxy running, approval goes through its REST API (items with hard scan findings need --force). Otherwise \"quarantined\": false is written to the config, and the proxy pins the server's tools when it next connects.")
        @OptionGroup var paths: PathOptions
        @Argument var name: String
        @Option(name: .long, help: "Approve only this held (pending or changed) tool.") var tool: String?
        @Option(name: .long, help: "Approve only this held prompt (its name as the server lists it, without the server: prefix).") var prompt: String?
        @Option(name: .customLong("resource-template"), help: "Approve only this held resource template (its URI template as the server lists it).") var resourceTemplate: String?
        @Flag(name: .long, help: "Approve despite hard scanner findings.") var force = false

        func validate() throws {
            if [tool, prompt, resourceTemplate].compactMap({ $0 }).count > 1 {
                throw ValidationError("give at most one of --tool, --prompt and --resource-template")
            }
        }

        /// The REST route and what the approval is called.
        var target: (path: String, what: String)? {
            func q(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s }
            if let tool { return ("/api/v1/servers/\(name)/tools/\(tool)/approve", "tool \(tool) of \(name)") }
            if let prompt { return ("/api/v1/servers/\(name)/prompts/approve?name=\(q(prompt))", "prompt \(prompt) of \(name)") }
            if let t = resourceTemplate {
                return ("/api/v1/servers/\(name)/resource-templates/approve?uri_template=\(q(t))", "resource template \(t) of \(name)")
            }
            return nil
        }

        func run() async throws {
            let one = target
            if let proxy = RunningProxy.locate(paths: paths) {
                var path = one?.path ?? "/api/v1/servers/\(name)/unquarantine"
                if force { path += path.contains("?") ? "&force=true" : "?force=true" }
                if let (status, body) = await proxy.call(.POST, path) {
                    guard status == 200 else { print("error: \(RunningProxy.message(body))"); throw ExitCode(RunningProxy.failure(status: status, body: body).code) }
                    print("approved \(one?.what ?? name)")
                    return
                }
            }
            if let one {
                print("error: approving one \(one.what.split(separator: " ").first ?? "item") needs the running proxy (it holds the new definition); start `mcpproxy serve`")
                throw ExitCode(.unavailable)
            }
            try ConfigFile.updateServer(path: paths.resolvedConfig, name: name, create: false) { e in
                var e = e ?? [:]; e["quarantined"] = false; return e
            }
            print("approved \(name) in \(paths.resolvedConfig) (its tools are pinned when the proxy next connects to it)")
        }
    }

    struct Quarantine: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Quarantine a server (writes \"quarantined\": true).")
        @OptionGroup var paths: PathOptions
        @Argument var name: String
        func run() async throws {
            if let proxy = RunningProxy.locate(paths: paths), let (status, body) = await proxy.call(.POST, "/api/v1/servers/\(name)/quarantine") {
                guard status == 200 else { print("error: \(RunningProxy.message(body))"); throw ExitCode(RunningProxy.failure(status: status, body: body).code) }
                print("quarantined \(name)")
                return
            }
            try ConfigFile.updateServer(path: paths.resolvedConfig, name: name, create: false) { e in
                var e = e ?? [:]; e["quarantined"] = true; return e
            }
            print("quarantined \(name) in \(paths.resolvedConfig)")
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Release a server held by the runtime monitor (held_by_monitor); it starts again.",
            discussion: "With the proxy running, the release goes through its REST API and the server starts at once. Otherwise the hold is removed from the state database and the server starts with the proxy.")
        @OptionGroup var paths: PathOptions
        @Argument var name: String
        func run() async throws {
            if let proxy = RunningProxy.locate(paths: paths), let (status, body) = await proxy.call(.POST, "/api/v1/servers/\(name)/release") {
                guard status == 200 else { print("error: \(RunningProxy.message(body))"); throw ExitCode(RunningProxy.failure(status: status, body: body).code) }
                print("released \(name); it is starting")
                return
            }
            let store = try SecurityStore.open(dataDir: paths.resolvedDataDir)
            guard try store.removeMonitorHold(name) else {
                print("error: server \"\(name)\" is not held by the runtime monitor")
                throw ExitCode(.notFound)
            }
            print("released \(name) in \(store.path); it starts with the proxy")
        }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a server.")
        @OptionGroup var paths: PathOptions
        @Argument var name: String
        func run() throws { try UpstreamCommand.setEnabled(true, name: name, config: paths.resolvedConfig) }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a server.")
        @OptionGroup var paths: PathOptions
        @Argument var name: String
        func run() throws { try UpstreamCommand.setEnabled(false, name: name, config: paths.resolvedConfig) }
    }

    /// `enabled` in the server's config entry (the legacy `disabled` key removed).
    static func setEnabled(_ enabled: Bool, name: String, config: String) throws {
        try ConfigFile.updateServer(path: config, name: name, create: false) { e in
            var e = e ?? [:]; e.removeValue(forKey: "disabled"); e["enabled"] = enabled; return e
        }
        print("\(enabled ? "enabled" : "disabled") \(name)")
    }
}
