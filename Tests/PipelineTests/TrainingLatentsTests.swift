import XCTest
@testable import PipelineTensor
@testable import PipelineFiles
@testable import PipelineImaging
@testable import PipelineVAE
@testable import PipelineDiffusion
@testable import PipelineTraining
@testable import PipelineJobs

/// `dit-worker train --data SHARDS`: an encode job's shards (fixture tiny VAE) as training data.
final class TrainingLatentsTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = Fixtures.tempDir("train-latents") }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Encodes 12 shapes images (16 x 16, 4 classes) with the encode job's planner, executor
    /// and finalize, in process, 5 images per shard.
    private func encodeShards() throws -> (out: String, vae: AutoencoderKL) {
        let vaePath = try Fixtures.require("vae/tiny/config.json")
        let vaeFolder = (vaePath as NSString).deletingLastPathComponent
        let folder = dir + "/images", out = dir + "/encoded"
        let shapes = ShapesDataset(seed: 5, size: 16)
        for i in 0..<12 {
            let cls = ShapesDataset.classNames[shapes.label(of: i)]
            try FileManager.default.createDirectory(atPath: folder + "/" + cls, withIntermediateDirectories: true)
            try PNGWriter.write(shapes.image(i), to: folder + "/\(cls)/\(i).png")
        }
        let spec = EncodeSpec(outputDir: out, folder: folder, vae: vaeFolder, imageSize: 16, seed: 9, batch: 4, imagesPerShard: 5)
        let kind = EncodeKind(), specData = try JobKinds.encode(spec)
        let plan = try kind.plan(spec: specData)
        XCTAssertEqual(plan.shards.count, 3)
        let executor = kind.makeExecutor()
        var outputs: [FileDigest] = []
        for (k, shard) in plan.shards.enumerated() {
            let task = ShardTask(kind: "encode", jobId: 1, shardIndex: k, itemStart: shard.itemStart, itemEnd: shard.itemEnd,
                                 outputDir: out, jobSpec: specData, shardSpec: shard.spec)
            outputs += try executor.execute(task, control: ShardControl()).outputs
        }
        _ = try kind.finalize(spec: specData, outputDir: out, shardOutputs: outputs)
        return (out, try AutoencoderKL.load(folder: vaeFolder))
    }

    func testShardsTrainAndLatentsAreRedrawnEachEpoch() throws {
        let (out, vae) = try encodeShards()
        let data = try TrainingLatents(shards: out, seed: 3)
        XCTAssertEqual(data.count, 12)
        XCTAssertEqual(data.numClasses, 4)
        XCTAssertEqual(data.sampleShape, [4, 8, 8])
        XCTAssertEqual(data.scalingFactor, vae.config.scalingFactor)

        // Labels from the shards: the ImageFolder labels of the encoded paths.
        var shardLabels: [Int] = [], shardMean: [Tensor] = [], shardStd: [Tensor] = [], shardIndex: [Int] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: out + "/shards").sorted() {
            let f = try SafeTensorsFile(path: out + "/shards/" + name)
            shardLabels += try f.int64s("label").map(Int.init)
            shardIndex += try f.int64s("index").map(Int.init)
            shardMean.append(try f.tensor("mean")); shardStd.append(try f.tensor("std"))
        }
        XCTAssertEqual(data.labels, shardLabels)
        XCTAssertEqual(data.imageIndices, shardIndex)
        let mean = Tensor.concat(shardMean), std = Tensor.concat(shardStd)
        XCTAssertGreaterThan(std.maxAbs, 0, "the tiny VAE's posterior has a spread")

        // Epoch e's latent of item i = scale · (mean + std · eps(seed 3, index, trainingLatent, e)).
        let items = [0, 7, 11], per = 4 * 8 * 8
        let e0 = try data.batch(items, epochs: [0, 0, 0]), e1 = try data.batch(items, epochs: [1, 1, 1])
        let again = try data.batch(items, epochs: [0, 0, 0])
        XCTAssertEqual(e0.values, again.values, "a draw is a function of (seed, index, epoch)")
        let noise = PhiloxNoise(seed: 3)
        var largestChange: Float = 0
        for (k, i) in items.enumerated() {
            for (epoch, batch) in [(0, e0), (1, e1)] {
                let eps = try noise.normal(indices: [shardIndex[i]], sampleShape: [4, 8, 8], purpose: .trainingLatent, step: epoch)
                for j in 0..<per {
                    let want = (mean.data[i * per + j] + std.data[i * per + j] * eps.data[j]) * vae.config.scalingFactor
                    XCTAssertEqual(batch.data[k * per + j], want, accuracy: 1e-6 * max(1, abs(want)), "item \(i) epoch \(epoch) value \(j)")
                }
            }
            for j in 0..<per { largestChange = max(largestChange, abs(e0.data[k * per + j] - e1.data[k * per + j])) }
        }
        XCTAssertGreaterThan(largestChange, 1e-3, "latents are re-drawn every epoch")

        // A few training steps from the shards: a latent-space DiT (4 channels, 8 x 8), finite loss.
        var o = TrainingOptions()
        o.imageSize = 8; o.inChannels = 4; o.patchSize = 2; o.hiddenSize = 32; o.depth = 1; o.numHeads = 2
        o.numClasses = data.numClasses; o.steps = 4; o.batch = 5; o.lr = 1e-3; o.checkpointEvery = 2; o.logEvery = 2
        o.data = out
        let trainer = try Trainer(options: o, data: data, out: dir + "/model", resume: false)
        var losses: [Double] = []
        try trainer.run { losses.append($0.loss) }
        XCTAssertEqual(trainer.step, 4)
        XCTAssertEqual(losses.count, 2)
        XCTAssertTrue(losses.allSatisfy { $0.isFinite && $0 > 0 }, "\(losses)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/model/checkpoints/0000004.safetensors"))
    }

    func testShardsWithoutScalingFactorAreRejected() throws {
        let (out, _) = try encodeShards()
        // Rewrite shard 0 without its metadata: the trainer must not guess the scale.
        let path = out + "/shards/shard-000000.safetensors"
        let f = try SafeTensorsFile(path: path)
        var w = SafeTensorsWriter()
        for key in f.keys.sorted() where key != "label" && key != "index" { w.add(key, try f.tensor(key)) }
        w.add("label", int64: try f.int64s("label"))
        w.add("index", int64: try f.int64s("index"))
        try w.write(to: path)
        XCTAssertThrowsError(try TrainingLatents(shards: out, seed: 0)) { error in
            XCTAssertTrue("\(error)".contains("scaling_factor"), "\(error)")
        }
    }
}
