import Foundation
import Yams

/// One `dit-coordinator ...` / `dit-worker ...` command line found in a deploy recipe.
struct RecipeInvocation: CustomStringConvertible {
    var binary: String          // "dit-coordinator" or "dit-worker"
    var args: [String]          // as written; `$VAR`/`${VAR}`/`"$@"` stay as they are
    var source: String          // file:line (or file: yaml path)
    /// False where the binary's name might be prose (then only checked if the next word is a
    /// flag or a subcommand).
    var certain = true
    var description: String { "\(source): \(binary) \(args.joined(separator: " "))" }

    /// Whether a token is a value the recipe fills in (a shell or systemd variable, or a
    /// placeholder such as KIND or JOB).
    static func isVariable(_ token: String) -> Bool {
        token.contains("$") || (!token.isEmpty && token.allSatisfy { $0.isUppercase || $0.isNumber || $0 == "_" })
    }
}

/// Finds the binaries' invocations in the recipes: shell-like text (scripts, systemd units,
/// Dockerfile, fenced code in Markdown) and YAML (Kubernetes containers, compose services).
enum RecipeScanner {
    static let binaries = ["dit-coordinator", "dit-worker"]
    static let separators: Set<String> = ["&", "&&", "|", "||", ";", ">", "2>", ">>", "<", ")", "2>&1", "#"]

    /// Splits a shell-ish line into words: quotes group and are removed, `\` escapes one
    /// character, separators (`&`, `|`, `;`) end a word.
    static func words(_ line: String) -> [String] {
        var out: [String] = []
        var cur = ""
        var quote: Character?
        var inWord = false
        var it = Array(line)[...]
        while let c = it.popFirst() {
            if let q = quote {
                if c == q { quote = nil } else { cur.append(c) }
                continue
            }
            switch c {
            case "\"", "'": quote = c; inWord = true
            case "\\": if let n = it.popFirst() { cur.append(n); inWord = true }
            case " ", "\t":
                if inWord { out.append(cur); cur = ""; inWord = false }
            case ";", "&", "|":
                if inWord { out.append(cur); cur = ""; inWord = false }
                out.append(String(c))
            default: cur.append(c); inWord = true
            }
        }
        if inWord { out.append(cur) }
        return out
    }

    /// The binary a word names: `dit-worker`, or a path to it (`/usr/local/bin/dit-worker`,
    /// `$BIN/dit-worker`, `.build/release/dit-worker`), but not `deployment/dit-worker`.
    static func binaryName(_ word: String) -> String? {
        let base = (word as NSString).lastPathComponent
        guard binaries.contains(base) else { return nil }
        if word == base { return base }
        return ["/", ".", "$", "~"].contains(where: { word.hasPrefix($0) }) ? base : nil
    }

    /// The invocations in one line of words: each binary word (by its last path component)
    /// and the words after it up to a separator.
    static func invocations(inWords w: [String], source: String) -> [RecipeInvocation] {
        var found: [RecipeInvocation] = []
        for (i, word) in w.enumerated() {
            guard let base = binaryName(word) else { continue }
            // An invocation ends at a separator or where the next one starts.
            var args: [String] = []
            for a in w[(i + 1)...] {
                if separators.contains(a) || binaryName(a) != nil { break }
                args.append(a)
            }
            found.append(RecipeInvocation(binary: base, args: args, source: source))
        }
        return found
    }

    /// Shell-like text: comments count too when they show a command (`# Worker: dit-worker --connect ...`),
    /// since users copy them; continuation lines are joined.
    static func scanText(_ text: String, file: String, markdown: Bool = false) -> [RecipeInvocation] {
        var out: [RecipeInvocation] = []
        var inFence = false
        var pending = ""
        var pendingLine = 0
        for (n, raw) in text.components(separatedBy: "\n").enumerated() {
            if markdown {
                if raw.hasPrefix("```") { inFence.toggle(); continue }
                if !inFence { continue }
            }
            var line = raw
            if pending.isEmpty {
                pendingLine = n + 1
            } else {
                // A continued command inside a comment block: "#   dit-coordinator ... \" / "#       --flag ...".
                line = String(line.drop { $0 == " " || $0 == "\t" || $0 == "#" })
            }
            if line.hasSuffix("\\") {
                line.removeLast()
                pending += line + " "
                continue
            }
            line = pending + line
            pending = ""
            var trimmed = line.trimmingCharacters(in: .whitespaces)
            while trimmed.hasPrefix("#") { trimmed = String(trimmed.dropFirst()).trimmingCharacters(in: .whitespaces) }
            // systemd's `ExecStart=/usr/local/bin/dit-worker ...`: the command after `KEY=`.
            if let eq = trimmed.firstIndex(of: "="), trimmed[..<eq].allSatisfy({ $0.isLetter }) {
                trimmed = String(trimmed[trimmed.index(after: eq)...])
            }
            // Prose may name a binary ("the dit-worker next to ..."): an invocation is `certain` when the
            // binary is the first word, has a path, or follows a label ("Worker:"), a separator or `--`.
            let w = words(trimmed)
            var idx = 0
            for var inv in invocations(inWords: w, source: "\(file):\(pendingLine)") {
                while idx < w.count, binaryName(w[idx]) != inv.binary { idx += 1 }
                let prev = idx == 0 ? "" : w[idx - 1]
                inv.certain = idx == 0 || w[idx].contains("/") || prev.hasSuffix(":") || prev == "--"
                    || separators.contains(prev)
                out.append(inv)
                idx += 1
            }
        }
        return out
    }

    /// YAML: Kubernetes containers (`command` + `args`) and compose services (`entrypoint` +
    /// `command`; without `entrypoint`, the image's: `dit-coordinator`, as deploy/Dockerfile sets).
    static func scanYAML(_ text: String, file: String, compose: Bool) throws -> [RecipeInvocation] {
        var out: [RecipeInvocation] = []
        for doc in try Yams.load_all(yaml: text) {
            walk(doc, path: file, compose: compose, into: &out)
        }
        return out
    }

    private static func strings(_ v: Any?) -> [String]? {
        if let a = v as? [Any] { return a.map { "\($0)" } }
        if let s = v as? String { return words(s) }
        return nil
    }

    private static func walk(_ node: Any, path: String, compose: Bool, into out: inout [RecipeInvocation]) {
        if let m = node as? [String: Any] {
            if m["image"] != nil {
                let argv = compose
                    ? (strings(m["entrypoint"]) ?? ["/usr/local/bin/dit-coordinator"]) + (strings(m["command"]) ?? [])
                    : (strings(m["command"]) ?? []) + (strings(m["args"]) ?? [])
                if let first = argv.first, binaries.contains((first as NSString).lastPathComponent) {
                    out.append(RecipeInvocation(binary: (first as NSString).lastPathComponent, args: Array(argv.dropFirst()),
                                                source: path))
                }
            }
            for (k, v) in m.sorted(by: { $0.key < $1.key }) { walk(v, path: path + "." + k, compose: compose, into: &out) }
        } else if let a = node as? [Any] {
            for (i, v) in a.enumerated() { walk(v, path: path + "[\(i)]", compose: compose, into: &out) }
        }
    }
}

/// The binaries' command tree from their `--help` output (swift-argument-parser's layout).
struct HelpTree {
    let run: ([String]) throws -> String       // args -> help text

    /// Subcommand names listed under SUBCOMMANDS, and which one is the default.
    func subcommands(_ path: [String]) throws -> (names: [String], defaultName: String?) {
        let text = try run(path + ["--help"])
        var names: [String] = []
        var def: String?
        var inSection = false
        for line in text.components(separatedBy: "\n") {
            if line.hasPrefix("SUBCOMMANDS:") { inSection = true; continue }
            guard inSection else { continue }
            if line.trimmingCharacters(in: .whitespaces).isEmpty { if names.isEmpty { continue } else { break } }
            if !line.hasPrefix(" ") { break }
            // Entries are indented two spaces; wrapped abstracts are indented further.
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let name = parts.first else { continue }
            names.append(String(name))
            if line.contains("(default)") { def = String(name) }
        }
        return (names, def)
    }

    /// Flags (`--name`) the command at `path` accepts.
    func flags(_ path: [String]) throws -> Set<String> {
        let text = try run(path + ["--help"])
        let re = try NSRegularExpression(pattern: "(?<![A-Za-z0-9-])--[a-z0-9][a-z0-9-]*")
        var out: Set<String> = ["--help", "-h"]
        // Option lines only ("  -h, --help   Show ..."): the names column, before the abstract,
        // so that a flag merely mentioned in prose does not count.
        for line in text.components(separatedBy: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("-") else { continue }
            let names = t.components(separatedBy: "  ")[0]
            for m in re.matches(in: names, range: NSRange(names.startIndex..., in: names)) {
                if let r = Range(m.range, in: names) { out.insert(String(names[r])) }
            }
        }
        return out
    }
}
