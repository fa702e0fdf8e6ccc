import AMQPClient
import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// AMQP client benchmarks against a real broker: publish with confirms at several windows and
/// consume + ack at a prefetch, each beside a plain C program that uses rabbitmq-c the same
/// way (`Benchmarks/amqp-baseline.c`, built by `scripts/bench-amqp`), measured in the same run.
///
/// Messages are persistent 600-byte JSON bodies with the event wire contract's properties and
/// headers, published to a durable queue through the default exchange.
struct AMQPBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "amqp",
        abstract: "AMQP publish-with-confirms and consume+ack throughput, Swift wrapper vs plain rabbitmq-c."
    )

    @Option(help: "Broker URL (default: $AMQP_URL, else the private test node).")
    var url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5673/"

    @Option(help: "Messages per publish run at windows above 1, and per consume run.")
    var messages = 20_000

    @Option(help: "Messages per publish run at window 1 (each waits for its own confirm, an fsync).")
    var windowOneMessages = 2_000

    @Option(parsing: .upToNextOption, help: "Confirm windows to measure.")
    var windows: [Int] = [1, 100, 1000]

    @Option(help: "Prefetch for the consume + ack scenario.")
    var prefetch = 500

    @Option(help: "Runs per scenario and side; the median is reported.")
    var repetitions = 3

    @Option(help: "Path of the compiled C baseline; without it only the Swift side runs.")
    var baseline: String?

    func run() async throws {
        let configuration = try AMQPConnection.Configuration(url: url)
        printMachineFacts()
        print("scenario              messages  Swift msg/s   C msg/s  Swift/C  Swift p50 ms  Swift p99 ms")
        for window in windows {
            let count = window == 1 ? windowOneMessages : messages
            var swiftRates: [Double] = []
            var cRates: [Double] = []
            var latencies: [Duration] = []
            for _ in 0..<repetitions {
                if let baseline { cRates.append(try runBaseline(baseline, configuration, mode: "publish", count: count, parameter: window)) }
                let (rate, runLatencies) = try await swiftPublish(configuration, count: count, window: window)
                swiftRates.append(rate)
                latencies += runLatencies
            }
            report("publish window \(window)", count, swiftRates, cRates, latencies)
        }
        var swiftRates: [Double] = []
        var cRates: [Double] = []
        var consumeCPU: [Double] = []
        for _ in 0..<repetitions {
            if let baseline { cRates.append(try runBaseline(baseline, configuration, mode: "consume", count: messages, parameter: prefetch)) }
            swiftRates.append(try await swiftConsume(configuration, count: messages, prefetch: prefetch))
            consumeCPU.append(lastConsumeCPU)
        }
        report("consume prefetch \(prefetch)", messages, swiftRates, cRates, [])
        print(String(format: "  client CPU per consumed message (median): Swift %.1f µs, C %.1f µs", median(consumeCPU), median(Self.baselineConsumeCPU)))
    }

    // MARK: Swift side

    private static let body: Data = {
        var text = "{\"orderId\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"customer\":\"c-42\",\"amount\":1234.5,\"currency\":\"EUR\",\"note\":\""
        text += String(repeating: "x", count: 598 - text.utf8.count)
        text += "\"}"
        return Data(text.utf8)
    }()

    private static func message(queue: String, index: Int) -> OutgoingMessage {
        OutgoingMessage(
            exchange: "",
            routingKey: queue,
            body: body,
            properties: AMQPProperties(
                contentType: "application/json",
                headers: [
                    "x-stream-id": "order-0f8fad5b",
                    "x-stream-version": .int64(Int64(index + 1)),
                    "x-causation-id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                    "x-schema-version": .int32(1),
                    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ],
                correlationId: "9b2c4f1e-8a8e-4d5c-9d8e-2f1b6c7d8e9f",
                messageId: String(format: "00000000-0000-4000-8000-%012d", index),
                timestamp: Date(),
                type: "OrderPlaced",
                appId: "order"
            )
        )
    }

    private func connect(_ configuration: AMQPConnection.Configuration) async throws -> AMQPConnection {
        let connection = AMQPConnection(configuration: configuration)
        try await connection.connect()
        return connection
    }

    private func swiftPublish(_ configuration: AMQPConnection.Configuration, count: Int, window: Int) async throws -> (Double, [Duration]) {
        let connection = try await connect(configuration)
        let queue = "bench.swift.publish"
        try await connection.declare(AMQPQueue(name: queue))
        try await connection.purgeQueue(queue)
        let publisher = AMQPPublisher(connection: connection, window: window)
        let clock = ContinuousClock()
        let start = clock.now
        let messages = (0..<count).map { Self.message(queue: queue, index: $0) }
        let (outcomes, latencies) = try await publisher.publishMeasured(messages, measureLatency: true)
        let elapsed = clock.now - start
        let confirmed = outcomes.filter(\.isConfirmed).count
        guard confirmed == count else {
            throw ValidationError("only \(confirmed) of \(count) messages were confirmed")
        }
        try await connection.deleteQueue(queue)
        await connection.close()
        return (Double(count) / elapsed.seconds, latencies)
    }

    private func swiftConsume(_ configuration: AMQPConnection.Configuration, count: Int, prefetch: Int) async throws -> Double {
        let connection = try await connect(configuration)
        let queue = "bench.swift.consume"
        try await connection.declare(AMQPQueue(name: queue))
        try await connection.purgeQueue(queue)
        let outcomes = try await AMQPPublisher(connection: connection, window: 1000).publish((0..<count).map { Self.message(queue: queue, index: $0) })
        guard outcomes.allSatisfy(\.isConfirmed) else { throw ValidationError("filling the queue failed") }

        let consumerConnection = try await connect(configuration)
        let clock = ContinuousClock()
        let cpuStart = Self.processCPUTime()
        let start = clock.now
        let consumer = try await consumerConnection.consume(queue: queue, prefetch: UInt16(clamping: prefetch))
        var received = 0
        for try await delivery in consumer.deliveries {
            consumer.ack(delivery)
            received += 1
            if received == count { break }
        }
        let elapsed = clock.now - start
        lastConsumeCPU = (Self.processCPUTime() - cpuStart) / Double(count) * 1e6
        await consumer.cancel()
        await consumerConnection.close()
        try await connection.deleteQueue(queue)
        await connection.close()
        return Double(count) / elapsed.seconds
    }

    // MARK: C side

    private func runBaseline(_ path: String, _ configuration: AMQPConnection.Configuration, mode: String, count: Int, parameter: Int) throws -> Double {
        let output = try spawn(path, [mode, configuration.host, "\(configuration.port)", "bench.c.\(mode)", "\(count)", "\(parameter)"])
        let fields = output.split(whereSeparator: \.isWhitespace)
        guard let field = fields.first(where: { $0.hasPrefix("rate=") }), let rate = Double(field.dropFirst(5)) else {
            throw ValidationError("unexpected output from the C baseline: \(output)")
        }
        if mode == "consume", let cpu = fields.first(where: { $0.hasPrefix("cpu_us_per_message=") }).flatMap({ Double($0.dropFirst(19)) }) {
            Self.baselineConsumeCPU.append(cpu)
        }
        return rate
    }

    /// Client-process CPU per consumed message of the C runs, µs.
    private nonisolated(unsafe) static var baselineConsumeCPU: [Double] = []

    /// Runs a program and returns its standard output (posix_spawn + waitpid).
    private func spawn(_ executable: String, _ arguments: [String]) throws -> String {
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

    // MARK: Reporting

    private func report(_ scenario: String, _ count: Int, _ swiftRates: [Double], _ cRates: [Double], _ latencies: [Duration]) {
        let swift = median(swiftRates)
        let c = cRates.isEmpty ? nil : median(cRates)
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> String {
            guard !sorted.isEmpty else { return "-" }
            let index = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)
            return String(format: "%.2f", sorted[max(0, index)].seconds * 1000)
        }
        let cText = c.map { String(format: "%9.0f", $0) } ?? "        -"
        let ratio = c.map { String(format: "%6.0f%%", swift / $0 * 100) } ?? "      -"
        print(
            scenario.padding(toLength: 22, withPad: " ", startingAt: 0)
                + String(format: "%8d  %11.0f", count, swift) + " \(cText)  \(ratio)  "
                + percentile(0.5).leftPadded(12) + "  " + percentile(0.99).leftPadded(12)
        )
        print("  runs: Swift " + swiftRates.map { String(format: "%.0f", $0) }.joined(separator: ", ")
            + (cRates.isEmpty ? "" : "; C " + cRates.map { String(format: "%.0f", $0) }.joined(separator: ", ")))
    }

    /// Client-process CPU time (user + system) per message of the last Swift consume run, µs.
    private nonisolated(unsafe) static var lastConsumeCPUStorage = 0.0
    private var lastConsumeCPU: Double {
        get { Self.lastConsumeCPUStorage }
        nonmutating set { Self.lastConsumeCPUStorage = newValue }
    }

    private static func processCPUTime() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    private func printMachineFacts() {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(cpu), \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB")
        print("broker: \(url.replacingOccurrences(of: #"//[^@]*@"#, with: "//", options: .regularExpression)); persistent 600-byte JSON messages, durable queue")
    }
}

extension Duration {
    fileprivate var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
