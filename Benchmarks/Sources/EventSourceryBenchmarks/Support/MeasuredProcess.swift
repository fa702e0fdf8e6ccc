import ArgumentParser
import Foundation

/// Runs an executable to completion and reports its wall time and peak resident memory.
enum MeasuredProcess {
    struct Result {
        var status: Int32
        var elapsed: Duration
        /// Peak resident set size (`VmHWM`, sampled every 20 ms until exit), in KiB.
        var maximumResidentKiB: Int
    }

    static func run(_ executable: String, _ arguments: [String], environment: [String: String]) throws -> Result {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var merged = ProcessInfo.processInfo.environment
        merged.merge(environment) { _, new in new }
        let envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in envp { free(pointer) } }
        let start = ContinuousClock.now
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard spawned == 0 else { throw ValidationError("could not run \(executable): error \(spawned)") }
        // `ru_maxrss` from wait4 can count the parent's pages the child shared before exec,
        // so the peak is read from the child's own /proc entry while it runs.
        var status: Int32 = 0
        var peak = 0
        while true {
            peak = max(peak, highWaterMarkKiB(of: pid) ?? 0)
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid || (result == -1 && errno != EINTR) { break }
            usleep(20_000)
        }
        return Result(status: (status >> 8) & 0xff, elapsed: ContinuousClock.now - start, maximumResidentKiB: peak)
    }

    private static func highWaterMarkKiB(of pid: pid_t) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return nil }
        return Int(line.split(whereSeparator: \.isWhitespace).dropFirst().first ?? "")
    }
}
