import EventSourceryRabbitMQ
import TestSupport
import Foundation
import Testing

extension AMQPBrokerTests {
    @Suite struct PublisherTests {
        @Test func roundTripOfEveryPropertyAndHeader() async throws {
            let connection = try await TestBroker.connect()
            let queue = TestBroker.uniqueName("roundtrip")
            try await connection.declare(AMQPQueue(name: queue))
            let eventId = UUID().uuidString.lowercased()
            let correlationId = UUID().uuidString.lowercased()
            let headers: AMQPTable = [
                "x-stream-id": "order-42",
                "x-stream-version": .int64(7),
                "x-causation-id": .string(UUID().uuidString.lowercased()),
                "x-schema-version": .int32(2),
                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "x-flag": true,
                "x-big": .int64(Int64.max),
                "x-negative": .int32(-5),
                "x-ratio": .double(0.25),
                "x-nested": .table(["inner": "value", "n": .int32(1)]),
                "x-list": .array(["a", .int32(2), .bool(false)]),
                "x-unicode": "grüße ✓",
            ]
            let body = Data("{\"orderId\":\"42\",\"amount\":12.5}".utf8)
            let timestamp = Date(timeIntervalSince1970: 1_700_000_123)
            let message = OutgoingMessage(
                exchange: "",
                routingKey: queue,
                body: body,
                properties: AMQPProperties(
                    contentType: "application/json",
                    contentEncoding: "identity",
                    headers: headers,
                    priority: 3,
                    correlationId: correlationId,
                    replyTo: "replies",
                    expiration: "60000",
                    messageId: eventId,
                    timestamp: timestamp,
                    type: "OrderPlaced",
                    userId: "guest",
                    appId: "order"
                )
            )
            let outcome = try await AMQPPublisher(connection: connection, window: 1).publish(message)
            #expect(outcome == .confirmed)

            let consumer = try await connection.consume(queue: queue, prefetch: 10)
            let collector = DeliveryCollector(consumer)
            let deliveries = await collector.waitFor(count: 1)
            try #require(deliveries.count == 1)
            let delivery = deliveries[0]
            #expect(delivery.body == body)
            #expect(delivery.exchange == "")
            #expect(delivery.routingKey == queue)
            #expect(!delivery.isRedelivered)
            #expect(delivery.deliveryTag == 1)
            #expect(delivery.consumerTag == consumer.consumerTag)
            let properties = delivery.properties
            #expect(properties.contentType == "application/json")
            #expect(properties.contentEncoding == "identity")
            #expect(properties.deliveryMode == .persistent)
            #expect(properties.priority == 3)
            #expect(properties.correlationId == correlationId)
            #expect(properties.replyTo == "replies")
            #expect(properties.expiration == "60000")
            #expect(properties.messageId == eventId)
            #expect(properties.timestamp == timestamp)
            #expect(properties.type == "OrderPlaced")
            #expect(properties.userId == "guest")
            #expect(properties.appId == "order")
            #expect(properties.headers == headers)
            #expect(properties.headers?["x-stream-version"]?.intValue == 7)
            #expect(properties.headers?["x-schema-version"]?.intValue == 2)
            consumer.ack(delivery)
            await consumer.cancel()
            collector.stop()
            try await Task.sleep(for: .milliseconds(100))
            #expect(try await connection.queueState(queue).messageCount == 0)
            try await connection.deleteQueue(queue)
            await connection.close()
        }

        @Test(arguments: [(1, 300), (1000, 2000)])
        func confirmsWithWindow(window: Int, count: Int) async throws {
            let connection = try await TestBroker.connect()
            let queue = TestBroker.uniqueName("confirms")
            try await connection.declare(AMQPQueue(name: queue))
            let messages = (0..<count).map { OutgoingMessage.test(queue: queue, index: $0) }
            let outcomes = try await AMQPPublisher(connection: connection, window: window).publish(messages)
            #expect(outcomes.count == count)
            #expect(outcomes.allSatisfy { $0 == .confirmed })
            #expect(try await connection.queueState(queue).messageCount == UInt32(count))
            try await connection.deleteQueue(queue)
            await connection.close()
        }

        @Test func fullQueueWithRejectPublishSurfacesAsNacked() async throws {
            let connection = try await TestBroker.connect()
            let queue = TestBroker.uniqueName("full")
            try await connection.declare(AMQPQueue(name: queue, arguments: ["x-max-length": .int32(1), "x-overflow": "reject-publish"]))
            let messages = (0..<4).map { OutgoingMessage.test(queue: queue, index: $0) }
            let outcomes = try await AMQPPublisher(connection: connection, window: 10).publish(messages)
            #expect(outcomes == [.confirmed, .nacked, .nacked, .nacked])
            #expect(try await connection.queueState(queue).messageCount == 1)
            try await connection.deleteQueue(queue)
            await connection.close()
        }

        @Test func mandatoryUnroutableSurfacesAsReturned() async throws {
            let connection = try await TestBroker.connect()
            let exchange = TestBroker.uniqueName("unbound")
            let queue = TestBroker.uniqueName("routed")
            try await connection.declare(AMQPExchange(name: exchange, kind: .direct, durable: false))
            try await connection.declare(AMQPQueue(name: queue))
            try await connection.bind(AMQPBinding(queue: queue, exchange: exchange, routingKey: "routed"))
            let outcomes = try await AMQPPublisher(connection: connection, window: 100).publish([
                .test(queue: "routed", exchange: exchange, index: 0),
                .test(queue: "nowhere", exchange: exchange, index: 1),
                .test(queue: "routed", exchange: exchange, index: 2),
                .test(queue: "nowhere", exchange: exchange, index: 3, mandatory: false),
            ])
            #expect(outcomes == [.confirmed, .returned(replyCode: 312, replyText: "NO_ROUTE"), .confirmed, .confirmed])
            #expect(try await connection.queueState(queue).messageCount == 2)
            try await connection.deleteQueue(queue)
            try await connection.deleteExchange(exchange)
            await connection.close()
        }

        @Test func missingExchangeClosesTheChannelAndTheNextBatchWorks() async throws {
            let connection = try await TestBroker.connect()
            let queue = TestBroker.uniqueName("after404")
            try await connection.declare(AMQPQueue(name: queue))
            let publisher = AMQPPublisher(connection: connection, window: 10)
            let failed = try await publisher.publish([.test(queue: "x", exchange: TestBroker.uniqueName("missing")), .test(queue: queue)])
            #expect(failed.count == 2)
            for outcome in failed {
                guard case .notConfirmed(let error) = outcome else {
                    Issue.record("expected notConfirmed, got \(outcome)")
                    continue
                }
                #expect(error.code == .notFound)
                #expect(error.replyCode == 404)
            }
            #expect(try await publisher.publish([.test(queue: queue), .test(queue: queue)]) == [.confirmed, .confirmed])
            #expect(try await connection.queueState(queue).messageCount == 2)
            try await connection.deleteQueue(queue)
            await connection.close()
        }
    }
}
