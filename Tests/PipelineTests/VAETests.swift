import Foundation
import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineWeights
@testable import PipelineVAE

/// AutoencoderKL against diffusers on ../shared/fixtures/vae/tiny.
final class VAETests: XCTestCase {
    func loadTiny(_ options: VAEOptions = .standard) throws -> (AutoencoderKL, SafeTensorsFile) {
        let folder = (try Fixtures.require("vae/tiny/config.json") as NSString).deletingLastPathComponent
        let io = try SafeTensorsFile(path: try Fixtures.require("vae/tiny/io.safetensors"))
        return (try AutoencoderKL.load(folder: folder, options: options), io)
    }

    func testConfigFromFixture() throws {
        let c = try AutoencoderKLConfig.load(path: try Fixtures.require("vae/tiny/config.json"))
        XCTAssertEqual(c.blockOutChannels, [32, 64])
        XCTAssertEqual(c.layersPerBlock, 2)
        XCTAssertEqual(c.latentChannels, 4)
        XCTAssertEqual(c.scalingFactor, 0.18215)
        XCTAssertNil(c.shiftFactor)
        XCTAssertEqual(c.downBlockTypes, [.downEncoderBlock2D, .downEncoderBlock2D])
        XCTAssertEqual(c.downsamplingFactor, 2)
        XCTAssertEqual(AutoencoderKLConfig.stableDiffusion.downsamplingFactor, 8)
    }

    func testEncodeDecodeMatchesDiffusers() throws {
        for winograd in [true, false] {
            let (vae, io) = try loadTiny(VAEOptions(winograd: winograd))
            let posterior = try vae.encode(try io.tensor("image"))
            assertClose(posterior.mean, try io.tensor("mean"), tol: 1e-4, "mean (winograd \(winograd))")
            assertClose(try XCTUnwrap(posterior.logvar), try io.tensor("logvar"), tol: 1e-4, "logvar (winograd \(winograd))")
            // decoded = decode(mean): the unscaled mean through post_quant_conv and the decoder.
            let decoded = try vae.decodeUnscaled(try io.tensor("mean"))
            assertClose(decoded, try io.tensor("decoded"), tol: 1e-4, "decoded (winograd \(winograd))")
            // decode() takes DiT-scale latents: scaled(mean) decodes to the same images.
            let viaScale = try vae.decode(vae.scaled(try io.tensor("mean")))
            assertClose(viaScale, try io.tensor("decoded"), tol: 1e-4, "decode(scaled(mean))")
        }
    }

    func testScalingAndShift() throws {
        var c = AutoencoderKLConfig(blockOutChannels: [32], layersPerBlock: 1, latentChannels: 4, scalingFactor: 0.5)
        let vae = try AutoencoderKL.load(config: c, weights: RandomTensorSource.vae(seed: 1))
        let z = Tensor(shape: [1, 4, 1, 1], values: [1, -2, 3, 0.25])
        XCTAssertEqual(vae.scaled(z).values, [0.5, -1, 1.5, 0.125])
        XCTAssertEqual(vae.unscaled(vae.scaled(z)).values, z.values)
        c.shiftFactor = 1
        let shifted = try AutoencoderKL.load(config: c, weights: RandomTensorSource.vae(seed: 1))
        XCTAssertEqual(shifted.scaled(z).values, [0, -1.5, 1, -0.375])
        XCTAssertEqual(shifted.unscaled(shifted.scaled(z)).values, z.values)
    }
}
