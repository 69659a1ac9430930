import Foundation
import XCTest
import Yams

/// Static checks of deploy/: the YAML parses and hangs together, the scripts pass `bash -n` and
/// shellcheck, every `dit-coordinator` / `dit-worker` subcommand and flag a recipe (or the
/// README's code) uses exists in the built binaries' `--help`, and the Debian package list is
/// the one source CI, the Dockerfile and the README use.
final class DeployRecipeTests: ProcessTestCase {
    static let root = MultiHostNetnsTests.repoRoot

    private func read(_ rel: String) throws -> String {
        try String(contentsOfFile: Self.root + "/" + rel, encoding: .utf8)
    }

    /// Files under a repository folder (recursive), relative to the root, sorted.
    private func files(under rel: String, suffixes: [String]) -> [String] {
        let e = FileManager.default.enumerator(atPath: Self.root + "/" + rel)
        var out: [String] = []
        while let p = e?.nextObject() as? String {
            if suffixes.contains(where: { p.hasSuffix($0) }) { out.append(rel + "/" + p) }
        }
        return out.sorted()
    }

    // MARK: YAML

    func testKubernetesAndComposeYAMLParseAndHangTogether() throws {
        let manifests = files(under: "deploy/k8s", suffixes: [".yaml", ".yml"])
        XCTAssertGreaterThanOrEqual(manifests.count, 4, "\(manifests)")
        var docs: [(file: String, doc: [String: Any])] = []
        for f in manifests {
            let loaded = try Yams.load_all(yaml: try read(f))
            var n = 0
            for case let d? in loaded {
                guard let m = d as? [String: Any] else { XCTFail("\(f): a document that is not a mapping"); continue }
                XCTAssertNotNil(m["apiVersion"] as? String, "\(f): apiVersion")
                XCTAssertNotNil(m["kind"] as? String, "\(f): kind")
                XCTAssertNotNil((m["metadata"] as? [String: Any])?["name"] as? String, "\(f): metadata.name")
                docs.append((f, m))
                n += 1
            }
            XCTAssertGreaterThan(n, 0, "\(f) holds no document")
        }
        func named(_ kind: String) -> [String: [String: Any]] {
            var out: [String: [String: Any]] = [:]
            for (_, d) in docs where d["kind"] as? String == kind {
                if let name = (d["metadata"] as? [String: Any])?["name"] as? String { out[name] = d }
            }
            return out
        }
        let pvcs = named("PersistentVolumeClaim"), secrets = named("Secret")
        let services = named("Service"), sets = named("StatefulSet"), deployments = named("Deployment")

        // The coordinator: a one-replica StatefulSet with a ledger volume claim, behind a Service.
        let sts = try XCTUnwrap(sets["dit-coordinator"], "StatefulSet dit-coordinator")
        let stsSpec = try XCTUnwrap(sts["spec"] as? [String: Any])
        XCTAssertEqual(stsSpec["replicas"] as? Int, 1)
        let claims = (stsSpec["volumeClaimTemplates"] as? [[String: Any]]) ?? []
        XCTAssertTrue(claims.contains { ($0["metadata"] as? [String: Any])?["name"] as? String == "ledger" }, "ledger PVC template")
        let svc = try XCTUnwrap(services["dit-coordinator"], "Service dit-coordinator")
        let selector = (svc["spec"] as? [String: Any])?["selector"] as? [String: String]
        let stsLabels = ((stsSpec["template"] as? [String: Any])?["metadata"] as? [String: Any])?["labels"] as? [String: String]
        XCTAssertNotNil(selector)
        XCTAssertEqual(selector, stsLabels, "the Service selects the coordinator pod")

        // Workers: a Deployment with a grace period long enough to abandon and report a shard.
        let workers = try XCTUnwrap(deployments["dit-worker"], "Deployment dit-worker")
        let workerPod = try XCTUnwrap(((workers["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        XCTAssertGreaterThanOrEqual(workerPod["terminationGracePeriodSeconds"] as? Int ?? 0, 60)

        // The shared volume is ReadWriteMany; every claim and secret a pod uses is defined.
        let data = try XCTUnwrap(pvcs["dit-data"], "PVC dit-data")
        XCTAssertEqual((data["spec"] as? [String: Any])?["accessModes"] as? [String], ["ReadWriteMany"])
        for pod in [workerPod, try XCTUnwrap((stsSpec["template"] as? [String: Any])?["spec"] as? [String: Any])] {
            for v in (pod["volumes"] as? [[String: Any]]) ?? [] {
                if let claim = (v["persistentVolumeClaim"] as? [String: Any])?["claimName"] as? String {
                    XCTAssertNotNil(pvcs[claim], "claim \(claim) is defined")
                }
                if let s = v["secret"] as? [String: Any], let name = s["secretName"] as? String {
                    let secret = try XCTUnwrap(secrets[name], "Secret \(name) is defined (template)")
                    let keys = Set(((secret["stringData"] as? [String: Any]) ?? [:]).keys)
                    for item in (s["items"] as? [[String: Any]]) ?? [] {
                        XCTAssertTrue(keys.contains(item["key"] as? String ?? ""), "secret key \(item)")
                    }
                }
            }
        }

        // compose: a coordinator and workers sharing one data volume.
        let compose = try XCTUnwrap(try Yams.load(yaml: try read("deploy/compose/compose.yaml")) as? [String: Any])
        let composeServices = try XCTUnwrap(compose["services"] as? [String: Any])
        XCTAssertNotNil(composeServices["coordinator"])
        XCTAssertNotNil(composeServices["worker"])
        let volumes = Set(((compose["volumes"] as? [String: Any]) ?? [:]).keys)
        for (name, s) in composeServices {
            for v in ((s as? [String: Any])?["volumes"] as? [String]) ?? [] {
                let source = String(v.split(separator: ":")[0])
                if !source.hasPrefix(".") && !source.hasPrefix("/") {
                    XCTAssertTrue(volumes.contains(source), "compose service \(name): volume \(source) is declared")
                }
            }
        }
    }

    // MARK: scripts

    private func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    private func runTool(_ path: String, _ args: [String]) throws -> (Int32, String) {
        try ProcessCapture.run(path, args, cwd: Self.root)
    }

    private var shellScripts: [String] {
        files(under: "deploy", suffixes: [".sh", ".sbatch"]) + files(under: "scripts", suffixes: [".sh"]) + [".ci/run"]
    }

    func testShellScriptsPassBashSyntaxCheck() throws {
        let scripts = shellScripts
        XCTAssertTrue(scripts.contains("deploy/slurm/dit-job.sbatch"))
        XCTAssertTrue(scripts.contains("deploy/test/netns-lab.sh"))
        for s in scripts {
            let (status, out) = try runTool("/bin/bash", ["-n", s])
            XCTAssertEqual(status, 0, "bash -n \(s): \(out)")
        }
    }

    func testShellScriptsPassShellcheck() throws {
        guard let shellcheck = which("shellcheck") else {
            throw XCTSkip("shellcheck not installed (Debian package `shellcheck`, in deploy/debian-packages.txt): scripts not linted")
        }
        for s in shellScripts {
            let (status, out) = try runTool(shellcheck, ["--shell=bash", "--external-sources", s])
            XCTAssertEqual(status, 0, "shellcheck \(s):\n\(out)")
        }
    }

    // MARK: commands

    private var helpCache: [[String]: String] = [:]

    private lazy var help = HelpTree { [unowned self] args in
        if let h = self.helpCache[args] { return h }
        let (status, out) = try self.runToEnd(args[0], Array(args.dropFirst()), timeout: 30)
        guard status == 0 else { throw CocoaError(.featureUnsupported, userInfo: [NSLocalizedDescriptionKey: "\(args): \(out)"]) }
        self.helpCache[args] = out
        return out
    }

    /// Checks one invocation's subcommands and flags; returns false for prose that only names a binary.
    @discardableResult
    private func check(_ inv: RecipeInvocation) throws -> Bool {
        var path = [inv.binary]
        var args = inv.args[...]
        while let next = args.first, !next.hasPrefix("-"), !RecipeInvocation.isVariable(next) {
            let subs = try help.subcommands(path)
            if subs.names.isEmpty { break }   // a leaf: the rest are arguments
            guard subs.names.contains(next) else {
                if !inv.certain && path.count == 1 { return false }
                XCTFail("\(inv): `\(next)` is not a subcommand of `\(path.joined(separator: " "))` (\(subs.names))")
                return true
            }
            path.append(next)
            args.removeFirst()
        }
        if !inv.certain && path.count == 1 && !(args.first?.hasPrefix("--") ?? false) { return false }
        var flagSets: [Set<String>] = []
        let subs = try help.subcommands(path)
        if subs.names.isEmpty {
            flagSets = [try help.flags(path)]
        } else if let first = args.first, RecipeInvocation.isVariable(first) {
            // The subcommand comes from a variable (`submit "$@"`): every one must take the flags.
            args.removeFirst()
            flagSets = try subs.names.filter { $0 != "help" }.map { try help.flags(path + [$0]) }
        } else if let d = subs.defaultName {
            flagSets = [try help.flags(path + [d])]
        } else {
            XCTAssertTrue(args.allSatisfy { $0 == "--help" || $0 == "-h" }, "\(inv): no subcommand of `\(path.joined(separator: " "))`")
            return true
        }
        for a in args where a.hasPrefix("--") {
            let flag = String(a.split(separator: "=", maxSplits: 1)[0])
            for set in flagSets { XCTAssertTrue(set.contains(flag), "\(inv): `\(path.joined(separator: " "))` has no flag \(flag)") }
        }
        return true
    }

    func testEveryCommandTheRecipesCallExists() throws {
        var invocations: [RecipeInvocation] = []
        for f in files(under: "deploy/k8s", suffixes: [".yaml", ".yml"]) {
            invocations += try RecipeScanner.scanYAML(try read(f), file: f, compose: false)
        }
        invocations += try RecipeScanner.scanYAML(try read("deploy/compose/compose.yaml"), file: "deploy/compose/compose.yaml",
                                                  compose: true)
        let textFiles = shellScripts + files(under: "deploy/systemd", suffixes: [".service"])
            + ["deploy/Dockerfile", "deploy/compose/compose.yaml"] + files(under: "deploy/k8s", suffixes: [".yaml"])
        for f in textFiles { invocations += RecipeScanner.scanText(try read(f), file: f) }
        for f in ["README.md", "deploy/README.md"] {
            invocations += RecipeScanner.scanText(try read(f), file: f, markdown: true)
        }
        var checked = 0
        for inv in invocations where try check(inv) { checked += 1 }
        // The recipes' essential commands were all seen (and so checked).
        let seen = Set(invocations.filter(\.certain).map { "\($0.binary) \($0.args.first ?? "")" })
        for must in ["dit-coordinator serve", "dit-coordinator submit", "dit-coordinator keygen", "dit-coordinator status",
                     "dit-worker --connect"] {
            XCTAssertTrue(seen.contains(must), "no `\(must)` found in the recipes: \(seen.sorted())")
        }
        XCTAssertGreaterThan(checked, 20, "invocations checked")
    }

    /// The scanner itself: a wrong flag or subcommand is caught, prose is not taken for a command.
    func testCommandCheckCatchesWrongFlagsAndSubcommands() throws {
        let text = """
        "$BIN/dit-worker" --connect "$endpoint" --exit-when-idle
        dit-coordinator serv --ledger x
        # the dit-worker next to dit-coordinator
        ExecStart=/usr/local/bin/dit-coordinator serve --ledger /var/lib/dit/l.sqlite --bind tcp://*:5555
        #   kubectl exec dit-coordinator-0 -- dit-coordinator submit synthetic --out /data/out \\
        #       --items 100 --ledger /l.sqlite
        kubectl scale deployment/dit-worker --replicas=3
        """
        let invs = RecipeScanner.scanText(text, file: "sample")
        XCTAssertEqual(invs.filter(\.certain).map(\.binary), ["dit-worker", "dit-coordinator", "dit-coordinator", "dit-coordinator"])
        XCTAssertEqual(invs.last?.args, ["submit", "synthetic", "--out", "/data/out", "--items", "100", "--ledger", "/l.sqlite"])
        XCTAssertEqual(invs[0].args, ["--connect", "$endpoint", "--exit-when-idle"])
        let flags = try help.flags([invs[0].binary, "connect"])
        XCTAssertTrue(flags.contains("--connect"))
        XCTAssertFalse(flags.contains("--exit-when-idle"))
        XCTAssertFalse(try help.subcommands(["dit-coordinator"]).names.contains("serv"))
        XCTAssertTrue(try help.flags(["dit-coordinator", "serve"]).isSuperset(of: ["--ledger", "--bind", "--keys", "--exit-when-done"]))
        XCTAssertEqual(try help.subcommands(["dit-worker"]).defaultName, "connect")
        XCTAssertTrue(try help.subcommands(["dit-coordinator", "submit"]).names.contains("synthetic"))
        let prose = invs.filter { !$0.certain }
        XCTAssertFalse(prose.isEmpty)
        for p in prose { XCTAssertFalse(try check(p), "prose taken for a command: \(p)") }
        XCTAssertEqual(RecipeScanner.words(#"a "b c" 'd' e\ f g&h"#), ["a", "b c", "d", "e f", "g", "&", "h"])
    }

    // MARK: the one package list

    func testDebianPackageListIsTheOneSource() throws {
        let list = try read("deploy/debian-packages.txt").split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        XCTAssertTrue(list.contains("shellcheck"))
        XCTAssertTrue(list.allSatisfy { $0.range(of: "^[a-z0-9][a-z0-9+.-]+$", options: .regularExpression) != nil }, "\(list)")
        XCTAssertTrue(try read("scripts/install-deps.sh").contains("deploy/debian-packages.txt"))
        XCTAssertTrue(try read(".ci/run").contains("scripts/install-deps.sh"))
        let docker = try read("deploy/Dockerfile")
        XCTAssertTrue(docker.contains("deploy/debian-packages.txt") && docker.contains("install-deps.sh"))
        XCTAssertFalse(docker.contains("apt-get install"), "the Dockerfile installs packages only through the list")
        XCTAssertTrue(try read("README.md").contains("deploy/debian-packages.txt"))
        XCTAssertTrue(try read("README.md").contains("deploy/README.md"), "the README links deploy/README.md")
    }
}
