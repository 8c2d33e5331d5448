import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import MCPSecurity
import ProxyCore

/// `mcpproxy secret set|list|rm|rotate-key`: secrets encrypted at rest in the state database
/// (docs/security.md, "Secrets"). Like the token commands they write the database directly,
/// whether or not a proxy runs; a running proxy restarts the servers that use a changed secret
/// within a second.
struct SecretCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret", abstract: "Set, list and remove secrets (encrypted at rest), and rotate their master key.",
        discussion: "Reference a secret as \"${secret:NAME}\" in a server's env, headers or url. Values are read from stdin (or a no-echo prompt on a terminal), never from the command line.",
        subcommands: [SetValue.self, List.self, Remove.self, RotateKey.self])

    struct SetValue: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Store a secret; the value comes from stdin (one trailing newline dropped) or a no-echo prompt.",
            discussion: "Example: printf %s \"$TOKEN\" | mcpproxy secret set gh")
        @OptionGroup var paths: PathOptions
        @Option(name: .long, help: "The workspace the secret belongs to (default: global).") var workspace: String?
        @Argument(help: "The secret's name (letters, digits, '-', '_', '.').") var name: String

        func run() throws {
            guard SecretReference.isValidName(name) else {
                throw ValidationError("invalid secret name \"\(name)\": use letters, digits, '-', '_' and '.', at most 64 characters")
            }
            let value = try SecretInput.read(prompt: "value of secret \(name): ")
            let store = try SecretStore(store: SecurityStore.open(dataDir: paths.resolvedDataDir), dataDir: paths.resolvedDataDir)
            let scope = workspace ?? SecretStore.globalScope
            let replaced = try store.set(name: name, scope: scope, value: value)
            let use = scope == SecretStore.globalScope ? "reference it as \"${secret:\(name)}\""
                : "workspace-scoped: references resolve global secrets until workspaces exist"
            FileHandle.standardError.write(Data("secret \"\(name)\" \(replaced ? "replaced" : "stored") (\(scope)); \(use)\n".utf8))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List secrets: names, workspace, times (never values).")
        @OptionGroup var paths: PathOptions
        @Flag(name: .long, help: "Print JSON.") var json = false
        func run() throws {
            let store = try SecretStore(store: SecurityStore.open(dataDir: paths.resolvedDataDir), dataDir: paths.resolvedDataDir)
            let list = try store.list()
            if json {
                print(JSONValue.object(["secrets": .array(list.map(\.listing))]).serialized())
                return
            }
            if list.isEmpty { print("no secrets (store one with `mcpproxy secret set NAME`, value on stdin)"); return }
            let f = ISO8601DateFormatter()
            for s in list {
                print("\(s.name)\t\(s.scope)\tcreated=\(f.string(from: Date(timeIntervalSince1970: s.createdAt)))\tupdated=\(f.string(from: Date(timeIntervalSince1970: s.updatedAt)))")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a secret.")
        @OptionGroup var paths: PathOptions
        @Option(name: .long, help: "The workspace the secret belongs to (default: global).") var workspace: String?
        @Argument var name: String
        func run() throws {
            let store = try SecretStore(store: SecurityStore.open(dataDir: paths.resolvedDataDir), dataDir: paths.resolvedDataDir)
            let scope = workspace ?? SecretStore.globalScope
            guard try store.remove(name: name, scope: scope) else {
                FileHandle.standardError.write(Data("error: no secret named \"\(name)\" (\(scope))\n".utf8))
                throw ExitCode(1)
            }
            print("removed \(name)")
        }
    }

    struct RotateKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-key",
            abstract: "Re-encrypt every secret under a new master key (one transaction) and replace the key file.",
            discussion: "With MCPPROXY_MASTER_KEY set, the new key is taken from MCPPROXY_NEW_MASTER_KEY and no file is written; use it as MCPPROXY_MASTER_KEY afterwards.")
        @OptionGroup var paths: PathOptions
        func run() throws {
            let store = try SecretStore(store: SecurityStore.open(dataDir: paths.resolvedDataDir), dataDir: paths.resolvedDataDir)
            let (id, count) = try store.rotateKey()
            print("re-encrypted \(count) secret\(count == 1 ? "" : "s") under the new master key (key id \(id))")
        }
    }
}

/// Reads a secret's value: from a no-echo prompt when stdin is a terminal, else all of stdin
/// (one trailing newline dropped, so `echo value |` works).
enum SecretInput {
    static func read(prompt: String) throws -> String {
        if isatty(0) == 1 {
            FileHandle.standardError.write(Data(prompt.utf8))
            var old = termios()
            let echoOff = tcgetattr(0, &old) == 0
            if echoOff {
                var quiet = old
                quiet.c_lflag &= ~tcflag_t(ECHO)
                tcsetattr(0, TCSAFLUSH, &quiet)
            }
            defer {
                if echoOff { tcsetattr(0, TCSAFLUSH, &old) }
                FileHandle.standardError.write(Data("\n".utf8))
            }
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw ValidationError("no value entered")
            }
            return line
        }
        let data = FileHandle.standardInput.readDataToEndOfFile()
        var text = String(decoding: data, as: UTF8.self)
        // "\r\n" is one Character in Swift: removeLast() drops either ending whole.
        if text.hasSuffix("\r\n") || text.hasSuffix("\n") { text.removeLast() }
        guard !text.isEmpty else { throw ValidationError("no value on stdin (pipe it in: printf %s \"$VALUE\" | mcpproxy secret set NAME)") }
        return text
    }
}
