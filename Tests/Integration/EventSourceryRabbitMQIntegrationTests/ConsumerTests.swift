import EventSourceryRabbitMQ
import TestSupport
import Foundation
import Testing

extension AMQPBrokerTests {
    @Suite struct ConsumerTests {
        private func fill(_ connection: AMQPConnection, queue: String, count: Int) async throws -> [OutgoingMessage] {
            let messages = (0..<count).map { OutgoingMessage.test(queue: queue, index: $0) }
            let outcomes = try await AMQPPublisher(connection: connection, window: 100).publish(messages)
            #expect(outcomes.allSatisfy { $0.isConfirmed })
            return messages
        }

        @Test func prefetchLimitsUnacknowledgedDeliveries() async throws {
            let connection = try await TestBroker.connect()
            let queue = TestBroker.uniqueName("prefetch")
            try await connection.declare(AMQPQueue(name: queue))
            let messages = try await fill(connection, queue: queue, count: 20)
            let consumerConnection = try await TestBroker.connect()
            let consumer = try await consumerConnection.consume(queue: queue, prefetch: 5)
            let collector = DeliveryCollector(consumer)
            await collector.waitFor(count: 5)
            try await Task.sleep(for: .milliseconds(500))
            #expect(collector.count == 5)
            for delivery in collector.deliveries { consumer.ack(delivery) }
            await collector.waitFor(count: 10)
            try await Task.sleep(for: .milliseconds(300))
            #expect(collector.count == 10)
            for delivery in collector.deliveries[5..<10] { consumer.ack(delivery) }
            var acked = 10
            let deadline = ContinuousClock.now + .seconds(10)
            while acked < 20, ContinuousClock.now < deadline {
                let batch = await collector.waitFor(count: acked + 5)
                for delivery in batch[acked...] { consumer.ack(delivery) }
                acked = batch.count
            }
            let deliveries = collector.deliveries
            #expect(deliveries.count == 20)
            #expect(deliveries.map(\.properties.messageId) == messages.map(\.properties.messageId))
            #expect(deliveries.map(\.deliveryTag) == Array(1...20))
            await consumer.cancel()
            collector.stop()
            #expect(try await connection.queueState(queue).messageCount == 0)
            try await connection.deleteQueue(queue)
            await consumerConnection.close()
            await connection.close()
        }

        @Test func nackWithRequeueRedeliversWithTheRedeliveredFlag() async throws {
            let connection = try await TestBroker.connect()
            let queue = TestBroker.uniqueName("requeue")
            try await connection.declare(AMQPQueue(name: queue))
            let messages = try await fill(connection, queue: queue, count: 1)
            let consumer = try await connection.consume(queue: queue, prefetch: 1)
            let collector = DeliveryCollector(consumer)
            let first = await collector.waitFor(count: 1)
            try #require(first.count == 1)
            #expect(!first[0].isRedelivered)
            consumer.nack(first[0], requeue: true)
            let both = await collector.waitFor(count: 2)
            try #require(both.count == 2)
            #expect(both[1].isRedelivered)
            #expect(both[1].properties.messageId == messages[0].properties.messageId)
            #expect(both[1].body == messages[0].body)
            consumer.ack(both[1])
            await consumer.cancel()
            collector.stop()
            #expect(try await connection.queueState(queue).messageCount == 0)
            try await connection.deleteQueue(queue)
            await connection.close()
        }

        @Test func rejectAndNackWithoutRequeueDeadLetter() async throws {
            let connection = try await TestBroker.connect()
            let queue = TestBroker.uniqueName("work")
            let dlx = TestBroker.uniqueName("dlx")
            let dead = TestBroker.uniqueName("dead")
            try await connection.declare(AMQPExchange(name: dlx, kind: .fanout))
            try await connection.declare(AMQPQueue(name: dead))
            try await connection.bind(AMQPBinding(queue: dead, exchange: dlx, routingKey: ""))
            try await connection.declare(AMQPQueue(name: queue, arguments: ["x-dead-letter-exchange": .string(dlx)]))
            let messages = try await fill(connection, queue: queue, count: 3)
            let consumer = try await connection.consume(queue: queue, prefetch: 10)
            let collector = DeliveryCollector(consumer)
            let deliveries = await collector.waitFor(count: 3)
            try #require(deliveries.count == 3)
            consumer.reject(deliveries[0], requeue: false)
            consumer.nack(deliveries[1], requeue: false)
            consumer.ack(deliveries[2])
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await connection.queueState(dead).messageCount == 2)
            #expect(try await connection.queueState(queue).messageCount == 0)
            let deadConsumer = try await connection.consume(queue: dead, prefetch: 10)
            let deadCollector = DeliveryCollector(deadConsumer)
            let deadDeliveries = await deadCollector.waitFor(count: 2)
            #expect(Set(deadDeliveries.compactMap(\.properties.messageId)) == Set(messages[0...1].compactMap(\.properties.messageId)))
            #expect(deadDeliveries.allSatisfy { $0.properties.headers?["x-death"] != nil })
            for delivery in deadDeliveries { deadConsumer.ack(delivery) }
            await consumer.cancel()
            await deadConsumer.cancel()
            collector.stop()
            deadCollector.stop()
            try await connection.deleteQueue(queue)
            try await connection.deleteQueue(dead)
            try await connection.deleteExchange(dlx)
            await connection.close()
        }

        @Test func ackMultipleAcknowledgesEverythingUpToTheTag() async throws {
            let connection = try await TestBroker.connect()
            let queue = TestBroker.uniqueName("ackmulti")
            try await connection.declare(AMQPQueue(name: queue))
            _ = try await fill(connection, queue: queue, count: 10)
            let consumer = try await connection.consume(queue: queue, prefetch: 10)
            let collector = DeliveryCollector(consumer)
            let deliveries = await collector.waitFor(count: 10)
            try #require(deliveries.count == 10)
            consumer.ack(deliveries[6], multiple: true)
            // Cancelling returns unacknowledged deliveries to the queue: exactly 3 must remain.
            await consumer.cancel()
            collector.stop()
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await connection.queueState(queue).messageCount == 3)
            try await connection.deleteQueue(queue)
            await connection.close()
        }

        @Test func heartbeatsKeepAnIdleConsumerAlive() async throws {
            let consumerConnection = try await TestBroker.connect {
                $0.heartbeat = .seconds(1); $0.recovery = .disabled
            }
            let connection = try await TestBroker.connect()
            let queue = TestBroker.uniqueName("idle")
            try await connection.declare(AMQPQueue(name: queue))
            let consumer = try await consumerConnection.consume(queue: queue, prefetch: 1)
            let collector = DeliveryCollector(consumer)
            // With a 1 s heartbeat the broker closes a silent connection after about 2 s.
            try await Task.sleep(for: .seconds(5))
            let messages = try await fill(connection, queue: queue, count: 1)
            let deliveries = await collector.waitFor(count: 1, timeout: .seconds(5))
            #expect(deliveries.map(\.properties.messageId) == messages.map(\.properties.messageId))
            if let delivery = deliveries.first { consumer.ack(delivery) }
            // The idle connection itself still answers RPCs.
            #expect(try await consumerConnection.queueState(queue).consumerCount == 1)
            await consumer.cancel()
            collector.stop()
            try await connection.deleteQueue(queue)
            await consumerConnection.close()
            await connection.close()
        }

        @Test func cancelFinishesTheSequence() async throws {
            let connection = try await TestBroker.connect()
            let queue = TestBroker.uniqueName("cancel")
            try await connection.declare(AMQPQueue(name: queue))
            let consumer = try await connection.consume(queue: queue)
            #expect(try await connection.queueState(queue).consumerCount == 1)
            await consumer.cancel()
            var iterator = consumer.deliveries.makeAsyncIterator()
            #expect(try await iterator.next() == nil)
            #expect(try await connection.queueState(queue).consumerCount == 0)
            try await connection.deleteQueue(queue)
            await connection.close()
        }
    }
}
