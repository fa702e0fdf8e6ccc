import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import Foundation
import Testing

/// Tests that restart the broker. `scripts/test` runs suites named `…FaultTests` on their
/// own, after the others, so a restart never disturbs another test. Each runs on both stores.
@Suite(.serialized, .timeLimit(.minutes(3)), .requiresBroker, .requiresPostgres)
struct RelayFaultTests {
    @Test(.serialized, arguments: TestStore.Kind.allCases)
    func brokerRestartWhileRelayingLosesNothing(store: TestStore.Kind) async throws {
        let fixture = try await RelayFixture(queueArguments: ["x-queue-type": .string("quorum")], store: store)
        defer { Task { await fixture.tearDown() } }
        let stored = try await fixture.prefill(5000, streams: 20)
        let relay = fixture.relay(batchSize: 250, window: 100)
        let connectionTask = Task { try await fixture.connection.run() }
        let relayTask = Task { try await relay.run() }

        // Restart once part of the outbox has gone out.
        try await waitUntil(timeout: .seconds(30)) { try await fixture.storage.outboxCounts().published >= 500 }
        try await TestBroker.restartBroker()
        try await waitUntil(timeout: .seconds(90)) { try await fixture.storage.outboxCounts().pending == 0 }
        relayTask.cancel()
        _ = await relayTask.result

        let counts = try await fixture.storage.outboxCounts()
        #expect(counts == OutboxCounts(pending: 0, parked: 0, published: 5000))
        let deliveries = try await fixture.receive(5000, timeout: .seconds(30))
        let received = Set(deliveries.compactMap(\.properties.messageId))
        let expected = Set(stored.map { $0.uuidString.lowercased() })
        #expect(expected.subtracting(received).count == 0, "every event is in the queue at least once")
        #expect(deliveries.count >= 5000)
        connectionTask.cancel()
    }
}
