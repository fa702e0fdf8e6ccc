import EventSourceryRabbitMQ
import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The broker's own CPU time per message of the flow's kind of traffic — persistent messages
/// with the event wire contract's properties and headers, published with confirms into a quorum queue while another connection consumes and acks
/// them — at several confirm windows, for the Swift wrapper and for rabbitmq-c used directly
/// (`Benchmarks/broker-floor.c`, built by `scripts/bench-amqp`), in the same run.
///
/// Every message of the demo's flow (an event routed to an inbox partition, a command to a
/// command queue) is such a message, so this is the floor under the broker's share of the
/// flow's CPU per order; the window is the number of messages one publisher has in flight,
/// which in the flow is the size of a relay's wave for one queue.
struct BrokerBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "The broker's CPU per quorum-queue message (publish with confirms, consume, ack), Swift wrapper vs plain rabbitmq-c."
    )

    @Option(help: "Broker URL (default: $AMQP_URL, else the private test node).")
    var url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5673/"

    @Option(help: "The process id of the broker node's Erlang VM (beam.smp), e.g. $(scripts/rabbitmq pid).")
    var brokerPid: Int32

    @Option(help: "Messages per run.")
    var messages = 10_000

    @Option(parsing: .upToNextOption, help: "Confirm windows to measure (messages in flight).")
    var windows: [Int] = [1, 3, 10, 100]

    @Option(help: "Prefetch of the consumer.")
    var prefetch = 100

    @Option(help: "Path of the compiled C baseline (Benchmarks/broker-floor.c); without it only the Swift side runs.")
    var baseline: String?

    /// Messages per second, and the broker's CPU time per message in µs.
    typealias RoundTrip = (rate: Double, brokerMicroseconds: Double)

    func validate() throws {
        guard Self.cpuSeconds(of: brokerPid) != nil else {
            throw ValidationError("--broker-pid \(brokerPid): /proc/\(brokerPid)/stat cannot be read; pass the broker's process id.")
        }
        guard messages > 0, prefetch > 0, prefetch <= Int(UInt16.max), windows.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--messages, --prefetch (at most 65535) and every --windows value must be positive.")
        }
    }

    func run() async throws {
        let configuration = try AMQPConnection.Configuration(url: url)
        print(
            "broker CPU per message: quorum queue, persistent 600-byte messages with the wire contract's headers, prefetch \(prefetch), one ack per delivery"
        )
        print("window   messages   Swift msg/s  Swift broker µs/msg     C msg/s  C broker µs/msg")
        for window in windows {
            let swift = try await swiftRoundTrip(configuration, window: window)
            var line =
                "\(window)".leftPadded(6) + "\(messages)".leftPadded(11) + String(format: "%14.0f", swift.rate)
                + String(format: "%21.1f", swift.brokerMicroseconds)
            if let baseline {
                let c = try cRoundTrip(baseline, configuration, window: window)
                line += String(format: "%12.0f%17.1f", c.rate, c.brokerMicroseconds)
            }
            print(line)
        }
    }

    /// Publishes `messages` with `window` in flight while a second connection consumes them.
    private func swiftRoundTrip(_ configuration: AMQPConnection.Configuration, window: Int) async throws -> RoundTrip {
        let queue = "bench.swift.broker"
        let publishing = AMQPConnection(configuration: configuration)
        let consuming = AMQPConnection(configuration: configuration)
        try await publishing.connect()
        try await consuming.connect()
        try await publishing.declare(AMQPQueue(name: queue, arguments: ["x-queue-type": "quorum"]))
        try await publishing.purgeQueue(queue)
        let consumer = try await consuming.consume(queue: queue, prefetch: UInt16(prefetch))
        let messages = (0..<self.messages).map { AMQPBenchmark.message(queue: queue, index: $0) }
        let brokerStart = try brokerCPU()
        let start = ContinuousClock.now
        let count = self.messages
        async let received: Int = {
            var received = 0
            for try await delivery in consumer.deliveries {
                consumer.ack(delivery)
                received += 1
                if received == count { break }
            }
            return received
        }()
        let outcomes = try await AMQPPublisher(connection: publishing, window: window).publish(messages)
        let consumed = try await received
        let elapsed = ContinuousClock.now - start
        let brokerSeconds = try brokerCPU() - brokerStart
        guard outcomes.allSatisfy(\.isConfirmed), consumed == count else {
            throw ValidationError("confirmed \(outcomes.filter(\.isConfirmed).count) and consumed \(consumed) of \(count) messages")
        }
        await consumer.cancel()
        try await publishing.deleteQueue(queue)
        await consuming.close()
        await publishing.close()
        return (Double(count) / elapsed.seconds, brokerSeconds / Double(count) * 1e6)
    }

    private func cRoundTrip(_ path: String, _ configuration: AMQPConnection.Configuration, window: Int) throws -> RoundTrip {
        let output = try CBaseline.output(
            path,
            [
                configuration.host, "\(configuration.port)", "bench.c.broker", "\(messages)", "\(window)", "\(prefetch)", "1",
                "\(brokerPid)",
            ])
        guard let rate = CBaseline.field("rate", in: output), let broker = CBaseline.field("broker_cpu_us_per_message", in: output) else {
            throw ValidationError("unexpected output from the C baseline: \(output)")
        }
        return (rate, broker)
    }

    private func brokerCPU() throws -> Double {
        guard let seconds = Self.cpuSeconds(of: brokerPid) else {
            throw ValidationError("/proc/\(brokerPid)/stat can no longer be read: did the broker stop?")
        }
        return seconds
    }

    /// `utime + stime` of a process in seconds, from `/proc/<pid>/stat`.
    static func cpuSeconds(of pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // Fields 14 and 15 (utime, stime); the fields after the command name start at field 3.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
