import Benchmark
import HotPathWorkloads

/// Each workload as a benchmark: one iteration is one run over the corpus
/// (its `lines` lines); `Benchmarks/hotpath` divides by the lines.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .instructions, .mallocCountTotal],
        // Nanoseconds: the exported samples are then raw (no unit conversion for any metric).
        timeUnits: .nanoseconds,
        // Counts as counts, not rounded to thousands.
        units: [.mallocCountTotal: .count, .instructions: .count],
        warmupIterations: 2,
        maxDuration: .seconds(2),
        maxIterations: 200
    )
    for workload in HotPath.workloads() {
        Benchmark(workload.name) { benchmark async in
            for _ in benchmark.scaledIterations {
                blackHole(await workload.run())
            }
        }
    }
}
