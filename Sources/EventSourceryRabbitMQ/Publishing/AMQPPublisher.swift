/// Publishes persistent messages with publisher confirms and reports, per message, whether
/// the broker took it.
///
/// The publisher puts its connection's publishing channel into confirm mode
/// (`confirm.select`) and keeps at most ``window`` messages unconfirmed: it publishes until
/// the window is full, then reads `basic.ack` / `basic.nack` (honouring `multiple`) and
/// `basic.return` frames to make room. The whole batch runs on the connection's thread.
///
/// ```swift
/// let publisher = AMQPPublisher(connection: connection, window: 1000)
/// let outcomes = try await publisher.publish(messages)
/// let taken = zip(messages, outcomes).filter { $1.isConfirmed }.map { $0.0.properties.messageId }
/// ```
///
/// Outcomes are never optimistic: if the connection or channel is lost, every message not
/// yet confirmed is reported as ``PublishOutcome/notConfirmed(_:)``.
public struct AMQPPublisher: Sendable {
    /// The connection messages are published on.
    public let connection: AMQPConnection
    /// The most messages published but not yet confirmed.
    public let window: Int

    /// Creates a publisher.
    ///
    /// - Parameters:
    ///   - connection: The connection to publish on.
    ///   - window: The most unconfirmed messages in flight (at least 1). Default 1000.
    public init(connection: AMQPConnection, window: Int = 1000) {
        self.connection = connection
        self.window = max(1, window)
    }

    /// Publishes messages in order and waits until the broker answered for each.
    ///
    /// If the connection is recovering, the batch waits for it. A connection lost during the
    /// batch ends it: messages not yet confirmed come back as ``PublishOutcome/notConfirmed(_:)``.
    ///
    /// - Parameter messages: The messages, published in this order.
    /// - Returns: One outcome per message, in the same order.
    /// - Throws: ``AMQPError`` if the connection is closed or was never opened.
    public func publish(_ messages: [OutgoingMessage]) async throws -> [PublishOutcome] {
        try await publishMeasured(messages, measureLatency: false).outcomes
    }

    /// Publishes one message and waits for its outcome.
    ///
    /// - Parameter message: The message.
    /// - Returns: What became of it.
    /// - Throws: ``AMQPError`` if the connection is closed or was never opened.
    public func publish(_ message: OutgoingMessage) async throws -> PublishOutcome {
        try await publish([message])[0]
    }

    /// Publishes and also measures each message's publish-to-confirm latency (benchmarks).
    public func publishMeasured(
        _ messages: [OutgoingMessage], measureLatency: Bool
    ) async throws -> (outcomes: [PublishOutcome], latencies: [Duration]) {
        let window = self.window
        return try await connection.thread.perform { session throws(AMQPError) in
            try session.publish(messages, window: window, measureLatency: measureLatency)
        }
    }
}
