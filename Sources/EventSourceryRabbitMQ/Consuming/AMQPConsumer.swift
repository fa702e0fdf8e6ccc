/// A subscription to a queue with manual acknowledgements.
///
/// Create one with ``AMQPConnection/consume(queue:prefetch:consumerTag:exclusive:)`` and iterate
/// ``deliveries``. The broker sends at most `prefetch` unacknowledged deliveries; acknowledge
/// each one (or several with `multiple`) to receive more.
///
/// ```swift
/// let consumer = try await connection.consume(queue: "payment.inbox", prefetch: 50)
/// for try await delivery in consumer.deliveries {
///     try await handle(delivery)
///     consumer.ack(delivery)
/// }
/// ```
///
/// After a connection recovery the consumer is re-opened on the new connection and the
/// sequence continues; unacknowledged deliveries of the old connection are redelivered by
/// the broker (with ``Delivery/isRedelivered`` set), and acknowledging them is a no-op.
/// The sequence finishes when the consumer is cancelled or the connection closed, and
/// throws if the broker cancels the consumer or the connection is lost for good.
public final class AMQPConsumer: Sendable {
    /// The deliveries, in the order the broker sent them.
    public let deliveries: AsyncThrowingStream<Delivery, any Error>
    /// The queue consumed from.
    public let queue: String
    /// The consumer tag the broker confirmed.
    public let consumerTag: String
    private let connection: AMQPConnection
    private let channel: UInt16

    init(
        connection: AMQPConnection, channel: UInt16, queue: String, consumerTag: String,
        deliveries: AsyncThrowingStream<Delivery, any Error>
    ) {
        self.connection = connection
        self.channel = channel
        self.queue = queue
        self.consumerTag = consumerTag
        self.deliveries = deliveries
    }

    /// Acknowledges a delivery (`basic.ack`), or with `multiple` every unacknowledged
    /// delivery up to and including it.
    ///
    /// The acknowledgement is queued to the connection thread and sent at once; it does not
    /// wait for the socket write. Deliveries from a connection that was since lost are
    /// ignored (the broker redelivers them).
    public func ack(_ delivery: Delivery, multiple: Bool = false) {
        acknowledge(delivery, .ack(multiple: multiple))
    }

    /// Rejects a delivery (`basic.nack`), or with `multiple` every unacknowledged delivery up
    /// to and including it.
    ///
    /// - Parameters:
    ///   - delivery: The delivery.
    ///   - multiple: Whether all earlier unacknowledged deliveries are rejected too.
    ///   - requeue: `true` puts the messages back in the queue (redelivered later); `false`
    ///     drops them or dead-letters them if the queue has a dead-letter exchange.
    public func nack(_ delivery: Delivery, multiple: Bool = false, requeue: Bool) {
        acknowledge(delivery, .nack(multiple: multiple, requeue: requeue))
    }

    /// Rejects one delivery (`basic.reject`).
    ///
    /// - Parameters:
    ///   - delivery: The delivery.
    ///   - requeue: `true` puts it back in the queue; `false` drops or dead-letters it.
    public func reject(_ delivery: Delivery, requeue: Bool) {
        acknowledge(delivery, .reject(requeue: requeue))
    }

    /// Cancels the subscription (`basic.cancel`); ``deliveries`` finishes. Unacknowledged
    /// deliveries are returned to the queue by the broker.
    public func cancel() async {
        let channel = self.channel
        _ = try? await connection.thread.perform(waitsForRecovery: false) { session throws(AMQPError) in
            session.cancelConsumer(channel: channel)
        }
    }

    /// Ends the subscription by closing its channel, without `basic.cancel`; ``deliveries``
    /// finishes. The broker returns the unacknowledged deliveries as for a consumer that went
    /// away, and a single-active-consumer quorum queue does so before it activates the next
    /// consumer, so that one receives them before newer messages. (After a `basic.cancel` the
    /// queue activates the next consumer at once and returns the cancelled one's messages only
    /// when its channel closes, behind newer ones.)
    public func close() async {
        let channel = self.channel
        _ = try? await connection.thread.perform(waitsForRecovery: false) { session throws(AMQPError) in
            session.cancelConsumer(channel: channel, cancelsFirst: false)
        }
    }

    private func acknowledge(_ delivery: Delivery, _ kind: AcknowledgementRequest.Kind) {
        connection.thread.submit(
            AcknowledgementRequest(channel: channel, generation: delivery.generation, deliveryTag: delivery.deliveryTag, kind: kind))
    }
}
