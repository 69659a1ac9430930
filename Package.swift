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
        // No ZIPFoundation: the one zip reader/writer (Weights/ZipDirectory.swift,
        // Imaging/ZipReader.swift, Imaging/ZipWriter.swift) works over zlib, serves .pt
        // members in place from a mapping and streams .npz with zip64 (see ZipDirectory).
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        // Tests only: the deploy recipes' YAML (Kubernetes, compose) must parse.
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
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
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Sources/Pipeline",
            swiftSettings: fastMath
        ),
        // Flag groups both executables take (single-process command and distributed job alike).
        .target(
            name: "CLIOptions",
            dependencies: ["Pipeline", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/CLIOptions"
        ),
        .executableTarget(
            name: "Worker",
            dependencies: ["Pipeline", "CLIOptions", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/Worker",
            swiftSettings: fastMath
        ),
        .executableTarget(
            name: "Coordinator",
            dependencies: ["Pipeline", "CLIOptions", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/Coordinator",
            swiftSettings: fastMath
        ),
        .testTarget(
            name: "PipelineTests",
            dependencies: ["Pipeline", .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "Yams", package: "Yams")],
            path: "Tests/PipelineTests",
            exclude: ["Resources"]
        ),
    ]
)
