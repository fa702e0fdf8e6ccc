import EventSourceryRabbitMQ
import TestSupport
import Foundation
import Testing

extension AMQPBrokerTests {
    @Suite struct ServiceTests {
        @Test func runConnectsAndClosesWhenCancelled() async throws {
            let connection = AMQPConnection(configuration: try TestBroker.configuration, logger: TestBroker.logger)
            let service = Task { try await connection.run() }
            let queue = TestBroker.uniqueName("service")
            // Operations issued before run() connected fail fast; retry until it is up.
            var declared = false
            for _ in 0..<100 where !declared {
                declared = (try? await connection.declare(AMQPQueue(name: queue, durable: false))) != nil
                if !declared { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(declared)
            try await connection.deleteQueue(queue)
            service.cancel()
            try await service.value
            await #expect {
                try await connection.queueState(queue)
            } throws: { error in
                (error as? AMQPError)?.code == .closedByClient
            }
        }

        @Test func runRejectsWrongCredentialsInsteadOfRetrying() async throws {
            var configuration = try TestBroker.configuration
            configuration.password = "wrong"
            let connection = AMQPConnection(configuration: configuration, logger: TestBroker.logger)
            await #expect {
                try await connection.run()
            } throws: { error in
                (error as? AMQPError)?.code == .authenticationFailed
            }
            await connection.close()
        }
    }
}
