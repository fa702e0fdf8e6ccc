public import Foundation

/// A child process for tests: started with `posix_spawn`, its output captured in temporary
/// files, its exit awaited on a dispatch thread (never on the cooperative pool).
///
/// Foundation's `Process` on Linux sometimes never reports the exit of a script that
/// daemonizes a server, so tests spawn processes themselves.
public final class ChildProcess: Sendable {
    /// How a process ended.
    public struct Result: Sendable {
        /// The exit status, or 128 + the signal number when a signal ended it.
        public var status: Int32
        public var standardOutput: String
        public var standardError: String
    }

    /// A process that could not be started.
    public struct SpawnError: Error, CustomStringConvertible {
        public var command: String
        public var errno: Int32
        public var description: String { "cannot start \(command): \(String(cString: strerror(errno)))" }
    }

    /// The process id.
    public let pid: pid_t
    private let outputPath: String
    private let errorPath: String

    private init(pid: pid_t, outputPath: String, errorPath: String) {
        self.pid = pid
        self.outputPath = outputPath
        self.errorPath = errorPath
    }

    /// Starts `executable` with `arguments`; `environment` entries are added to this process's environment.
    public static func start(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> ChildProcess {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString)").path
        let outputPath = base + ".out"
        let errorPath = base + ".err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var environmentEntries = ProcessInfo.processInfo.environment
        environmentEntries.merge(environment) { _, new in new }
        let envp: [UnsafeMutablePointer<CChar>?] = environmentEntries.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in envp { free(pointer) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        guard status == 0 else { throw SpawnError(command: executable, errno: status) }
        return ChildProcess(pid: pid, outputPath: outputPath, errorPath: errorPath)
    }

    /// Runs `executable` to completion.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> Result {
        try await start(executable, arguments, environment: environment).wait()
    }

    /// What the process wrote to standard error so far.
    public var standardErrorSoFar: String {
        (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
    }

    /// Sends `signal` to the process.
    public func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Waits for the process to exit and returns its status and output.
    public func wait() async throws -> Result {
        let pid = self.pid
        let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            DispatchQueue.global().async {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                let exited = (status & 0x7f) == 0
                continuation.resume(returning: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f))
            }
        }
        defer {
            try? FileManager.default.removeItem(atPath: outputPath)
            try? FileManager.default.removeItem(atPath: errorPath)
        }
        return Result(
            status: status,
            standardOutput: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "",
            standardError: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        )
    }
}

/// Paths of the package's built executables, next to the running test bundle.
public enum BuiltProducts {
    /// The directory the test bundle was built into, such as `.build/debug`.
    public static var directory: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    }

    /// The path of the executable product `name`.
    public static func path(_ name: String) -> String {
        directory.appendingPathComponent(name).path
    }
}
