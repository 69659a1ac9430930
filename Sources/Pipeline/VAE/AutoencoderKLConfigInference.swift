import Foundation
import PipelineFiles

extension AutoencoderKLConfig {
    /// The architecture read off a diffusers AutoencoderKL state dict, for weights that come
    /// without a `config.json`. What the shapes cannot tell takes the SD VAEs' values:
    /// `norm_num_groups` 32, `scaling_factor` 0.18215, no shift.
    public static func infer(from source: TensorSource) throws -> AutoencoderKLConfig {
        func shape(_ key: String) -> [Int]? { source.info(key)?.shape }
        func bad(_ reason: String) -> VAEError { .badConfig(file: source.sourceName, reason: reason) }
        guard let convIn = shape("encoder.conv_in.weight"), convIn.count == 4,
              let decIn = shape("decoder.conv_in.weight"), decIn.count == 4,
              let decOut = shape("decoder.conv_out.weight"), decOut.count == 4 else {
            throw bad("no config.json, and the weights are not a diffusers AutoencoderKL state dict "
                      + "(encoder.conv_in / decoder.conv_in / decoder.conv_out missing)")
        }
        var blocks: [Int] = []
        while let s = shape("encoder.down_blocks.\(blocks.count).resnets.0.conv1.weight"), s.count == 4, blocks.count < 8 {
            blocks.append(s[0])
        }
        var layers = 0
        while shape("encoder.down_blocks.0.resnets.\(layers).conv1.weight") != nil, layers < 64 { layers += 1 }
        guard !blocks.isEmpty, layers > 0 else { throw bad("no encoder.down_blocks.0.resnets.0 in the weights") }
        let config = AutoencoderKLConfig(
            inChannels: convIn[1], outChannels: decOut[0], blockOutChannels: blocks, layersPerBlock: layers,
            latentChannels: decIn[1], scalingFactor: 0.18215,
            useQuantConv: source.contains("quant_conv.weight"),
            usePostQuantConv: source.contains("post_quant_conv.weight"),
            midBlockAddAttention: source.contains("encoder.mid_block.attentions.0.group_norm.weight"))
        try config.validate(source: source.sourceName)
        return config
    }
}
