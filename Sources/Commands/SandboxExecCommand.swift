import ArgumentParser
import CSandbox
import Foundation

/// `mcpproxy sandbox-exec POLICY... -- COMMAND ARGS`: the sandbox launcher, also available as
/// the small `mcpproxy-sandbox` executable (faster to start; preferred when installed).
struct SandboxExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sandbox-exec", abstract: "Internal: confine this process, then exec a server.",
                                                    shouldDisplay: false)
    @Argument(parsing: .captureForPassthrough) var arguments: [String] = []

    func run() throws {
        let argv = ["mcpproxy-sandbox"] + arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        cargs.append(nil)
        let rc = mcpx_sandbox_main(Int32(argv.count), &cargs)
        throw ExitCode(rc)
    }
}
