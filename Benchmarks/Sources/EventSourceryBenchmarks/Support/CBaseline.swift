import ArgumentParser
import Foundation

/// The C baselines of the benchmarks (`Benchmarks/amqp-baseline.c`: rabbitmq-c used
/// directly; `Benchmarks/consumer-baseline.c`: the context consumer's work in C), run as a
/// child process in the same benchmark run.
enum CBaseline {
    /// Runs `amqp-baseline <mode> <host> <port> <queue> <count> <parameter>` and returns its
    /// messages/s and, when printed, its CPU time per message in µs.
    static func run(
        _ path: String, host: String, port: Int, mode: String, queue: String, count: Int, parameter: Int
    ) throws -> (rate: Double, cpu: Double?) {
        try run(path, arguments: [mode, host, "\(port)", queue, "\(count)", "\(parameter)"])
    }

    /// Runs a baseline with `arguments` and returns the messages/s and, when printed, the CPU
    /// time per message in µs of its output line (`rate=… cpu_us_per_message=…`).
    static func run(_ path: String, arguments: [String]) throws -> (rate: Double, cpu: Double?) {
        let output = try output(path, arguments)
        guard let rate = field("rate", in: output) else {
            throw ValidationError("unexpected output from the C baseline: \(output)")
        }
        return (rate, field("cpu_us_per_message", in: output))
    }

    /// The number after `<name>=` in a baseline's output line, if any.
    static func field(_ name: String, in output: String) -> Double? {
        let prefix = name + "="
        return output.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
    }

    /// Runs a program and returns its standard output (posix_spawn + waitpid).
    static func output(_ executable: String, _ arguments: [String]) throws -> String {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw ValidationError("pipe failed") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        close(fds[1])
        guard spawned == 0 else {
            close(fds[0])
            throw ValidationError("could not run \(executable): error \(spawned)")
        }
        var output = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while case let count = read(fds[0], &buffer, buffer.count), count > 0 {
            output.append(contentsOf: buffer[0..<count])
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        guard status == 0 else { throw ValidationError("\(executable) \(arguments.joined(separator: " ")) failed (status \(status))") }
        return String(decoding: output, as: UTF8.self)
    }
}
