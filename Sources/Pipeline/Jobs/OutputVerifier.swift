import Foundation
import PipelineFiles

/// Checks what a RESULT reports against the shared output folder, in two steps:
/// - `checkNames`, cheap, on the coordinator's loop: the list must be exactly the files the
///   shard produces (`JobKind.expectedOutputs`), each once, so an empty list, a missing file,
///   an extra one, another shard's file or one file repeated thousands of times is refused
///   before anything is opened;
/// - `verify`, off the loop (`OffLoopWork`): each file is opened under the output folder
///   component by component without following symbolic links (`O_NOFOLLOW`), the last one
///   non-blocking (a FIFO never blocks the open), must be a regular file (`fstat`) of the
///   reported size, and is hashed (SHA-256).
public enum OutputVerifier {
    /// nil when `outputs` names each of `expected` exactly once and nothing else; else why not.
    public static func checkNames(_ outputs: [FileDigest], expected: Set<String>) -> String? {
        var seen = Set<String>()
        seen.reserveCapacity(min(outputs.count, expected.count))
        for o in outputs {
            guard expected.contains(o.path) else {
                return "output \(o.path.debugDescription) is not one of this shard's \(expected.count) output file(s)"
            }
            guard seen.insert(o.path).inserted else { return "output \(o.path) listed more than once" }
        }
        let missing = expected.subtracting(seen)
        if let first = missing.min() {
            return "expected output \(first) not reported" + (missing.count > 1 ? " (\(missing.count) missing)" : "")
        }
        return nil
    }

    /// nil when every file is a regular file under `outputDir` with the reported size and
    /// SHA-256; else the first problem. Blocks only on reading regular files: run it off the loop.
    public static func verify(_ outputs: [FileDigest], in outputDir: String) -> String? {
        let root = open(outputDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { return "output folder \(outputDir) unreadable: \(String(cString: strerror(errno)))" }
        defer { close(root) }
        for o in outputs {
            let fd: Int32
            switch openRegular(o.path, under: root) {
            case .failure(let why): return "output \(o.path) \(why)"
            case .success(let f): fd = f
            }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else { return "output \(o.path) unreadable: \(String(cString: strerror(errno)))" }
            if Int64(st.st_size) != o.size { return "output \(o.path): size \(st.st_size) on disk, \(o.size) reported" }
            do {
                let (size, sha) = try SHA256.file(descriptor: fd, path: outputDir + "/" + o.path)
                if size != o.size { return "output \(o.path): size \(size) on disk, \(o.size) reported" }
                if sha != o.sha256 { return "output \(o.path): sha256 on disk differs from the reported one" }
            } catch {
                return "output \(o.path) unreadable: \(error)"
            }
        }
        return nil
    }

    /// Both steps at once (tests, and a core without an off-loop executor).
    public static func check(_ outputs: [FileDigest], expected: Set<String>, in outputDir: String) -> String? {
        checkNames(outputs, expected: expected) ?? verify(outputs, in: outputDir)
    }

    private struct Refusal: Error { var why: String }

    /// Opens `relative` under the folder `root` without following any symbolic link below it;
    /// a regular file only.
    private static func openRegular(_ relative: String, under root: Int32) -> Result<Int32, Refusal> {
        let parts = relative.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !parts.isEmpty, !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            return .failure(Refusal(why: "is not a plain relative path"))
        }
        var dir = root
        defer { if dir != root { close(dir) } }
        for name in parts.dropLast() {
            let next = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else {
                let e = errno
                return .failure(Refusal(why: e == ELOOP || e == ENOTDIR
                    ? "is not inside the output folder: \(name) is a symbolic link or not a folder"
                    : "unreadable: \(String(cString: strerror(e)))"))
            }
            if dir != root { close(dir) }
            dir = next
        }
        let fd = openat(dir, parts[parts.count - 1], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            return .failure(Refusal(why: e == ELOOP ? "is a symbolic link, not a file written by the worker"
                                                    : "unreadable: \(String(cString: strerror(e)))"))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            return .failure(Refusal(why: "unreadable: \(String(cString: strerror(e)))"))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            let kind: String
            switch st.st_mode & S_IFMT {
            case S_IFIFO: kind = "a FIFO"
            case S_IFCHR, S_IFBLK: kind = "a device"
            case S_IFDIR: kind = "a folder"
            case S_IFSOCK: kind = "a socket"
            default: kind = "not a regular file"
            }
            return .failure(Refusal(why: "is \(kind), not a regular file"))
        }
        return .success(fd)
    }
}
