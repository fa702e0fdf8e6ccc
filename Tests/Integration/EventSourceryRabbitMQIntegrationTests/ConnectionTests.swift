import EventSourceryRabbitMQ
import TestSupport
import Foundation
import Testing

extension AMQPBrokerTests {
    @Suite struct ConnectionTests {
        private func expectError(
            _ code: AMQPError.Code, replyCode: UInt16? = nil, _ adjust: @escaping (inout AMQPConnection.Configuration) -> Void
        ) async throws {
            var configuration = try TestBroker.configuration
            configuration.connectTimeout = .seconds(3)
            adjust(&configuration)
            let connection = AMQPConnection(configuration: configuration, logger: TestBroker.logger)
            await #expect {
                try await connection.connect()
            } throws: { error in
                guard let error = error as? AMQPError else { return false }
                return error.code == code && (replyCode == nil || error.replyCode == replyCode)
            }
            await connection.close()
        }

        @Test func wrongPasswordIsAuthenticationFailed() async throws {
            try await expectError(.authenticationFailed, replyCode: 403) { $0.password = "definitely-wrong" }
        }

        @Test func unknownUserIsAuthenticationFailed() async throws {
            try await expectError(.authenticationFailed) { $0.user = "nobody-\(UUID().uuidString)" }
        }

        @Test func missingVhostIsVhostNotFound() async throws {
            try await expectError(.vhostNotFound, replyCode: 530) { $0.vhost = "no-such-vhost-\(UUID().uuidString)" }
        }

        @Test func refusedPortIsConnectionRefused() async throws {
            try await expectError(.connectionRefused) {
                $0.host = "127.0.0.1"
                $0.port = 1
            }
        }

        @Test func errorMessageSaysWhatToCheck() async throws {
            var configuration = try TestBroker.configuration
            configuration.password = "wrong"
            let connection = AMQPConnection(configuration: configuration, logger: TestBroker.logger)
            defer { Task { await connection.close() } }
            do {
                try await connection.connect()
                Issue.record("login with a wrong password succeeded")
            } catch let error as AMQPError {
                #expect(error.description.contains("user and password"))
                #expect(error.replyText?.contains("ACCESS_REFUSED") == true)
            }
        }

        @Test func secondVhostWorks() async throws {
            let connection = try await TestBroker.connect {
                $0.vhost = "es-test"
                $0.user = "es-test"
                $0.password = "es-test"
            }
            let queue = TestBroker.uniqueName("vhost")
            let state = try await connection.declare(AMQPQueue(name: queue, durable: false, autoDelete: false))
            #expect(state.name == queue)
            #expect(state.messageCount == 0)
            try await connection.deleteQueue(queue)
            await connection.close()
        }

        @Test func operationsAfterCloseFail() async throws {
            let connection = try await TestBroker.connect()
            await connection.close()
            await #expect {
                try await connection.declare(AMQPQueue(name: TestBroker.uniqueName("closed")))
            } throws: { error in
                (error as? AMQPError)?.code == .closedByClient
            }
        }

        @Test func operationsBeforeConnectFail() async throws {
            let connection = AMQPConnection(configuration: try TestBroker.configuration, logger: TestBroker.logger)
            await #expect {
                try await connection.queueState("anything")
            } throws: { error in
                (error as? AMQPError)?.code == .connectionClosed
            }
            await connection.close()
        }
    }
}
