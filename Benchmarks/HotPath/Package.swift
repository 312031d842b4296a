// swift-tools-version:6.1
import PackageDescription

// The hot path's micro-benchmarks: a package of its own, so that
// ordo-one/benchmark (and its malloc interposer) stays out of logcast's
// build. `Benchmarks/hotpath` builds and runs it; Benchmarks/README.md says
// what it measures.
let package = Package(
    name: "logcast-hotpath",
    // The benchmark package declares macOS 13; logcast itself is Linux only.
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "logcast", path: "../.."),
        // Without the RuntimeInterposer trait (ARC counts on Swift 6.3):
        // its package is not in the mirror, and a trait left off is not resolved.
        .package(url: "https://github.com/ordo-one/package-benchmark.git", exact: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // The workloads, shared by the benchmark (time, allocations) and by
        // hotpath-count (instructions, counted under callgrind).
        .target(
            name: "HotPathWorkloads",
            dependencies: [
                .product(name: "LogcastProtocol", package: "logcast"),
                .product(name: "LogcastHub", package: "logcast"),
                .product(name: "LogcastSources", package: "logcast"),
                .product(name: "LogcastServer", package: "logcast"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "HotPath",
            dependencies: [
                "HotPathWorkloads",
                .product(name: "Benchmark", package: "package-benchmark"),
            ],
            path: "Benchmarks/HotPath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        .executableTarget(
            name: "hotpath-count",
            dependencies: ["HotPathWorkloads"]
        ),
    ]
)
