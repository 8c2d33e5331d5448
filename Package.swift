// swift-tools-version:6.2
import PackageDescription

// Targets follow the one-way dependency chain in docs/architecture.md:
// ProxyCore <- Isolation / Upstream <- Security / Gateway <- Commands <- mcpproxy.
let package = Package(
    name: "mcpproxy",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "mcpproxy", targets: ["mcpproxy"]),
        .executable(name: "mcpproxy-sandbox", targets: ["mcpproxy-sandbox"]),
        .executable(name: "mcpproxy-fixture", targets: ["mcpproxy-fixture"]),
        .executable(name: "mcpproxy-probe", targets: ["mcpproxy-probe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        // 4.x: jwt-kit 5 needs it.
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Traces (off unless configured). OTLP/HTTP only: the gRPC exporter's dependencies would
        // add minutes to every clean build for nothing we use.
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // C: process spawning (own process group, parent-death signal from a dedicated thread).
        .target(name: "CShim"),
        // C: the sandbox launcher (Landlock, rlimits, seccomp, namespaces), linked into both
        // the small `mcpproxy-sandbox` executable and `mcpproxy sandbox-exec`.
        .target(name: "CSandbox"),
        // The C executables load no Swift runtime (see main.c): faster spawn, nothing extra to grant.
        // The launcher is linked statically: no dynamic loader runs in it, so no loader variable
        // (LD_PRELOAD, LD_LIBRARY_PATH, ...) can reach the still-privileged launcher at all.
        .executableTarget(name: "mcpproxy-sandbox", dependencies: ["CSandbox"],
                          linkerSettings: [.unsafeFlags(["-static-executable"])]),

        .target(name: "ProxyCore", dependencies: [
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Isolation", dependencies: [
            "ProxyCore", "CSandbox",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Upstream", dependencies: [
            "ProxyCore", "Isolation", "CShim",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Tracing", package: "swift-distributed-tracing"),
        ]),
        // Named MCPSecurity, not Security: swift-certificates tests `canImport(Security)` (Apple's
        // framework) and would import a module of that name on Linux.
        .target(name: "MCPSecurity", dependencies: [
            "ProxyCore", "Isolation",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        .target(name: "Gateway", dependencies: [
            "ProxyCore", "Isolation", "Upstream", "MCPSecurity", "CShim",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Tracing", package: "swift-distributed-tracing"),
            .product(name: "OTel", package: "swift-otel"),
        ]),
        .target(name: "Commands", dependencies: [
            "ProxyCore", "Isolation", "Upstream", "MCPSecurity", "Gateway", "CSandbox",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(name: "mcpproxy", dependencies: [
            "Commands", "ProxyCore", .product(name: "Logging", package: "swift-log"),
        ]),
        // A fixture MCP server (Foundation only, so it also builds as a static binary for images).
        // The test fixture server: one thread reading stdin in a loop over top-level globals, Swift 5
        // mode (it is never concurrent; Swift 6 would need every global wrapped for nothing).
        .executableTarget(name: "mcpproxy-fixture", swiftSettings: [.swiftLanguageMode(.v5)]),
        // The credential-check benchmark (docs/benchmarks.md, "Authentication"); not a test.
        .executableTarget(name: "mcpproxy-bench-auth", dependencies: [
            "Gateway", "MCPSecurity", "ProxyCore",
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The sandbox escape-battery probe: an MCP stdio server whose tools try to break out.
        .executableTarget(name: "mcpproxy-probe",
                          linkerSettings: [.unsafeFlags(["-static-stdlib", "-Xlinker", "--as-needed"])]),

        .testTarget(name: "ProxyCoreTests", dependencies: ["ProxyCore"]),
        .testTarget(name: "IsolationTests", dependencies: ["Isolation", "ProxyCore"]),
        .testTarget(name: "SecurityTests", dependencies: ["MCPSecurity", "ProxyCore", "Isolation"],
                    resources: [.copy("Corpus"), .copy("HeldOut")]),
        .testTarget(name: "GatewayTests", dependencies: [
            "Gateway", "ProxyCore", "Upstream", "MCPSecurity",
            .product(name: "JWTKit", package: "jwt-kit"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], resources: [.copy("Relevance")]),
        .testTarget(name: "UpstreamTests", dependencies: [
            "Upstream", "ProxyCore",
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
