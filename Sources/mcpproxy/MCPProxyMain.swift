import Commands
import Logging

/// The executable's entry point; all commands live in the Commands library.
@main
struct MCPProxyMain {
    static func main() async {
        // Any logger not given its own handler writes to stderr: stdout is the MCP channel in
        // `serve --stdio` and the command output elsewhere.
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        await RootCommand.main(nil)
    }
}
