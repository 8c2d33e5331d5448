import ArgumentParser
import Foundation
import ProxyCore

/// Exit statuses of `mcpproxy` commands come from one table (`ProxyError.Code.row`, shown in
/// docs/commands.md): a command that fails with a `ProxyError` exits with its code's status.
extension ExitCode {
    /// The exit status the table gives `code`.
    init(_ code: ProxyError.Code) { self.init(code.exitStatus) }
    /// A check that ran and found problems (`doctor`, `audit`, `scan`): not an error.
    static let findings = ExitCode(ExitStatus.findings)
}

extension RootCommand {
    /// Parses the command line and runs the command. A `ProxyError` that reaches here is printed
    /// (`Error: ...`, as ArgumentParser prints errors) and exits with its code's status; other
    /// errors (usage, `ExitCode`, help) are ArgumentParser's.
    public static func runMain(_ arguments: [String]? = nil) async {
        do {
            var command = try await asyncParseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let e as ProxyError {
            FileHandle.standardError.write(Data("Error: \(e.description)\n".utf8))
            Foundation.exit(e.code.exitStatus)
        } catch {
            exit(withError: error)
        }
    }
}

extension RunningProxy {
    /// A REST error answer as the `ProxyError` it was: the body's `code` (the table's name),
    /// its message; an answer without one is the proxy failing (`upstreamFailed`).
    static func failure(status: Int, body: JSONValue) -> ProxyError {
        let code = body["error"]?["code"]?.stringValue.flatMap(ProxyError.Code.init(rawValue:)) ?? .upstreamFailed
        return ProxyError(code, message(body))
    }
}
