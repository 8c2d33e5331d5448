import ArgumentParser
import Foundation
import ProxyCore

/// `mcpproxy upstream ...`: manage servers in the config file (the running proxy applies the
/// change live).
struct UpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "upstream", abstract: "Manage upstream servers in the config file.",
                                                    subcommands: [List.self, Approve.self, Quarantine.self, Enable.self, Disable.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List configured servers.")
        @OptionGroup var paths: PathOptions
        func run() throws {
            let c = try ConfigLoader.load(path: paths.resolvedConfig).config
            for s in c.servers {
                let q = s.quarantined == false ? "approved" : "quarantined"
                print("\(s.name)\t\(s.enabled ? "enabled" : "disabled")\t\(q)\t\(s.command ?? s.url ?? "")")
            }
        }
    }

    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve a server (writes \"quarantined\": false).")
        @OptionGroup var paths: PathOptions
        @Argument var name: String
        func run() throws {
            try ConfigFile.updateServer(path: paths.resolvedConfig, name: name, create: false) { e in
                var e = e ?? [:]; e["quarantined"] = false; return e
            }
            print("approved \(name) in \(paths.resolvedConfig)")
        }
    }

    struct Quarantine: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Quarantine a server (writes \"quarantined\": true).")
        @OptionGroup var paths: PathOptions
        @Argument var name: String
        func run() throws {
            try ConfigFile.updateServer(path: paths.resolvedConfig, name: name, create: false) { e in
                var e = e ?? [:]; e["quarantined"] = true; return e
            }
            print("quarantined \(name) in \(paths.resolvedConfig)")
        }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a server.")
        @OptionGroup var paths: PathOptions
        @Argument var name: String
        func run() throws {
            try ConfigFile.updateServer(path: paths.resolvedConfig, name: name, create: false) { e in
                var e = e ?? [:]; e.removeValue(forKey: "disabled"); e["enabled"] = true; return e
            }
            print("enabled \(name)")
        }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a server.")
        @OptionGroup var paths: PathOptions
        @Argument var name: String
        func run() throws {
            try ConfigFile.updateServer(path: paths.resolvedConfig, name: name, create: false) { e in
                var e = e ?? [:]; e.removeValue(forKey: "disabled"); e["enabled"] = false; return e
            }
            print("disabled \(name)")
        }
    }
}
