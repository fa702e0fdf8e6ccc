import EventSourceryRabbitMQ
import TestSupport
import Foundation
import Testing

extension AMQPBrokerTests {
    /// Messages cross between this client and Debian's `amqp-tools` (rabbitmq-c's CLI).
    @Suite struct InteropTests {
        private var toolArguments: [String] {
            get throws {
                let configuration = try TestBroker.configuration
                return [
                    "--server", configuration.host, "--port", "\(configuration.port)", "--vhost", configuration.vhost,
                    "--username", configuration.user, "--password", configuration.password,
                ]
            }
        }

        @Test func messagePublishedHereIsReadByAmqpConsume() async throws {
            let connection = try await TestBroker.connect()
            let queue = TestBroker.uniqueName("interop.out")
            try await connection.declare(AMQPQueue(name: queue))
            let body = "{\"event\":\"OrderPlaced\",\"id\":\"\(UUID().uuidString)\"}"
            let outcome = try await AMQPPublisher(connection: connection, window: 1).publish(
                OutgoingMessage(
                    exchange: "", routingKey: queue, body: Data(body.utf8),
                    properties: AMQPProperties(contentType: "application/json", messageId: "m-1"))
            )
            #expect(outcome == .confirmed)
            let output = try await TestBroker.run("/usr/bin/amqp-consume", try toolArguments + ["-q", queue, "-c", "1", "/bin/cat"])
            #expect(output == body)
            try await Task.sleep(for: .milliseconds(100))
            #expect(try await connection.queueState(queue).messageCount == 0)
            try await connection.deleteQueue(queue)
            await connection.close()
        }

        @Test func messagePublishedByAmqpPublishIsReadHere() async throws {
            let connection = try await TestBroker.connect()
            let queue = TestBroker.uniqueName("interop.in")
            try await connection.declare(AMQPQueue(name: queue))
            let body = "{\"hello\":\"from amqp-publish\"}"
            try await TestBroker.run(
                "/usr/bin/amqp-publish",
                try toolArguments + [
                    "-r", queue, "-p", "-C", "application/json", "-E", "utf-8", "-t", "reply.queue",
                    "-H", "x-stream-id: order-7", "-H", "traceparent: 00-abc-def-01", "-b", body,
                ])
            let consumer = try await connection.consume(queue: queue, prefetch: 1)
            let collector = DeliveryCollector(consumer)
            let deliveries = await collector.waitFor(count: 1)
            try #require(deliveries.count == 1)
            let delivery = deliveries[0]
            #expect(String(decoding: delivery.body, as: UTF8.self) == body)
            #expect(delivery.properties.contentType == "application/json")
            #expect(delivery.properties.contentEncoding == "utf-8")
            #expect(delivery.properties.replyTo == "reply.queue")
            #expect(delivery.properties.deliveryMode == .persistent)
            #expect(delivery.properties.headers == ["x-stream-id": "order-7", "traceparent": "00-abc-def-01"])
            #expect(delivery.routingKey == queue)
            consumer.ack(delivery)
            await consumer.cancel()
            collector.stop()
            try await connection.deleteQueue(queue)
            await connection.close()
        }
    }
}
