import ArgumentParser
import Foundation
import PipelineTensor

struct BenchGEMM: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gemm", abstract: "sgemm GFLOP/s for one shape.")

    @Option var m = 2048
    @Option var n = 1152
    @Option var k = 1152
    @Option var threads = 2
    @Flag var json = false

    func run() throws {
        Threads.set(threads)
        let r = GEMMBenchmark.measure(m: m, n: n, k: k)
        if json {
            print("{\"m\":\(m),\"n\":\(n),\"k\":\(k),\"gflops\":\(r)}")
        } else {
            print(String(format: "sgemm %dx%dx%d: %.1f GFLOP/s (%d threads)", m, n, k, r, threads))
        }
    }
}
