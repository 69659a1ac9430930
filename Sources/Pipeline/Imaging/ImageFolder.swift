import Foundation

/// One image of an ImageFolder tree.
public struct ImageFolderItem: Equatable {
    public var path: String
    public var label: Int
}

/// torchvision's `ImageFolder` convention (`root/<class>/**/<image>`), scanned in
/// exactly torchvision's order so labels and indices match a PyTorch run:
///
/// - classes: `sorted(entry.name for entry in os.scandir(root) if entry.is_dir())`,
///   label = position in that list (hidden folders count, symlinks are followed);
/// - images of a class: `for root, _, fnames in sorted(os.walk(class_dir, followlinks=True)):
///   for fname in sorted(fnames)`, kept when the lower-cased name ends with one of
///   `IMG_EXTENSIONS`;
/// - Python sorts `str` by code point, so names are compared by Unicode scalars,
///   not by Swift's `String` ordering; `os.walk` tuples sort by the full directory path.
public struct ImageFolder {
    public let root: String
    public let classes: [String]
    public let items: [ImageFolderItem]

    /// torchvision's `IMG_EXTENSIONS`. Only PNG and JPEG decode here; other
    /// files are listed (so indices agree with torchvision) and fail at decode
    /// with an error naming them.
    public static let torchvisionExtensions = [".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"]

    public init(root rootPath: String, extensions: [String] = ImageFolder.torchvisionExtensions) throws {
        // os.path.join(root, cls) does not double a trailing slash.
        var root = rootPath
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw ImageError.unreadable(file: root, reason: "not a directory")
        }
        let top: [String]
        do { top = try fm.contentsOfDirectory(atPath: root) } catch {
            throw ImageError.unreadable(file: root, reason: "cannot list: \(error.localizedDescription)")
        }
        let classes = top.filter { Self.isDirectory(root + "/" + $0) }.sorted(by: Self.pythonLess)
        guard !classes.isEmpty else { throw ImageError.invalid(file: root, reason: "no class folders (ImageFolder expects root/<class>/<image>)") }
        let exts = extensions.map { $0.lowercased() }
        var items: [ImageFolderItem] = []
        var empty: [String] = []
        for (label, name) in classes.enumerated() {
            let before = items.count
            for (dir, files) in try Self.walk(root + "/" + name) {
                for f in files.sorted(by: Self.pythonLess) where exts.contains(where: { f.lowercased().hasSuffix($0) }) {
                    items.append(ImageFolderItem(path: dir + "/" + f, label: label))
                }
            }
            if items.count == before { empty.append(name) }
        }
        // torchvision's make_dataset refuses classes without a single valid file.
        if !empty.isEmpty {
            throw ImageError.invalid(file: root, reason: "no image files in class folder\(empty.count > 1 ? "s" : "") \(empty.prefix(8).joined(separator: ", "))")
        }
        self.root = root
        self.classes = classes
        self.items = items
    }

    /// `os.walk(top, followlinks=True)` as (directory, file names), sorted by directory path.
    static func walk(_ top: String) throws -> [(String, [String])] {
        var out: [(String, [String])] = []
        try walk(top, ancestors: [], into: &out)
        return out.sorted { pythonLess($0.0, $1.0) }
    }

    private static func walk(_ dir: String, ancestors: Set<String>, into out: inout [(String, [String])]) throws {
        // A symlink back to an ancestor would make os.walk recurse until the path
        // is too long; stop there instead (other symlinked folders are walked, as Python does).
        let real = URL(fileURLWithPath: dir).resolvingSymlinksInPath().path
        if ancestors.contains(real) { return }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dir) } catch {
            throw ImageError.unreadable(file: dir, reason: "cannot list: \(error.localizedDescription)")
        }
        var files: [String] = []
        var subdirs: [String] = []
        for n in names {
            let p = dir + "/" + n
            if isDirectory(p) { subdirs.append(p) } else { files.append(n) }
        }
        out.append((dir, files))
        let inner = ancestors.union([real])
        for d in subdirs { try walk(d, ancestors: inner, into: &out) }
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// Python's `str` ordering: lexicographic by Unicode code point.
    static func pythonLess(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) { $0.value < $1.value }
    }
}
