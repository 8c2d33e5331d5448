import ArgumentParser
import Foundation
import Gateway
import MCPSecurity
import ProxyCore

/// `mcpproxy workspace create|list|delete|add-member` (docs/workspaces.md). Definitions live in
/// the config file; a running proxy reloads them within a second. `delete` goes through a
/// running proxy's REST API when one answers (so its instances stop first), else cleans up here.
struct WorkspaceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workspace", abstract: "Create, list, delete workspaces and add members to them.",
        discussion: "A workspace is a tenant: its members (agent tokens, JWT subjects) use its servers, and servers with \"instance\": \"workspace\" run one instance per workspace, with its own volume or home directory and network.",
        subcommands: [Create.self, List.self, Delete.self, AddMember.self])

    static func split(_ s: String?) -> [String]? {
        s.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
    }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a workspace to the config file.")
        @OptionGroup var paths: PathOptions
        @Argument(help: "Its name (lower-case letters, digits, '-', '_').") var name: String
        @Option(name: .long, help: "Comma-separated servers its members may use (default: no limit from the workspace).") var servers: String?
        @Option(name: .long, help: "Highest intent of its members: read, write or destructive (default: no limit).") var intent: String?
        @Option(name: .long, help: "A member: an agent token name (or token:NAME) or jwt:SUBJECT; repeatable.") var member: [String] = []
        func run() throws {
            try WorkspaceAdmin.create(configPath: paths.resolvedConfig,
                                      WorkspaceConfig(name: name, members: member.map(WorkspaceConfig.canonicalMember),
                                                      servers: WorkspaceCommand.split(servers), intent: intent))
            print("created workspace \(name)")
        }
    }

    struct AddMember: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add-member", abstract: "Add a member (agent token name, token:NAME or jwt:SUBJECT).")
        @OptionGroup var paths: PathOptions
        @Argument var workspace: String
        @Argument var member: String
        func run() throws {
            try WorkspaceAdmin.addMember(configPath: paths.resolvedConfig, workspace: workspace, member: member)
            print("added \(WorkspaceConfig.canonicalMember(member)) to workspace \(workspace)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List workspaces.")
        @OptionGroup var paths: PathOptions
        @Flag(name: .long, help: "Print JSON.") var json = false
        func run() throws {
            let config = try ConfigLoader.load(path: paths.resolvedConfig).config
            if json {
                print(JSONValue.object(["workspaces": .array(config.workspaces.map { WorkspaceAdmin.json($0) })]).serialized())
                return
            }
            if config.workspaces.isEmpty { print("no workspaces (create one with `mcpproxy workspace create NAME`)"); return }
            for w in config.workspaces {
                print("\(w.name)\tmembers=\(w.members.joined(separator: ","))\tservers=\(w.servers?.joined(separator: ",") ?? "*")\tintent=\(w.intent ?? "*")")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a workspace and everything it owns: instances, containers, volumes, networks, sandbox homes, secrets.")
        @OptionGroup var paths: PathOptions
        @Argument var name: String
        func run() async throws {
            var removed: [String]? = nil
            if let proxy = RunningProxy.locate(paths: paths), let (status, body) = await proxy.call(.DELETE, "/api/v1/workspaces/\(name)") {
                guard status == 200 else {
                    FileHandle.standardError.write(Data("error: \(RunningProxy.message(body))\n".utf8))
                    throw ExitCode(status == 404 ? .notFound : .internalError)
                }
                removed = body["removed"]?.arrayValue?.compactMap(\.stringValue) ?? []
            }
            if removed == nil {
                let store = try? SecurityStore.open(dataDir: paths.resolvedDataDir)
                removed = try await WorkspaceAdmin.delete(configPath: paths.resolvedConfig, dataDir: paths.resolvedDataDir,
                                                          workspace: name, store: store)
            }
            print("deleted workspace \(name)")
            for r in removed ?? [] { print("  removed \(r)") }
        }
    }
}
