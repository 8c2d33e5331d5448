import ArgumentParser
import Foundation
import ProxyCore
import MCPSecurity

/// `mcpproxy token create|list|revoke`: agent tokens in the state database. A running proxy
/// notices changes within a second (it watches the database).
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Create, list and revoke agent tokens for /mcp.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an agent token and print it once (stdout); only its hash is stored.",
            discussion: "Give it to an MCP client as the header `Authorization: Bearer <token>`. The token sees and calls only --servers (default: all) and never above --intent (read: readOnlyHint tools only; write: also tools annotated destructiveHint: false; destructive: any tool).")
        @OptionGroup var paths: PathOptions
        @Argument(help: "A name for the token (letters, digits, '-', '_', '.').") var name: String
        @Option(name: .long, help: "Comma-separated server names the token may use (default: every server).") var servers: String?
        @Option(name: .long, help: "Highest intent: read, write or destructive.") var intent: String = "read"
        @Option(name: .long, help: "Lifetime, e.g. 30d, 12h, 2w (default: no expiry).") var expires: String?
        @Flag(name: .customLong("allow-upstream-servers"), help: "May use the upstream_servers tool (additions still wait for a person's approval).")
        var manageServers = false
        @Flag(name: .long, help: "Print JSON (with the token) instead of text.") var json = false

        func run() throws {
            var expiresIn: Double? = nil
            if let e = expires {
                guard let d = TokenExpiry.parse(e) else { throw ValidationError("--expires must be like 30d, 12h, 90m or 2w") }
                expiresIn = d
            }
            let list = servers.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
            let store = try SecurityStore.open(dataDir: paths.resolvedDataDir)
            let (token, record) = try AgentTokenIssuer.create(in: store, name: name, servers: list, intent: intent.lowercased(),
                                                              expiresIn: expiresIn, manageServers: manageServers)
            if json {
                var o = record.listing().objectValue ?? [:]
                o["token"] = .string(token)
                print(JSONValue.object(o).serialized())
                return
            }
            print(token)
            let scope = record.servers.map { "servers \($0.joined(separator: ","))" } ?? "every server"
            let expiry = record.expiresAt.map { "expires \(Date(timeIntervalSince1970: $0))" } ?? "no expiry"
            FileHandle.standardError.write(Data("token \"\(name)\" created: \(scope), intent up to \(record.intent), \(expiry). It is shown only now; clients send it as `Authorization: Bearer <token>`.\n".utf8))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List agent tokens (never their values).")
        @OptionGroup var paths: PathOptions
        @Flag(name: .long, help: "Print JSON.") var json = false
        func run() throws {
            let store = try SecurityStore.open(dataDir: paths.resolvedDataDir)
            let tokens = try store.tokens()
            if json {
                print(JSONValue.object(["tokens": .array(tokens.map { $0.listing() })]).serialized())
                return
            }
            if tokens.isEmpty { print("no tokens (create one with `mcpproxy token create NAME`)"); return }
            for t in tokens {
                let l = t.listing()
                print("\(t.name)\t\(l["state"]?.stringValue ?? "")\tintent=\(t.intent)\tservers=\(t.servers?.joined(separator: ",") ?? "*")"
                      + (t.manageServers ? "\tupstream_servers" : "")
                      + (t.expiresAt.map { "\texpires=\(Date(timeIntervalSince1970: $0))" } ?? ""))
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an agent token (a running proxy refuses it within a second).")
        @OptionGroup var paths: PathOptions
        @Argument var name: String
        func run() throws {
            let store = try SecurityStore.open(dataDir: paths.resolvedDataDir)
            guard try store.revokeToken(named: name) else {
                FileHandle.standardError.write(Data("error: no active token named \"\(name)\"\n".utf8))
                throw ExitCode(.notFound)
            }
            print("revoked \(name)")
        }
    }
}
