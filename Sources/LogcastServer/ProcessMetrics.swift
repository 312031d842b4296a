import Foundation
import Glibc

/// The usual `process_*` values of a Prometheus client, read from `/proc`
/// when `/metrics` is scraped.
struct ProcessMetrics: Equatable, Sendable {
    var cpuSeconds: Double
    var startTimeSeconds: Double
    var residentBytes: Double
    var virtualBytes: Double
    var threads: Double
    var openDescriptors: Double?
    var maxDescriptors: Double?

    /// The fields of `/proc/PID/stat` this needs (proc(5)): counted from the
    /// state after the command name, which is in parentheses and may hold
    /// spaces and parentheses itself, so the split is at the last `)`.
    struct Stat: Equatable {
        /// User and system time, in clock ticks.
        var utime: UInt64
        var stime: UInt64
        var threads: UInt64
        /// Ticks after boot when the process started.
        var startTicks: UInt64
        var virtualBytes: UInt64
        var residentPages: UInt64

        init?(_ text: String) {
            guard let close = text.lastIndex(of: ")") else { return nil }
            let fields = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
            // fields[0] is field 3 (state) of proc(5).
            func field(_ number: Int) -> UInt64? {
                let index = number - 3
                guard index < fields.count else { return nil }
                return UInt64(fields[index].trimmingCharacters(in: .whitespacesAndNewlines))
            }
            guard let utime = field(14), let stime = field(15), let threads = field(20), let start = field(22),
                let virtual = field(23), let resident = field(24)
            else { return nil }
            self.utime = utime
            self.stime = stime
            self.threads = threads
            self.startTicks = start
            self.virtualBytes = virtual
            self.residentPages = resident
        }
    }

    /// The boot time (`btime`) of `/proc/stat`, in seconds since the epoch.
    static func bootTime(procStat text: String) -> UInt64? {
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return UInt64(line.dropFirst("btime ".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    init(stat: Stat, bootTime: UInt64, ticksPerSecond: UInt64, pageSize: UInt64, openDescriptors: Int?, maxDescriptors: UInt64?) {
        let ticks = Double(max(ticksPerSecond, 1))
        cpuSeconds = Double(stat.utime + stat.stime) / ticks
        startTimeSeconds = Double(bootTime) + Double(stat.startTicks) / ticks
        residentBytes = Double(stat.residentPages * pageSize)
        virtualBytes = Double(stat.virtualBytes)
        threads = Double(stat.threads)
        self.openDescriptors = openDescriptors.map { Double($0) }
        self.maxDescriptors = maxDescriptors.map { Double($0) }
    }

    /// This process now, or nil when `/proc` cannot be read.
    static func current() -> ProcessMetrics? {
        guard let statText = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8), let stat = Stat(statText),
            let procStat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let boot = bootTime(procStat: procStat)
        else { return nil }
        var limit = rlimit()
        let maxDescriptors = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? UInt64(limit.rlim_cur) : nil
        // The listing's own descriptor is among the entries; it is not counted.
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")).map { max($0.count - 1, 0) }
        return ProcessMetrics(
            stat: stat,
            bootTime: boot,
            ticksPerSecond: UInt64(sysconf(Int32(_SC_CLK_TCK))),
            pageSize: UInt64(sysconf(Int32(_SC_PAGESIZE))),
            openDescriptors: open,
            maxDescriptors: maxDescriptors
        )
    }

    /// The samples, under the names of ``MetricsCatalog``.
    var samples: [MetricSample] {
        var samples = [
            MetricSample(name: "process_cpu_seconds_total", kind: .counter, value: cpuSeconds),
            MetricSample(name: "process_start_time_seconds", kind: .gauge, value: startTimeSeconds),
            MetricSample(name: "process_resident_memory_bytes", kind: .gauge, value: residentBytes),
            MetricSample(name: "process_virtual_memory_bytes", kind: .gauge, value: virtualBytes),
            MetricSample(name: "process_threads", kind: .gauge, value: threads),
        ]
        if let openDescriptors { samples.append(MetricSample(name: "process_open_fds", kind: .gauge, value: openDescriptors)) }
        if let maxDescriptors { samples.append(MetricSample(name: "process_max_fds", kind: .gauge, value: maxDescriptors)) }
        return samples
    }
}
