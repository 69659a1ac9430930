import XCTest
@testable import PipelineTensor
@testable import PipelineWeights
@testable import PipelineVAE

/// A sample's pixels depend only on (seed, sample index): the VAE decode must give
/// the same bits whatever the thread count, also when the Winograd convolutions
/// are split into several chunks.
final class VAEThreadInvarianceTests: XCTestCase {
    func testDecodeIsBitIdenticalAcrossThreadCounts() throws {
        let config = AutoencoderKLConfig(blockOutChannels: [32, 64], layersPerBlock: 1, latentChannels: 4,
                                         scalingFactor: 0.18215)
        // A small Winograd chunk budget: several chunks per convolution.
        let vae = try AutoencoderKL.load(config: config, weights: RandomTensorSource.vae(seed: 5),
                                    options: VAEOptions(winogradChunkBudget: 20_000))
        var rng = SplitMix64(seed: 9)
        let z = rng.uniform([1, 4, 12, 12], bound: 1)
        let savedThreads = Threads.count
        defer { Threads.set(savedThreads) }
        var outputs: [[Float]] = []
        for threads in [1, 2, 3] {
            Threads.set(threads)
            outputs.append(try vae.decode(z).values)
        }
        for k in 1..<outputs.count {
            let differing = zip(outputs[0], outputs[k]).filter { $0 != $1 }.count
            XCTAssertEqual(differing, 0, "1 vs \(k + 1) threads: \(differing) of \(outputs[0].count) values differ")
        }
    }
}
