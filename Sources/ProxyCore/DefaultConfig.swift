/// The commented config written on first run.
public enum DefaultConfig {
    /// Every server a user adds runs confined unless they say otherwise: the native sandbox
    /// where it exists (Linux, no daemon needed), docker elsewhere.
    #if os(Linux)
    static let mode = "sandbox"
    #else
    static let mode = "docker"
    #endif

    public static let text = """
    // mcpproxy configuration. Comments (// and /* */) are allowed.
    // Reference: docs/configuration.md. Edits apply live (within a second).
    {
      // Where the MCP endpoint (/mcp) and the REST API (/api/v1) listen. Clients need a
      // credential: give each agent a token (mcpproxy token create NAME) and send it as
      // "Authorization: Bearer TOKEN". A non-loopback address also needs tls_cert/tls_key.
      "listen": "127.0.0.1:8080",

      // "retrieve_tools": clients see retrieve_tools/call_tool and search the catalog.
      // "direct": every upstream tool is also listed as server__tool.
      "routing_mode": "retrieve_tools",

      // Isolation of stdio servers: "mode" is docker, sandbox or none (the key name is historical).
      // A server can override it with its own "isolation": {"mode": ...}.
      "docker_isolation": {
        "mode": "\(mode)",
        "memory_limit": "512m",
        "cpu_limit": "1.0",
        "timeout": "30s",
        "network_mode": "bridge"
      },

      // Upstream servers. New servers start quarantined until approved
      // (mcpproxy upstream approve NAME, or POST /api/v1/servers/NAME/unquarantine).
      "mcpServers": [
        // { "name": "time", "command": "uvx", "args": ["mcp-server-time"] },
        // { "name": "remote", "url": "http://127.0.0.1:9000/mcp", "protocol": "http" }
      ]
    }

    """
}
