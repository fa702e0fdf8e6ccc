import Foundation

/// The services the demo starts as child processes, each writing to its own log file.
///
/// One actor owns the `Process` objects; the demo starts services in dependency order and
/// stops them in reverse: SIGTERM first (every service drains and exits on it), SIGKILL
/// after a grace period.
actor ServiceProcesses {
    private struct Running {
        var name: String
        var process: Process
        var log: URL
    }

    private var running: [Running] = []
    private let executables: URL
    private let logs: URL

    /// - Parameters:
    ///   - executables: The folder with the built products (`demo-service`, `order-api`).
    ///   - logs: The folder for one `<name>.log` per service.
    init(executables: URL, logs: URL) {
        self.executables = executables
        self.logs = logs
    }

    /// Starts `product` with `arguments` under the name `name`.
    func start(_ name: String, product: String, arguments: [String], environment: [String: String]) throws {
        let executable = executables.appendingPathComponent(product)
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw DemoError("\(executable.path) is missing: build the package first (swift build)")
        }
        let log = logs.appendingPathComponent("\(name).log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else { throw DemoError("cannot create \(log.path)") }
        let output = try FileHandle(forWritingTo: log)
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        running.append(Running(name: name, process: process, log: log))
    }

    /// Sends `signal` to the running services whose name is in `names` (SIGSTOP pauses them,
    /// SIGCONT lets them go on).
    func signal(_ signal: Int32, to names: Set<String>) {
        for service in running where names.contains(service.name) && service.process.isRunning {
            kill(service.process.processIdentifier, signal)
        }
    }

    /// The running services' names and process ids, in start order.
    func processIDs() -> [(name: String, pid: Int32)] {
        running.filter { $0.process.isRunning }.map { ($0.name, $0.process.processIdentifier) }
    }

    /// Throws when a service has exited although nothing stopped it, with the end of its log.
    func checkAlive() throws {
        guard let dead = running.first(where: { !$0.process.isRunning }) else { return }
        let text = (try? String(contentsOf: dead.log, encoding: .utf8)) ?? ""
        let tail = text.split(separator: "\n").suffix(8).joined(separator: "\n")
        throw DemoError("\(dead.name) exited with status \(dead.process.terminationStatus); the end of \(dead.log.path):\n\(tail)")
    }

    /// Stops every service, last started first, and returns the names of those that did
    /// not exit cleanly (status 0 after SIGTERM).
    @discardableResult
    func stopAll(grace: Duration = .seconds(10)) async -> [String] {
        for service in running.reversed() where service.process.isRunning {
            kill(service.process.processIdentifier, SIGCONT)  // a paused service must run to stop
            kill(service.process.processIdentifier, SIGTERM)
        }
        let deadline = ContinuousClock.now + grace
        while running.contains(where: { $0.process.isRunning }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        var unclean: [String] = []
        for service in running {
            if service.process.isRunning {
                kill(service.process.processIdentifier, SIGKILL)
                service.process.waitUntilExit()
                unclean.append("\(service.name) (killed)")
            } else if service.process.terminationStatus != 0 {
                unclean.append("\(service.name) (status \(service.process.terminationStatus))")
            }
        }
        running = []
        return unclean
    }
}
