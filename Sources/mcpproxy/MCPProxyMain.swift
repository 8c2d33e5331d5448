import Commands

/// The executable's entry point; all commands live in the Commands library.
@main
struct MCPProxyMain {
    static func main() async {
        await RootCommand.main(nil)
    }
}
