import ArgumentParser
import Foundation

/// Runs an executable to completion and reports its wall time and peak resident memory.
enum MeasuredProcess {
    struct Result {
        var status: Int32
        var elapsed: Duration
        /// Peak resident set size (`ru_maxrss`), in KiB.
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
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) == -1 && errno == EINTR {}
        return Result(status: (status >> 8) & 0xff, elapsed: ContinuousClock.now - start, maximumResidentKiB: usage.ru_maxrss)
    }
}
