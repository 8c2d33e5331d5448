import Commands
import Logging
import ProxyCore
#if canImport(Glibc)
import Glibc
#endif

/// The executable's entry point; all commands live in the Commands library.
@main
struct MCPProxyMain {
    static func main() async {
        // Any logger not given its own handler writes to stderr: stdout is the MCP channel in
        // `serve --stdio` and the command output elsewhere.
        // Writes to a closed pipe or socket return EPIPE instead of killing the proxy
        // (`mcpproxy serve 2>&1 | head -1`); children get default signal dispositions back.
        signal(SIGPIPE, SIG_IGN)
        LoggingSystem.bootstrap { ConsoleLogHandler(label: $0) }
        // Lines still queued for stderr get a moment to go out when the process exits.
        atexit(flushConsoleAtExit)
        await RootCommand.runMain()
    }
}

/// Called by `exit()` on whatever thread exits, so isolated to no actor (a closure written inside
/// `main` would be main-actor isolated, and Swift 6 checks that at run time).
nonisolated func flushConsoleAtExit() {
    ConsoleSink.standardError.flush(timeout: 1)
}
