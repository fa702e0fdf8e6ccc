import EventSourceryRabbitMQ
import TestSupport
import Foundation
import NIOConcurrencyHelpers
import Testing

extension AMQPBrokerTests {
    /// Restarts the private broker node (`scripts/rabbitmq restart`) while clients work.
    @Suite struct RecoveryTests {
        @Test func brokerRestartDuringPublishingLosesNoConfirmedMessage() async throws {
            let connection = try await TestBroker.connect { $0.heartbeat = .seconds(2) }
            let queue = TestBroker.uniqueName("recover.pub")
            try await connection.declare(AMQPQueue(name: queue))
            let publisher = AMQPPublisher(connection: connection, window: 50)

            var confirmed: Set<String> = []
            var notConfirmed = 0
            var batches = 0
            var restart: Task<Void, any Error>?
            let deadline = ContinuousClock.now + .seconds(40)
            while ContinuousClock.now < deadline {
                let messages = (0..<50).map { OutgoingMessage.test(queue: queue, index: $0) }
                let outcomes = try await publisher.publish(messages)
                for (message, outcome) in zip(messages, outcomes) {
                    switch outcome {
                    case .confirmed: confirmed.insert(message.properties.messageId!)
                    case .notConfirmed: notConfirmed += 1
                    case .nacked, .returned: Issue.record("unexpected outcome \(outcome)")
                    }
                }
                batches += 1
                if batches == 3 {
                    restart = Task { try await TestBroker.restartBroker() }
                }
                if let task = restart, batches > 3 {
                    // Keep publishing until the restart finished and a few batches went through.
                    if await taskFinished(task), notConfirmed >= 0, batches > 10 { break }
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            try await restart?.value
            // A few batches after the restart must have been confirmed on the new connection.
            let after = try await publisher.publish((0..<10).map { OutgoingMessage.test(queue: queue, index: $0) })
            #expect(after.allSatisfy { $0.isConfirmed })

            // Every message reported confirmed is in the queue.
            let total = Int(try await connection.queueState(queue).messageCount)
            #expect(total >= confirmed.count)
            let consumer = try await connection.consume(queue: queue, prefetch: 500)
            let collector = DeliveryCollector(consumer) { consumer.ack($0) }
            let deliveries = await collector.waitFor(count: total, timeout: .seconds(20))
            #expect(deliveries.count == total)
            let received = Set(deliveries.compactMap(\.properties.messageId))
            #expect(confirmed.count > 100)
            #expect(confirmed.isSubset(of: received), "\(confirmed.subtracting(received).count) confirmed messages are missing")
            await consumer.cancel()
            collector.stop()
            try await connection.deleteQueue(queue)
            await connection.close()
        }

        @Test func brokerRestartDuringConsumingIsRecovered() async throws {
            let connection = try await TestBroker.connect { $0.heartbeat = .seconds(2) }
            let queue = TestBroker.uniqueName("recover.con")
            try await connection.declare(AMQPQueue(name: queue))
            let messages = (0..<60).map { OutgoingMessage.test(queue: queue, index: $0) }
            #expect(try await AMQPPublisher(connection: connection, window: 100).publish(messages).allSatisfy { $0.isConfirmed })

            let consumerConnection = try await TestBroker.connect { $0.heartbeat = .seconds(2) }
            let consumer = try await consumerConnection.consume(queue: queue, prefetch: 10)
            let acked = NIOLockedValueBox(0)
            // Acknowledge the first 20 only; the rest stay unacknowledged until the restart.
            let collector = DeliveryCollector(consumer) { delivery in
                let ack = acked.withLockedValue { count in
                    count += 1
                    return count <= 20 || delivery.isRedelivered || count > 30
                }
                if ack { consumer.ack(delivery) }
            }
            await collector.waitFor(count: 30)
            try await TestBroker.restartBroker()
            // The consumer is re-opened on the new connection and receives the rest.
            let ids = Set(messages.compactMap(\.properties.messageId))
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                if Set(collector.deliveries.compactMap(\.properties.messageId)) == ids { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(Set(collector.deliveries.compactMap(\.properties.messageId)) == ids)
            #expect(collector.deliveries.contains { $0.isRedelivered })
            try await Task.sleep(for: .milliseconds(300))
            let state = try await connection.queueState(queue)
            #expect(state.messageCount == 0)
            #expect(state.consumerCount == 1)
            await consumer.cancel()
            collector.stop()
            try await connection.deleteQueue(queue)
            await consumerConnection.close()
            await connection.close()
        }

        /// A frozen broker (SIGSTOP) sends no heartbeats and closes nothing: only the client's
        /// heartbeat check can notice. The unacknowledged delivery comes back redelivered on
        /// the recovered connection.
        @Test func missedHeartbeatsAreDetectedAndRecovered() async throws {
            // The node `scripts/rabbitmq` runs: its data folder is ES_RABBITMQ_DIR when set.
            let directory =
                ProcessInfo.processInfo.environment["ES_RABBITMQ_DIR"].map { URL(fileURLWithPath: $0) }
                ?? TestRepository.root.appendingPathComponent(".run/rabbitmq")
            let pidFile = directory.appendingPathComponent("rabbitmq.pid").path
            guard let pidText = try? String(contentsOfFile: pidFile, encoding: .utf8),
                let pid = Int32(pidText.trimmingCharacters(in: .whitespacesAndNewlines))
            else {
                Issue.record("the private node's pid file \(pidFile) is missing: start the broker with scripts/rabbitmq")
                return
            }
            let connection = try await TestBroker.connect()
            let queue = TestBroker.uniqueName("recover.heartbeat")
            try await connection.declare(AMQPQueue(name: queue))
            let messages = [OutgoingMessage.test(queue: queue)]
            #expect(try await AMQPPublisher(connection: connection, window: 1).publish(messages) == [.confirmed])
            await connection.close()

            let consumerConnection = try await TestBroker.connect {
                $0.heartbeat = .seconds(1)
                $0.connectTimeout = .seconds(1)
            }
            let consumer = try await consumerConnection.consume(queue: queue, prefetch: 1)
            let collector = DeliveryCollector(consumer)
            let first = await collector.waitFor(count: 1)
            #expect(first.first?.isRedelivered == false)
            kill(pid, SIGSTOP)
            try await Task.sleep(for: .seconds(4))
            kill(pid, SIGCONT)
            let both = await collector.waitFor(count: 2, timeout: .seconds(20))
            #expect(both.count == 2)
            #expect(both.last?.isRedelivered == true)
            #expect(both.last?.properties.messageId == messages[0].properties.messageId)
            if let delivery = both.last { consumer.ack(delivery) }
            await consumer.cancel()
            collector.stop()
            try await consumerConnection.deleteQueue(queue)
            await consumerConnection.close()
        }

        private func taskFinished(_ task: Task<Void, any Error>) async -> Bool {
            await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    _ = try? await task.value; return true
                }
                group.addTask {
                    try? await Task.sleep(for: .milliseconds(1)); return false
                }
                let first = await group.next()!
                group.cancelAll()
                return first
            }
        }
    }
}
