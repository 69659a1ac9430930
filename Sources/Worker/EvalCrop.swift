import ArgumentParser
import PipelineImaging

/// `dit-worker eval crop --size S --output OUT.safetensors IMAGE...`
struct EvalCrop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crop",
        abstract: "Decode images (PNG/JPEG, as Pillow's convert(\"RGB\")) and apply ADM's center_crop_arr.",
        discussion: "Writes <file name>.rgb (uint8 H x W x 3) and <file name>.crop (uint8 S x S x 3) per image."
    )

    @Option(help: "Crop size S (center_crop_arr's image_size).") var size: Int
    @Option(help: "Output safetensors file.") var output: String
    @Argument(help: "PNG or JPEG files.") var images: [String]

    func run() throws {
        try CropEvaluation.write(images: images, size: size, output: output)
        print("wrote \(images.count * 2) tensors to \(output)")
    }
}
