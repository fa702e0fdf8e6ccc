import EventSourcery
import EventSourceryAMQP
import EventSourceryRabbitMQ
import Foundation

/// A consuming context of its own for one benchmark run: a fresh name, a scratch folder, a
/// connection, and the topology of one handler `append-one` subscribed to a source's
/// `QueuedItem`s, declared on the broker.
struct BenchContext {
    /// The random part of the names, for further objects of the same run.
    let suffix: String
    let context: String
    let source: String
    let directory: URL
    let connection: AMQPConnection
    let subscription: EventSubscription
    let topology: ContextTopology

    /// Creates the folder, connects to `amqpURL` and declares the topology of
    /// `<prefix>-<random>`, fed by `<prefix>-source-<random>`.
    init(prefix: String, amqpURL: String) async throws {
        suffix = String(UUID().uuidString.prefix(6).lowercased())
        context = "\(prefix)-\(suffix)"
        source = "\(prefix)-source-\(suffix)"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(context)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        connection = AMQPConnection(configuration: try AMQPConnection.Configuration(url: amqpURL))
        try await connection.connect()
        subscription = EventSubscription(source: source, type: QueuedItem.typeName)
        topology = ContextTopology(ContextDescription(name: context, handlers: ["append-one": [subscription]], deliveryLimit: 5))
        try await topology.declare(on: connection)
    }

    /// Deletes the queues, exchanges and folder and closes the connection.
    func tearDown() async {
        for queue in topology.queues { _ = try? await connection.deleteQueue(queue.name) }
        for exchange in topology.exchanges { try? await connection.deleteExchange(exchange.name) }
        await connection.close()
        try? FileManager.default.removeItem(at: directory)
    }
}
