// swift-tools-version:6.0
import PackageDescription

// Kernels' hot loops are written with unsafe buffers; their release builds drop the remaining
// overflow and bounds checks. Nothing else is built -Ounchecked: the parsers (pickle, zip,
// safetensors, NumPy, network frames) keep Swift's overflow traps.
// The library targets build in the Swift 6 language mode (complete concurrency checking);
// the exceptions keep `swift5Settings`, each with its reason where it is used.
let kernelSettings: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release)), .swiftLanguageMode(.v6)]
let librarySettings: [SwiftSetting] = [.swiftLanguageMode(.v6)]
let swift5Settings: [SwiftSetting] = [.swiftLanguageMode(.v5)]
let allLayers: [Target.Dependency] = [
    "PipelineTensor", "PipelineFiles", "PipelineWeights", "PipelineImaging", "PipelineDiT", "PipelineVAE",
    "PipelineInception", "PipelineDiffusion", "PipelineMetrics", "PipelineTraining", "PipelineMessaging",
    "PipelineJobs",
]

let package = Package(
    name: "DiTPipeline",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dit-worker", targets: ["Worker"]),
        .executable(name: "dit-coordinator", targets: ["Coordinator"]),
        .library(name: "Pipeline", targets: [
            "PipelineTensor", "PipelineFiles", "PipelineWeights", "PipelineImaging", "PipelineDiT", "PipelineVAE",
            "PipelineInception", "PipelineDiffusion", "PipelineMetrics", "PipelineTraining", "PipelineMessaging",
            "PipelineJobs",
        ]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // No ZIPFoundation: the one zip reader/writer (Files/ZipDirectory.swift, ZipReader.swift,
        // ZipWriter.swift) works over zlib, serves .pt members in place from a mapping and
        // streams .npz with zip64 (see ZipDirectory).
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        // Tests only: the deploy recipes' YAML (Kubernetes, compose) must parse.
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        // One logging path (swift-log) and loop counters (swift-metrics) in the library; the
        // coordinator's HTTP status server (Hummingbird) and Prometheus exposition live in
        // PipelineMonitoring only, so the layers below do not pull in SwiftNIO.
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
        // The stack, in layers under Sources/Pipeline (one target per sub-folder). Each target
        // imports only targets listed before it; see "Architecture" in the README.
        // Kernels: tensors, BLAS, Winograd. The only target built with -Ounchecked.
        .target(name: "PipelineTensor", dependencies: ["COpenBLAS"], path: "Sources/Pipeline/Tensor",
                swiftSettings: kernelSettings),
        // File formats and I/O: atomic files, mappings, SHA-256, zip, NumPy, safetensors.
        .target(name: "PipelineFiles",
                dependencies: ["PipelineTensor", "CZLibSystem", "COpenSSLCrypto"],
                path: "Sources/Pipeline/Files", swiftSettings: librarySettings),
        .target(name: "PipelineWeights", dependencies: ["PipelineTensor", "PipelineFiles"],
                path: "Sources/Pipeline/Weights", swiftSettings: librarySettings),
        .target(name: "PipelineImaging", dependencies: ["PipelineTensor", "PipelineFiles", "CImageCodecs"],
                path: "Sources/Pipeline/Imaging", swiftSettings: librarySettings),
        // Models.
        .target(name: "PipelineDiT", dependencies: ["PipelineTensor", "PipelineFiles", "PipelineWeights"],
                path: "Sources/Pipeline/DiT", swiftSettings: librarySettings),
        .target(name: "PipelineVAE", dependencies: ["PipelineTensor", "PipelineFiles", "PipelineWeights"],
                path: "Sources/Pipeline/VAE", swiftSettings: librarySettings),
        .target(name: "PipelineInception",
                dependencies: ["PipelineTensor", "PipelineFiles", "PipelineWeights", "PipelineImaging"],
                path: "Sources/Pipeline/Inception", swiftSettings: librarySettings),
        .target(name: "PipelineDiffusion",
                dependencies: ["PipelineTensor", "PipelineFiles", "PipelineWeights", "PipelineDiT"],
                path: "Sources/Pipeline/Diffusion", swiftSettings: librarySettings),
        .target(name: "PipelineMetrics",
                dependencies: ["PipelineTensor", "PipelineFiles", "PipelineImaging", "PipelineInception"],
                path: "Sources/Pipeline/Metrics", swiftSettings: librarySettings),
        .target(name: "PipelineTraining",
                dependencies: ["PipelineTensor", "PipelineFiles", "PipelineWeights", "PipelineImaging",
                               "PipelineDiT", "PipelineDiffusion"],
                path: "Sources/Pipeline/Training", swiftSettings: librarySettings),
        // Messaging: ZeroMQ sockets, CURVE, the DITP wire protocol.
        .target(name: "PipelineMessaging",
                dependencies: ["PipelineFiles", "CZMQ", .product(name: "Logging", package: "swift-log"),
                               .product(name: "Metrics", package: "swift-metrics")],
                path: "Sources/Pipeline/Messaging", swiftSettings: librarySettings),
        // Jobs: the ledger, the coordinator state machine, the job kinds and their executors.
        .target(name: "PipelineJobs",
                dependencies: ["PipelineTensor", "PipelineFiles", "PipelineWeights", "PipelineImaging",
                               "PipelineDiT", "PipelineVAE", "PipelineInception", "PipelineDiffusion",
                               "PipelineMetrics", "PipelineTraining", "PipelineMessaging",
                               .product(name: "GRDB", package: "GRDB.swift"),
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "Metrics", package: "swift-metrics")],
                path: "Sources/Pipeline/Jobs", swiftSettings: librarySettings),
        // Watching the coordinator: read-only HTTP status page and JSON API (Hummingbird),
        // Prometheus /metrics (swift-prometheus). Reads the ledger through its own connection.
        .target(name: "PipelineMonitoring",
                dependencies: ["PipelineImaging", "PipelineMessaging", "PipelineJobs",
                               .product(name: "GRDB", package: "GRDB.swift"),
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "Metrics", package: "swift-metrics"),
                               .product(name: "Prometheus", package: "swift-prometheus"),
                               .product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "NIOCore", package: "swift-nio")],
                path: "Sources/Pipeline/Monitoring", swiftSettings: librarySettings),
        // Flag groups both executables take (single-process command and distributed job alike).
        .target(
            name: "CLIOptions",
            dependencies: allLayers + [.product(name: "ArgumentParser", package: "swift-argument-parser"),
                                       .product(name: "Logging", package: "swift-log")],
            path: "Sources/CLIOptions",
            swiftSettings: swift5Settings  // executables and tests: outside the library's Swift 6 scope
        ),
        .executableTarget(
            name: "Worker",
            dependencies: allLayers + ["CLIOptions", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                       .product(name: "Logging", package: "swift-log")],
            path: "Sources/Worker",
            swiftSettings: swift5Settings
        ),
        .executableTarget(
            name: "Coordinator",
            dependencies: allLayers + ["PipelineMonitoring", "CLIOptions",
                                       .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                       .product(name: "Logging", package: "swift-log")],
            path: "Sources/Coordinator",
            swiftSettings: swift5Settings
        ),
        .testTarget(
            name: "PipelineTests",
            dependencies: allLayers + ["PipelineMonitoring", "CLIOptions", .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "Yams", package: "Yams")],
            path: "Tests/PipelineTests",
            exclude: ["Resources"],
            swiftSettings: swift5Settings
        ),
    ]
)
