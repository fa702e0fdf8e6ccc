import EventSourceryRabbitMQ
import TestSupport
import Foundation
import Testing

extension AMQPBrokerTests {
    @Suite struct TopologyTests {
        @Test func declarationsAreIdempotentAndRouteMessages() async throws {
            let connection = try await TestBroker.connect()
            let exchange = TestBroker.uniqueName("events")
            let queue = TestBroker.uniqueName("inbox")
            for _ in 0..<2 {
                try await connection.declare(AMQPExchange(name: exchange, kind: .topic))
                try await connection.declare(AMQPQueue(name: queue, arguments: ["x-queue-type": "quorum", "x-delivery-limit": .int32(5)]))
                try await connection.bind(AMQPBinding(queue: queue, exchange: exchange, routingKey: "order.*"))
            }
            let publisher = AMQPPublisher(connection: connection, window: 10)
            let outcomes = try await publisher.publish([
                .test(queue: "order.OrderPlaced", exchange: exchange),
                .test(queue: "order.OrderPaid", exchange: exchange),
                .test(queue: "payment.Refunded", exchange: exchange, mandatory: false),
            ])
            #expect(outcomes == [.confirmed, .confirmed, .confirmed])
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await connection.queueState(queue).messageCount == 2)
            #expect(try await connection.purgeQueue(queue) == 2)
            try await connection.deleteQueue(queue)
            try await connection.deleteExchange(exchange)
            await connection.close()
        }

        @Test func queueMismatchIsPreconditionFailedNamingTheQueue() async throws {
            let connection = try await TestBroker.connect()
            let queue = TestBroker.uniqueName("mismatch")
            try await connection.declare(AMQPQueue(name: queue, durable: true))
            do {
                try await connection.declare(AMQPQueue(name: queue, durable: true, arguments: ["x-max-length": .int32(3)]))
                Issue.record("a mismatching declaration succeeded")
            } catch let error as AMQPError {
                #expect(error.code == .preconditionFailed)
                #expect(error.replyCode == 406)
                #expect(error.replyText?.contains("PRECONDITION_FAILED") == true)
                #expect(error.description.contains(queue))
            }
            // The control channel is re-opened: the connection keeps working.
            #expect(try await connection.queueState(queue).messageCount == 0)
            try await connection.deleteQueue(queue)
            await connection.close()
        }

        @Test func exchangeMismatchIsPreconditionFailed() async throws {
            let connection = try await TestBroker.connect()
            let exchange = TestBroker.uniqueName("x")
            try await connection.declare(AMQPExchange(name: exchange, kind: .topic))
            await #expect {
                try await connection.declare(AMQPExchange(name: exchange, kind: .fanout))
            } throws: { error in
                let error = error as? AMQPError
                return error?.code == .preconditionFailed && error?.replyCode == 406 && error?.description.contains(exchange) == true
            }
            try await connection.deleteExchange(exchange)
            await connection.close()
        }

        @Test func missingQueueIsNotFound() async throws {
            let connection = try await TestBroker.connect()
            await #expect {
                try await connection.queueState(TestBroker.uniqueName("missing"))
            } throws: { error in
                (error as? AMQPError)?.code == .notFound && (error as? AMQPError)?.replyCode == 404
            }
            await connection.close()
        }
    }
}
