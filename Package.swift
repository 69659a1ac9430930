// swift-tools-version:5.10
import PackageDescription

// Hot loops are written with unsafe buffers; release builds drop the remaining
// bounds checks there.
let fastMath: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

let package = Package(
    name: "DiTPipeline",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dit-worker", targets: ["Worker"]),
        .executable(name: "dit-coordinator", targets: ["Coordinator"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        // Tests only: the deploy recipes' YAML (Kubernetes, compose) must parse.
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        // One logging path (swift-log) and loop counters (swift-metrics) in the library; the
        // coordinator's HTTP status server (Hummingbird) and Prometheus exposition live in
        // PipelineMonitoring only, so the core library does not pull in SwiftNIO.
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        // NIOCore only for the bound address of the status server's channel.
        .package(url: "https://github.com/apple/swift-nio", from: "2.65.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        .systemLibrary(name: "CZMQ", path: "Sources/CZMQ", pkgConfig: "libzmq"),
        .systemLibrary(name: "CZLibSystem", path: "Sources/CZLibSystem"),
        // SHA-256 of every shard output, verified by the coordinator inside its loop: libcrypto's
        // (SHA extensions, GB/s) keeps a 33 MB partial well inside a heartbeat interval.
        .systemLibrary(name: "COpenSSLCrypto", path: "Sources/COpenSSLCrypto", pkgConfig: "libcrypto"),
        // PNG/JPEG through libpng and libjpeg-turbo; C hosts their longjmp error handling.
        .target(
            name: "CImageCodecs",
            path: "Sources/CImageCodecs",
            linkerSettings: [.linkedLibrary("png"), .linkedLibrary("jpeg")]
        ),
        .target(
            name: "Pipeline",
            dependencies: [
                "COpenBLAS", "CZMQ", "CImageCodecs", "CZLibSystem", "COpenSSLCrypto",
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            path: "Sources/Pipeline",
            exclude: ["Monitoring"],
            swiftSettings: fastMath
        ),
        // Watching the coordinator: read-only HTTP status page and JSON API (Hummingbird),
        // Prometheus /metrics (swift-prometheus). Reads the ledger through its own connection.
        .target(
            name: "PipelineMonitoring",
            dependencies: [
                "Pipeline",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Sources/Pipeline/Monitoring"
        ),
        // Flag groups both executables take (single-process command and distributed job alike).
        .target(
            name: "CLIOptions",
            dependencies: ["Pipeline", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")],
            path: "Sources/CLIOptions"
        ),
        .executableTarget(
            name: "Worker",
            dependencies: ["Pipeline", "CLIOptions", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")],
            path: "Sources/Worker",
            swiftSettings: fastMath
        ),
        .executableTarget(
            name: "Coordinator",
            dependencies: ["Pipeline", "PipelineMonitoring", "CLIOptions",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")],
            path: "Sources/Coordinator",
            swiftSettings: fastMath
        ),
        .testTarget(
            name: "PipelineTests",
            dependencies: ["Pipeline", "PipelineMonitoring", "CLIOptions", .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "Yams", package: "Yams")],
            path: "Tests/PipelineTests",
            exclude: ["Resources"]
        ),
    ]
)
