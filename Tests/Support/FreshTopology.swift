public import EventSourceryRabbitMQ
public import EventSourceryAMQP

public extension TestBroker {
    /// Deletes the queues of `topologies` on the broker at `url` and declares them anew,
    /// returning the connection that declared them.
    ///
    /// Deleting a quorum queue completes asynchronously: a declaration right after it can
    /// see the old queue vanish before its bindings are made (404), or meet it still shutting
    /// down, which closes the connection (541). Both are retried with a new connection.
    static func freshTopology(_ topologies: [ContextTopology], url: String) async throws -> AMQPConnection {
        var connection = try await connect { $0 = try! AMQPConnection.Configuration(url: url) }
        for topology in topologies {
            for queue in topology.queues { _ = try? await connection.deleteQueue(queue.name) }
        }
        for topology in topologies {
            for attempt in 1...20 {
                do {
                    try await topology.declare(on: connection)
                    break
                } catch let error as AMQPError where [.notFound, .connectionClosed].contains(error.code) && attempt < 20 {
                    try await Task.sleep(for: .milliseconds(250))
                    await connection.close()
                    connection = try await connect { $0 = try! AMQPConnection.Configuration(url: url) }
                }
            }
        }
        return connection
    }
}
