import Foundation
import HotPathWorkloads

// Runs one workload a given number of times, for an instruction count
// under callgrind where the machine has no hardware counters:
// `Benchmarks/hotpath` runs it for N and 3N runs and divides the
// difference by 2N runs' lines, so start-up and set-up cancel out.
//
//     hotpath-count WORKLOAD RUNS
//     hotpath-count --list
//
// Everything runs on the main thread: the workloads' async calls run as
// one task on ``MainThreadExecutor``, so the program starts no thread
// (valgrind 3.19 stops at the first thread Swift's global executor starts).

/// Runs enqueued jobs on the thread that calls ``runUntilIdle()``.
final class MainThreadExecutor: TaskExecutor, @unchecked Sendable {
    private var jobs: [UnownedJob] = []

    func enqueue(_ job: consuming ExecutorJob) { jobs.append(UnownedJob(job)) }

    func runUntilIdle() {
        while !jobs.isEmpty {
            jobs.removeFirst().runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// What the task leaves for the main thread to print.
final class Outcome: @unchecked Sendable {
    var sink: Int?
}

let arguments = Array(CommandLine.arguments.dropFirst())
let workloads = HotPath.workloads()
if arguments.first == "--list" {
    for workload in workloads { print(workload.name, workload.lines, workload.peerOf ?? "-", workload.summary, separator: "\t") }
} else if arguments.count == 2, let workload = workloads.first(where: { $0.name == arguments[0] }), let runs = Int(arguments[1]), runs >= 0 {
    let executor = MainThreadExecutor()
    let outcome = Outcome()
    Task(executorPreference: executor) {
        var sink = 0
        for _ in 0..<runs { sink &+= await workload.run() }
        outcome.sink = sink
    }
    executor.runUntilIdle()
    guard let sink = outcome.sink else {
        print("hotpath-count: \(workload.name) waited for something that never came (it must not suspend)")
        exit(1)
    }
    print(workload.name, runs, workload.lines * runs, sink, separator: "\t")
} else {
    print("usage: hotpath-count WORKLOAD RUNS | --list   (workloads: \(workloads.map(\.name).joined(separator: " ")))")
    exit(2)
}
