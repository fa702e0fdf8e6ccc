import Foundation

/// The CPU time of the processes of a demo run, read from `/proc/<pid>/stat` (Linux).
///
/// A sample is the user plus system time each process used since it started; the difference
/// of two samples over the settled orders is the CPU time per settled order the summary
/// shows, for each service, the broker (the Erlang VM's process) and the demo runner itself.
struct ProcessCPU: Sendable {
    /// A process the run measures.
    struct Process: Sendable, Hashable {
        var name: String
        var pid: Int32
    }

    /// The CPU seconds each process had used when the sample was taken; a process whose
    /// `stat` file cannot be read (not Linux, exited) is left out.
    private(set) var seconds: [Process: Double] = [:]

    /// Samples `processes`.
    init(_ processes: [Process]) {
        for process in processes {
            if let used = Self.cpuSeconds(of: process.pid) { seconds[process] = used }
        }
    }

    /// The CPU seconds used by each process between `earlier` and this sample, in the order of
    /// `processes`; only the processes both samples read.
    func used(since earlier: ProcessCPU, processes: [Process]) -> [(process: Process, seconds: Double)] {
        processes.compactMap { process in
            guard let now = seconds[process], let before = earlier.seconds[process] else { return nil }
            return (process, max(0, now - before))
        }
    }

    /// `utime + stime` of `pid` in seconds, or `nil` when its `stat` file cannot be read.
    static func cpuSeconds(of pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
        return cpuSeconds(statLine: text, ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))))
    }

    /// `utime + stime` in seconds from a `/proc/<pid>/stat` line: fields 14 and 15, counted
    /// after the command name in parentheses (which may contain spaces).
    static func cpuSeconds(statLine: String, ticksPerSecond: Double) -> Double? {
        guard let close = statLine.lastIndex(of: ")"), ticksPerSecond > 0 else { return nil }
        // After ")" come field 3 (state) onwards: utime is field 14, stime field 15.
        let fields = statLine[statLine.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / ticksPerSecond
    }
}
