public import EventSourceryRabbitMQ
public import EventSourceryAMQP
import Testing

public extension TestBroker {
    /// Declares the queues of `topologies` on the broker at `url` and empties them, returning
    /// the connection that declared them. The bindings into a partitioned inbox are declared
    /// anew (its hash exchange deleted first), so none of an earlier topology is left.
    ///
    /// The queues are purged, not deleted: deleting a quorum queue completes asynchronously,
    /// and a declaration of the same name while the old one still shuts down fails — a 404
    /// before its bindings are made, or a 541 (`cluster_not_formed`) that closes the
    /// connection — for as long as the broker takes. Only a queue declared with other
    /// arguments (406) is deleted and declared anew. Every failure is retried with a new
    /// connection for up to 90 seconds.
    static func freshTopology(_ topologies: [ContextTopology], url: String) async throws -> AMQPConnection {
        let deadline = ContinuousClock.now + .seconds(90)
        while true {
            let connection = try await connect { $0 = try! AMQPConnection.Configuration(url: url) }
            do {
                for topology in topologies where topology.isPartitioned {
                    // Bindings of an earlier run's topology (a subscription since dropped) go
                    // with the exchange they lead to.
                    try await connection.deleteExchange(topology.partitionExchange)
                }
                for topology in topologies {
                    // Declared by itself first: `declare(on:)` keeps a classic dead-letter queue
                    // of an earlier version, which a test must not inherit (406 → deleted).
                    try await connection.declare(try #require(topology.queues.first { $0.name == topology.deadLetterQueue }))
                    try await topology.declare(on: connection)
                    for queue in topology.queues { _ = try await connection.purgeQueue(queue.name) }
                }
                return connection
            } catch let error as AMQPError where ContinuousClock.now < deadline {
                await connection.close()
                if error.code == .preconditionFailed {
                    let cleaner = try await connect { $0 = try! AMQPConnection.Configuration(url: url) }
                    for topology in topologies {
                        for queue in topology.queues { _ = try? await cleaner.deleteQueue(queue.name) }
                    }
                    await cleaner.close()
                }
                try await Task.sleep(for: .milliseconds(500))
            }
        }
    }
}
