import Foundation
import PipelineTensor

/// Whether the preprocessing mirrors an image: ADM's `random_flip` (and
/// fast-DiT's `RandomHorizontalFlip`) made reproducible by keying the coin on
/// the image's index instead of a global RNG.
public enum HorizontalFlip: Equatable {
    case never
    case always
    /// Flips image `index` when the low bit of SplitMix64(seed ^ index·φ) is set:
    /// about half of the images, the same ones on every machine and every run.
    case keyed(seed: UInt64)

    public func flips(index: Int) -> Bool {
        switch self {
        case .never: return false
        case .always: return true
        case let .keyed(seed):
            let z = SplitMix64.mix(seed ^ (UInt64(bitPattern: Int64(index)) &* SplitMix64.gamma))
            return z & 1 == 1
        }
    }
}

/// ADM's image preprocessing (guided-diffusion `image_datasets.py`, copied by
/// DiT's `train.py` and fast-DiT's `extract_features.py`), on Pillow's arithmetic.
public enum ADMPreprocess {
    /// `center_crop_arr(pil_image, image_size)`:
    ///
    ///     while min(*pil_image.size) >= 2 * image_size:
    ///         pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    ///     scale = image_size / min(*pil_image.size)
    ///     pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC)
    ///     crop_y = (arr.shape[0] - image_size) // 2; crop_x likewise; arr[crop_y:crop_y+S, crop_x:crop_x+S]
    ///
    /// Quirks kept: the halving floors odd sizes (`x // 2`) and resamples with BOX
    /// over the whole image (not `Image.reduce`), the target size uses Python's
    /// round-half-to-even on a float64 product, and the crop offsets floor.
    public static func centerCropArr(_ image: ImageRGB8, size: Int) throws -> ImageRGB8 {
        guard size > 0 else { throw ImageError.invalid(file: "<memory>", reason: "center crop size must be positive, got \(size)") }
        var img = image
        while min(img.width, img.height) >= 2 * size {
            img = try PillowResample.resize(img, width: img.width / 2, height: img.height / 2, filter: .box)
        }
        let scale = Double(size) / Double(min(img.width, img.height))
        let w = Int((Double(img.width) * scale).rounded(.toNearestOrEven))
        let h = Int((Double(img.height) * scale).rounded(.toNearestOrEven))
        img = try PillowResample.resize(img, width: w, height: h, filter: .bicubic)
        return try img.cropped(x: (w - size) / 2, y: (h - size) / 2, width: size, height: size)
    }

    /// The training-time view of one image: `center_crop_arr`, then the flip the
    /// policy decides for `index` (ADM flips after cropping).
    public static func prepare(_ image: ImageRGB8, size: Int, index: Int, flip: HorizontalFlip) throws -> ImageRGB8 {
        let cropped = try centerCropArr(image, size: size)
        return flip.flips(index: index) ? cropped.flippedHorizontally() : cropped
    }
}
