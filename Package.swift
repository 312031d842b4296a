// swift-tools-version:6.1
import PackageDescription

/// One set of settings for every target: Swift 6 language mode (strict
/// concurrency) plus the upcoming features the Hummingbird packages use.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

// Linux only (inotify, sd-journal, libnats as built here): no platforms line.
// Every module a target imports is declared below, products included.
let package = Package(
    name: "logcast",
    products: [
        .executable(name: "logcast", targets: ["logcast"]),
        .library(name: "LogcastProtocol", targets: ["LogcastProtocol"]),
        .library(name: "LogcastHub", targets: ["LogcastHub"]),
        .library(name: "LogcastSources", targets: ["LogcastSources"]),
        .library(name: "LogcastStore", targets: ["LogcastStore"]),
        .library(name: "LogcastCluster", targets: ["LogcastCluster"]),
        .library(name: "LogcastServer", targets: ["LogcastServer"]),
        .library(name: "LogcastService", targets: ["LogcastService"]),
        .library(name: "LogcastClient", targets: ["LogcastClient"]),
    ],
    dependencies: [
        // Without its default traits: ConfigurationSupport (swift-configuration, unused here) and
        // FullFoundation (URL-encoded forms through full Foundation, unused here) stay out of the build.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.6.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        // Metrics: library code records through swift-metrics; the executable
        // bootstraps swift-prometheus behind it, and `/metrics` renders its registry.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // C libraries and shims.
        .systemLibrary(
            name: "CPCRE2",
            pkgConfig: "libpcre2-8",
            providers: [.apt(["libpcre2-dev"])]
        ),
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        .systemLibrary(
            name: "CNATS",
            pkgConfig: "libnats",
            providers: [.apt(["libnats-dev"])]
        ),
        .target(name: "CLinuxShims"),

        // The wire contract: records, levels, protocol objects and their
        // JSON, query strings. No dependencies; the client links only this.
        .target(
            name: "LogcastProtocol",
            swiftSettings: swiftSettings
        ),
        // The broadcast hub and what runs in it: filters (PCRE2), the
        // history, subscriptions and their queues, the source registry.
        .target(
            name: "LogcastHub",
            dependencies: [
                "LogcastProtocol",
                "CPCRE2",
                "CLinuxShims",
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // What feeds the hub: files followed like tail -F, the journal
        // through sd-journal, the demo writer.
        .target(
            name: "LogcastSources",
            dependencies: [
                "LogcastProtocol",
                "LogcastHub",
                "CLinuxShims",
                "CSystemd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // What outlives the process: the state directory, and the durable
        // history (a segment log of lines and source positions).
        .target(
            name: "LogcastStore",
            dependencies: [
                "LogcastProtocol",
                "LogcastHub",
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // Beyond one host: agents publish their lines into a NATS JetStream
        // stream, gateways consume it into a hub (cnats).
        .target(
            name: "LogcastCluster",
            dependencies: [
                "LogcastProtocol",
                "LogcastHub",
                "CNATS",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // HTTP, WebSocket and SSE in front of the hub (Hummingbird).
        .target(
            name: "LogcastServer",
            dependencies: [
                "LogcastProtocol",
                "LogcastHub",
                "CLinuxShims",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSCompression", package: "hummingbird-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // `logcast serve` as a library: the settings table (flags, config
        // file, environment), sources and server wired into one service
        // group, systemd notification, SIGHUP.
        .target(
            name: "LogcastService",
            dependencies: [
                "LogcastProtocol",
                "LogcastHub",
                "LogcastSources",
                "LogcastStore",
                "LogcastServer",
                "LogcastCluster",
                "CSystemd",
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // `logcast tail`: a WebSocket subscriber. Knows the protocol only.
        .target(
            name: "LogcastClient",
            dependencies: [
                "LogcastProtocol",
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "WSCompression", package: "swift-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The executable: parses arguments and calls the libraries.
        .executableTarget(
            name: "logcast",
            dependencies: [
                "LogcastProtocol",
                "LogcastServer",
                "LogcastService",
                "LogcastClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),

        .testTarget(
            name: "LogcastProtocolTests",
            dependencies: ["LogcastProtocol"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LogcastHubTests",
            dependencies: ["LogcastProtocol", "LogcastHub", "CLinuxShims"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LogcastSourcesTests",
            dependencies: ["LogcastProtocol", "LogcastHub", "LogcastSources"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LogcastStoreTests",
            dependencies: ["LogcastProtocol", "LogcastHub", "LogcastStore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LogcastClusterTests",
            dependencies: ["LogcastProtocol", "LogcastHub", "LogcastCluster"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LogcastServerTests",
            dependencies: [
                "LogcastProtocol",
                "LogcastHub",
                "LogcastServer",
                "CLinuxShims",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSTesting", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LogcastServiceTests",
            dependencies: ["LogcastService", "LogcastHub", "LogcastServer"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LogcastClientTests",
            dependencies: ["LogcastClient"],
            swiftSettings: swiftSettings
        ),
    ]
)
