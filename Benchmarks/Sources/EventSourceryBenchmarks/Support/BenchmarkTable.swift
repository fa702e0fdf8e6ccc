import EventSourceryRabbitMQ
import Foundation

/// Prints the benchmark table.
enum BenchmarkTable {
    static func header() {
        print(
            pad("scenario", 52) + pad("events", 9, right: true) + pad("seconds", 9, right: true)
                + pad("events/s", 11, right: true) + pad("CPU/event", 11, right: true)
                + pad("p50", 11, right: true) + pad("p99", 11, right: true))
    }

    /// Prints a row: `events` items in `elapsed`, the process's CPU time per item (all
    /// threads, so it can exceed the wall time per item), and latency percentiles.
    static func line(_ name: String, events: Int, elapsed: Duration, cpu: Duration? = nil, latencies: [Duration]) {
        let elapsedSeconds = elapsed.seconds
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> String {
            guard !sorted.isEmpty else { return "-" }
            return format(sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))])
        }
        print(
            pad(name, 52) + pad("\(events)", 9, right: true) + pad(String(format: "%.3f", elapsedSeconds), 9, right: true)
                + pad("\(Int((Double(events) / elapsedSeconds).rounded()))", 11, right: true)
                + pad(cpu.map { format($0 / max(events, 1)) } ?? "-", 11, right: true)
                + pad(percentile(0.5), 11, right: true) + pad(percentile(0.99), 11, right: true))
    }

    private static func format(_ duration: Duration) -> String {
        let value = duration.seconds
        if value >= 1 { return String(format: "%.2f s", value) }
        if value >= 0.001 { return String(format: "%.2f ms", value * 1e3) }
        return String(format: "%.1f µs", value * 1e6)
    }

    private static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return right ? padding + text : text + padding
    }
}

/// CPU time of the whole process (all threads).
enum CPUTime {
    static func now() -> Duration {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
    }
}
