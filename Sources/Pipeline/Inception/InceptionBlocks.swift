import Foundation
import PipelineTensor
import PipelineWeights

// Inception-v3 mixed blocks as pytorch-fid builds them (torchvision's
// InceptionA–E, with pytorch-fid's FID replacements for A, C and E). Every
// block maps a channel-major batch (Cin, N, H, W) to (Cout, N, OH, OW); each
// branch writes its channels straight into the concatenated output, in the
// reference's `torch.cat` order.

/// `FIDInceptionA` (Mixed_5b/5c/5d).
/// Quirk (pytorch-fid, from the TF graph): the pool branch's 3×3 average pool
/// uses `count_include_pad=False`; torchvision's InceptionA counts the padding.
struct FIDInceptionA {
    let branch1x1, branch5x5_1, branch5x5_2, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3, branch_pool: BasicConv2d
    let outChannels: Int

    init(_ w: StateDict, inChannels cin: Int, poolFeatures: Int) throws {
        branch1x1 = try BasicConv2d(w.scope("branch1x1"), cin, 64, kernel: 1)
        branch5x5_1 = try BasicConv2d(w.scope("branch5x5_1"), cin, 48, kernel: 1)
        branch5x5_2 = try BasicConv2d(w.scope("branch5x5_2"), 48, 64, kernel: 5, padding: 2)
        branch3x3dbl_1 = try BasicConv2d(w.scope("branch3x3dbl_1"), cin, 64, kernel: 1)
        branch3x3dbl_2 = try BasicConv2d(w.scope("branch3x3dbl_2"), 64, 96, kernel: 3, padding: 1)
        branch3x3dbl_3 = try BasicConv2d(w.scope("branch3x3dbl_3"), 96, 96, kernel: 3, padding: 1)
        branch_pool = try BasicConv2d(w.scope("branch_pool"), cin, poolFeatures, kernel: 1)
        outChannels = 64 + 64 + 96 + poolFeatures
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let out = Tensor(uninitialized: [outChannels, x.shape[1], x.shape[2], x.shape[3]])
        branch1x1(x, into: out, channelOffset: 0)
        branch5x5_2(branch5x5_1(x), into: out, channelOffset: 64)
        branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x)), into: out, channelOffset: 128)
        let pooled = PlanarPool.average(x, kernel: 3, stride: 1, padding: 1, countIncludePad: false)
        branch_pool(pooled, into: out, channelOffset: 224)
        return out
    }
}

/// torchvision `InceptionB` (Mixed_6a): the grid reduction 35 → 17.
struct InceptionB {
    let branch3x3, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3: BasicConv2d
    let inChannels: Int

    init(_ w: StateDict, inChannels cin: Int) throws {
        inChannels = cin
        branch3x3 = try BasicConv2d(w.scope("branch3x3"), cin, 384, kernel: 3, stride: 2)
        branch3x3dbl_1 = try BasicConv2d(w.scope("branch3x3dbl_1"), cin, 64, kernel: 1)
        branch3x3dbl_2 = try BasicConv2d(w.scope("branch3x3dbl_2"), 64, 96, kernel: 3, padding: 1)
        branch3x3dbl_3 = try BasicConv2d(w.scope("branch3x3dbl_3"), 96, 96, kernel: 3, stride: 2)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let oh = Pooling.outputSize(x.shape[2], kernel: 3, stride: 2, padding: 0)
        let ow = Pooling.outputSize(x.shape[3], kernel: 3, stride: 2, padding: 0)
        let out = Tensor(uninitialized: [384 + 96 + inChannels, x.shape[1], oh, ow])
        branch3x3(x, into: out, channelOffset: 0)
        branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x)), into: out, channelOffset: 384)
        _ = PlanarPool.max(x, kernel: 3, stride: 2, into: out, channelOffset: 480)
        return out
    }
}

/// `FIDInceptionC` (Mixed_6b–6e): factorised 7×7 convolutions.
/// Quirk: average pool with `count_include_pad=False`, as in FIDInceptionA.
struct FIDInceptionC {
    let branch1x1: BasicConv2d
    let branch7x7_1, branch7x7_2, branch7x7_3: BasicConv2d
    let branch7x7dbl_1, branch7x7dbl_2, branch7x7dbl_3, branch7x7dbl_4, branch7x7dbl_5: BasicConv2d
    let branch_pool: BasicConv2d

    init(_ w: StateDict, inChannels cin: Int, channels7x7 c7: Int) throws {
        branch1x1 = try BasicConv2d(w.scope("branch1x1"), cin, 192, kernel: 1)
        branch7x7_1 = try BasicConv2d(w.scope("branch7x7_1"), cin, c7, kernel: 1)
        branch7x7_2 = try BasicConv2d(w.scope("branch7x7_2"), c7, c7, kernel: (1, 7), padding: (0, 3))
        branch7x7_3 = try BasicConv2d(w.scope("branch7x7_3"), c7, 192, kernel: (7, 1), padding: (3, 0))
        branch7x7dbl_1 = try BasicConv2d(w.scope("branch7x7dbl_1"), cin, c7, kernel: 1)
        branch7x7dbl_2 = try BasicConv2d(w.scope("branch7x7dbl_2"), c7, c7, kernel: (7, 1), padding: (3, 0))
        branch7x7dbl_3 = try BasicConv2d(w.scope("branch7x7dbl_3"), c7, c7, kernel: (1, 7), padding: (0, 3))
        branch7x7dbl_4 = try BasicConv2d(w.scope("branch7x7dbl_4"), c7, c7, kernel: (7, 1), padding: (3, 0))
        branch7x7dbl_5 = try BasicConv2d(w.scope("branch7x7dbl_5"), c7, 192, kernel: (1, 7), padding: (0, 3))
        branch_pool = try BasicConv2d(w.scope("branch_pool"), cin, 192, kernel: 1)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let out = Tensor(uninitialized: [768, x.shape[1], x.shape[2], x.shape[3]])
        branch1x1(x, into: out, channelOffset: 0)
        branch7x7_3(branch7x7_2(branch7x7_1(x)), into: out, channelOffset: 192)
        branch7x7dbl_5(branch7x7dbl_4(branch7x7dbl_3(branch7x7dbl_2(branch7x7dbl_1(x)))), into: out, channelOffset: 384)
        let pooled = PlanarPool.average(x, kernel: 3, stride: 1, padding: 1, countIncludePad: false)
        branch_pool(pooled, into: out, channelOffset: 576)
        return out
    }
}

/// torchvision `InceptionD` (Mixed_7a): the grid reduction 17 → 8.
struct InceptionD {
    let branch3x3_1, branch3x3_2: BasicConv2d
    let branch7x7x3_1, branch7x7x3_2, branch7x7x3_3, branch7x7x3_4: BasicConv2d
    let inChannels: Int

    init(_ w: StateDict, inChannels cin: Int) throws {
        inChannels = cin
        branch3x3_1 = try BasicConv2d(w.scope("branch3x3_1"), cin, 192, kernel: 1)
        branch3x3_2 = try BasicConv2d(w.scope("branch3x3_2"), 192, 320, kernel: 3, stride: 2)
        branch7x7x3_1 = try BasicConv2d(w.scope("branch7x7x3_1"), cin, 192, kernel: 1)
        branch7x7x3_2 = try BasicConv2d(w.scope("branch7x7x3_2"), 192, 192, kernel: (1, 7), padding: (0, 3))
        branch7x7x3_3 = try BasicConv2d(w.scope("branch7x7x3_3"), 192, 192, kernel: (7, 1), padding: (3, 0))
        branch7x7x3_4 = try BasicConv2d(w.scope("branch7x7x3_4"), 192, 192, kernel: 3, stride: 2)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let oh = Pooling.outputSize(x.shape[2], kernel: 3, stride: 2, padding: 0)
        let ow = Pooling.outputSize(x.shape[3], kernel: 3, stride: 2, padding: 0)
        let out = Tensor(uninitialized: [320 + 192 + inChannels, x.shape[1], oh, ow])
        branch3x3_2(branch3x3_1(x), into: out, channelOffset: 0)
        branch7x7x3_4(branch7x7x3_3(branch7x7x3_2(branch7x7x3_1(x))), into: out, channelOffset: 320)
        _ = PlanarPool.max(x, kernel: 3, stride: 2, into: out, channelOffset: 512)
        return out
    }
}

/// `FIDInceptionE_1` (Mixed_7b) and `FIDInceptionE_2` (Mixed_7c): expanded filter banks.
struct FIDInceptionE {
    /// Quirks (pytorch-fid, matching the TF graph): E_1's pool branch averages
    /// with `count_include_pad=False`; E_2's pool branch uses a 3×3 *max* pool.
    enum PoolBranch { case averageExcludingPad, max }

    let branch1x1: BasicConv2d
    let branch3x3_1, branch3x3_2a, branch3x3_2b: BasicConv2d
    let branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3a, branch3x3dbl_3b: BasicConv2d
    let branch_pool: BasicConv2d
    let pool: PoolBranch

    init(_ w: StateDict, inChannels cin: Int, pool: PoolBranch) throws {
        self.pool = pool
        branch1x1 = try BasicConv2d(w.scope("branch1x1"), cin, 320, kernel: 1)
        branch3x3_1 = try BasicConv2d(w.scope("branch3x3_1"), cin, 384, kernel: 1)
        branch3x3_2a = try BasicConv2d(w.scope("branch3x3_2a"), 384, 384, kernel: (1, 3), padding: (0, 1))
        branch3x3_2b = try BasicConv2d(w.scope("branch3x3_2b"), 384, 384, kernel: (3, 1), padding: (1, 0))
        branch3x3dbl_1 = try BasicConv2d(w.scope("branch3x3dbl_1"), cin, 448, kernel: 1)
        branch3x3dbl_2 = try BasicConv2d(w.scope("branch3x3dbl_2"), 448, 384, kernel: 3, padding: 1)
        branch3x3dbl_3a = try BasicConv2d(w.scope("branch3x3dbl_3a"), 384, 384, kernel: (1, 3), padding: (0, 1))
        branch3x3dbl_3b = try BasicConv2d(w.scope("branch3x3dbl_3b"), 384, 384, kernel: (3, 1), padding: (1, 0))
        branch_pool = try BasicConv2d(w.scope("branch_pool"), cin, 192, kernel: 1)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let out = Tensor(uninitialized: [2048, x.shape[1], x.shape[2], x.shape[3]])
        branch1x1(x, into: out, channelOffset: 0)
        let b3 = branch3x3_1(x)
        branch3x3_2a(b3, into: out, channelOffset: 320)
        branch3x3_2b(b3, into: out, channelOffset: 704)
        let d = branch3x3dbl_2(branch3x3dbl_1(x))
        branch3x3dbl_3a(d, into: out, channelOffset: 1088)
        branch3x3dbl_3b(d, into: out, channelOffset: 1472)
        let pooled: Tensor
        switch pool {
        case .averageExcludingPad: pooled = PlanarPool.average(x, kernel: 3, stride: 1, padding: 1, countIncludePad: false)
        case .max: pooled = PlanarPool.max(x, kernel: 3, stride: 1, padding: 1)
        }
        branch_pool(pooled, into: out, channelOffset: 1856)
        return out
    }
}
