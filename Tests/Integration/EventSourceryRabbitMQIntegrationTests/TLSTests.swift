import EventSourceryRabbitMQ
import TestSupport
import Foundation
import Testing

/// Where the TLS listener of the private node is (override with `AMQP_TLS_URL`/`AMQP_TLS_CA`).
enum TLSFixture {
    static var caFile: String? {
        let path =
            ProcessInfo.processInfo.environment["AMQP_TLS_CA"]
            ?? TestRepository.root.appendingPathComponent(".run/rabbitmq/tls/ca.pem").path
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    static var url: String {
        ProcessInfo.processInfo.environment["AMQP_TLS_URL"] ?? "amqps://guest:guest@localhost:5674/"
    }
}

extension AMQPBrokerTests {
    /// TLS against the private node's listener (`scripts/rabbitmq` makes a throw-away CA).
    @Suite(.enabled(if: TLSFixture.caFile != nil, "needs the TLS listener of scripts/rabbitmq"))
    struct TLSTests {

        @Test func trustedCertificateConnectsAndPublishes() async throws {
            var configuration = try AMQPConnection.Configuration(url: TLSFixture.url)
            configuration.tls?.caFile = TLSFixture.caFile
            #expect(configuration.tls?.verifyPeer == true)
            let connection = AMQPConnection(configuration: configuration, logger: TestBroker.logger)
            try await connection.connect()
            let queue = TestBroker.uniqueName("tls")
            try await connection.declare(AMQPQueue(name: queue, durable: false))
            let outcome = try await AMQPPublisher(connection: connection, window: 1).publish(.test(queue: queue))
            #expect(outcome == .confirmed)
            #expect(try await connection.queueState(queue).messageCount == 1)
            try await connection.deleteQueue(queue)
            await connection.close()
        }

        @Test func untrustedCertificateIsTLSFailure() async throws {
            let configuration = try AMQPConnection.Configuration(url: TLSFixture.url)
            #expect(configuration.tls?.caFile == nil)
            let connection = AMQPConnection(configuration: configuration, logger: TestBroker.logger)
            await #expect {
                try await connection.connect()
            } throws: { error in
                (error as? AMQPError)?.code == .tlsFailure
            }
            await connection.close()
        }

        @Test func verificationCanBeSwitchedOff() async throws {
            let connection = AMQPConnection(
                configuration: try AMQPConnection.Configuration(url: TLSFixture.url + "?verify=verify_none"), logger: TestBroker.logger)
            try await connection.connect()
            let queue = TestBroker.uniqueName("tls.noverify")
            #expect(try await connection.declare(AMQPQueue(name: queue, durable: false)).messageCount == 0)
            try await connection.deleteQueue(queue)
            await connection.close()
        }
    }
}
