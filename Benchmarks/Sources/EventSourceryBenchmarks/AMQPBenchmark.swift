import EventSourceryRabbitMQ
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
                if let baseline {
                    cRates.append(try runBaseline(baseline, configuration, mode: "publish", count: count, parameter: window).rate)
                }
                let (rate, runLatencies) = try await swiftPublish(configuration, count: count, window: window)
                swiftRates.append(rate)
                latencies += runLatencies
            }
            report("publish window \(window)", count, swiftRates, cRates, latencies)
        }
        var swiftRates: [Double] = []
        var cRates: [Double] = []
        var swiftCPU: [Double] = []
        var cCPU: [Double] = []
        for _ in 0..<repetitions {
            if let baseline {
                let (rate, cpu) = try runBaseline(baseline, configuration, mode: "consume", count: messages, parameter: prefetch)
                cRates.append(rate)
                if let cpu { cCPU.append(cpu) }
            }
            let (rate, cpu) = try await swiftConsume(configuration, count: messages, prefetch: prefetch)
            swiftRates.append(rate)
            swiftCPU.append(cpu)
        }
        report("consume prefetch \(prefetch)", messages, swiftRates, cRates, [])
        print(
            String(format: "  client CPU per consumed message (median): Swift %.1f µs", median(swiftCPU))
                + (cCPU.isEmpty ? "" : String(format: ", C %.1f µs", median(cCPU))))
    }

    // MARK: Swift side

    /// A 600-byte JSON document, as the C baselines' (`make_json_body` in `Benchmarks/baseline.h`).
    private static let body: Data = {
        var text =
            "{\"orderId\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"customer\":\"c-42\",\"amount\":1234.5,\"currency\":\"EUR\",\"note\":\""
        text += String(repeating: "x", count: 598 - text.utf8.count)
        text += "\"}"
        return Data(text.utf8)
    }()

    /// A persistent message with the event wire contract's properties and headers, as the C
    /// baselines publish it (`publish_confirmed` in `Benchmarks/baseline.h`).
    static func message(queue: String, index: Int) -> OutgoingMessage {
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

    /// Returns messages/s and the client process's CPU time per message (µs).
    private func swiftConsume(_ configuration: AMQPConnection.Configuration, count: Int, prefetch: Int) async throws -> (Double, Double) {
        let connection = try await connect(configuration)
        let queue = "bench.swift.consume"
        try await connection.declare(AMQPQueue(name: queue))
        try await connection.purgeQueue(queue)
        let outcomes = try await AMQPPublisher(connection: connection, window: 1000).publish(
            (0..<count).map { Self.message(queue: queue, index: $0) })
        guard outcomes.allSatisfy(\.isConfirmed) else { throw ValidationError("filling the queue failed") }

        let consumerConnection = try await connect(configuration)
        let clock = ContinuousClock()
        let cpuStart = CPUTime.now().seconds
        let start = clock.now
        let consumer = try await consumerConnection.consume(queue: queue, prefetch: UInt16(clamping: prefetch))
        var received = 0
        for try await delivery in consumer.deliveries {
            consumer.ack(delivery)
            received += 1
            if received == count { break }
        }
        let elapsed = clock.now - start
        let cpu = (CPUTime.now().seconds - cpuStart) / Double(count) * 1e6
        await consumer.cancel()
        await consumerConnection.close()
        try await connection.deleteQueue(queue)
        await connection.close()
        return (Double(count) / elapsed.seconds, cpu)
    }

    // MARK: C side

    /// Runs the C program; returns messages/s and, when printed, its CPU time per message (µs).
    private func runBaseline(
        _ path: String, _ configuration: AMQPConnection.Configuration, mode: String, count: Int, parameter: Int
    ) throws -> (rate: Double, cpu: Double?) {
        try CBaseline.run(
            path, host: configuration.host, port: configuration.port, mode: mode, queue: "bench.c.\(mode)", count: count,
            parameter: parameter)
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
        print(
            "  runs: Swift " + swiftRates.map { String(format: "%.0f", $0) }.joined(separator: ", ")
                + (cRates.isEmpty ? "" : "; C " + cRates.map { String(format: "%.0f", $0) }.joined(separator: ", ")))
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    private func printMachineFacts() {
        let cpu =
            (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        print(
            "machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(cpu), \(ProcessInfo.processInfo.physicalMemory / 1_073_741_824) GiB"
        )
        print(
            "broker: \(url.replacingOccurrences(of: #"//[^@]*@"#, with: "//", options: .regularExpression)); persistent 600-byte JSON messages, durable queue"
        )
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
