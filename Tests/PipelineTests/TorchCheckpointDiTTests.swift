import XCTest
@testable import PipelineFiles
@testable import PipelineDiT

/// DiT from the fixture's PyTorch checkpoints (`torch.save` of the state dict and
/// the train.py layout, EMA by default) reproduces the reference forward and CFG forward.
final class TorchCheckpointDiTTests: XCTestCase {
    func testForwardFromTorchCheckpointsMatchesReference() throws {
        let io = try SafeTensorsFile(path: try Fixtures.require("dit/tiny/io.safetensors"))
        let t = try io.doubles("t").map { Float($0) }, y = try io.int64s("y").map { Int($0) }
        let cfgT = try io.doubles("cfg_t").map { Float($0) }, cfgY = try io.int64s("cfg_y").map { Int($0) }
        let scale = Float(try io.doubles("cfg_scale")[0])
        for file in ["dit/tiny/state_dict.pt", "dit/tiny/checkpoint.pt"] {
            let model = try DiT.load(path: try Fixtures.require(file))
            assertClose(try model.forward(try io.tensor("x"), t: t, y: y), try io.tensor("out"), tol: 1e-4, "\(file) forward")
            let cfg = try model.forwardWithCFG(try io.tensor("cfg_x"), t: cfgT, y: cfgY, scale: scale)
            assertClose(cfg, try io.tensor("cfg_out"), tol: 1e-4, "\(file) forward_with_cfg")
        }
    }
}
