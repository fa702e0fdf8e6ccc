import TestSupport
import EventSourceryRabbitMQ
import Foundation

extension OutgoingMessage {
    /// A small JSON message to the default exchange with a unique message id.
    static func test(queue: String, exchange: String = "", index: Int = 0, mandatory: Bool = true) -> OutgoingMessage {
        OutgoingMessage(
            exchange: exchange,
            routingKey: queue,
            body: Data("{\"index\":\(index)}".utf8),
            properties: AMQPProperties(contentType: "application/json", messageId: UUID().uuidString.lowercased()),
            mandatory: mandatory
        )
    }
}
