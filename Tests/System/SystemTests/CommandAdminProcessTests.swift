import TestSupport
import DemoContexts
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import Foundation
import Testing

/// The kit's checks of commands and deadlines against the code, and the admin modes for
/// skipped handlers, forced reruns and parked commands — processes on their own stores, no broker.
@Suite struct CommandAdminProcessTests {
    private func directory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("command-admin-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// The demo configuration with `replace` applied to its text.
    private func demoConfiguration(in directory: URL, _ replace: (String) -> String = { $0 }) throws -> String {
        let path = directory.appendingPathComponent("eventsourcery.yaml").path
        try replace(DemoConfiguration.yaml(brokerURL: "amqp://guest:guest@127.0.0.1:1/", directory: directory))
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aContextWhoseCodeHandlesCommandsNeedsAcceptsCommands() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = try demoConfiguration(in: directory) {
            $0.replacingOccurrences(of: "publishes: [InvoiceIssued]\n    accepts_commands: true", with: "publishes: [InvoiceIssued]")
                .replacingOccurrences(of: "command_targets: [payment, invoice]", with: "command_targets: [payment]")
        }
        let result = try await ChildProcess.run(
            BuiltProducts.path("demo-service"), ["--context", "invoice", "--role", "consumer", "--config", config],
            environment: ["AMQP_URL": ""])
        #expect(result.status == 78, "\(result.standardError)")
        #expect(
            result.standardError.contains("contexts.invoice.accepts_commands: is false, but the code handles IssueInvoice; set it to true"))
    }

    @Test func aDeadlineTheCodeDoesNotDeclareIsRejected() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = try demoConfiguration(in: directory) {
            $0.replacingOccurrences(of: "payment-timeout: 30.0", with: "payment-timeout: 30.0\n      shipping-timeout: 10")
        }
        let result = try await ChildProcess.run(
            BuiltProducts.path("demo-service"), ["--context", "order", "--role", "consumer", "--config", config],
            environment: ["AMQP_URL": ""])
        #expect(result.status == 78, "\(result.standardError)")
        #expect(
            result.standardError.contains(
                "contexts.order.deadlines.shipping-timeout: no deadline of that name is built in; the code declares payment-timeout"))
    }

    /// Runs `body` with the demo configuration in a fresh folder and the order context's
    /// SQLite store opened, then closes it and removes the folder.
    private func withOrderStore(
        _ body: (_ config: String, _ storage: SQLiteEventStorage, _ store: EventStore) async throws -> Void
    )
        async throws
    {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = try demoConfiguration(in: directory)
        let storage = try SQLiteEventStorage(path: directory.appendingPathComponent("order.sqlite").path)
        defer { try? storage.close() }
        let store = EventStore(storage: storage, registry: EventRegistry(DemoContext.eventTypes))
        try await body(config, storage, store)
    }

    @Test func parkedCommandsAreListedAndRetried() async throws {
        try await withOrderStore { config, storage, store in
            var batch = WriteBatch()
            let id = UUID.timeOrdered()
            try batch.send(ChargePayment(orderID: "42", amount: 10), to: "payment", id: id)
            _ = try await store.commit(batch)
            let claimed = try await storage.claimCommands(limit: 10, now: Date(), leaseDuration: 30)
            #expect(claimed.map(\.command.id) == [id])
            _ = try await storage.recordFailedCommandAttempt(id, error: "unroutable", nextAttemptAt: Date(), attemptLimit: 1)

            let consumer = BuiltProducts.path("context-consumer")
            let listed = try await ChildProcess.run(
                consumer, ["--context", "order", "--config", config, "--list-parked-commands"], environment: ["AMQP_URL": ""])
            #expect(listed.status == 0, "\(listed.standardError)")
            #expect(listed.standardOutput.contains("1 parked command(s) in order"))
            #expect(listed.standardOutput.contains("\(id)\tChargePayment\tto payment\tattempts 1\tunroutable"))

            let retried = try await ChildProcess.run(
                consumer, ["--context", "order", "--config", config, "--retry-parked-commands"], environment: ["AMQP_URL": ""])
            #expect(retried.status == 0, "\(retried.standardError)")
            #expect(retried.standardOutput.contains("1 parked command(s) due again"))
            #expect(try await storage.commandOutboxEntries(in: [.parked], limit: 10).isEmpty)
            #expect(try await storage.commandOutboxEntries(in: [.pending], limit: 10).map(\.command.id) == [id])
        }
    }

    @Test func skippedHandlersAreListedAndARerunNeedsTheCodeAndARecordedSkip() async throws {
        try await withOrderStore { config, storage, store in
            let placed = EventEnvelope(OrderPlaced(orderID: "7", amount: 5))
            let input = HandlerInput(envelope: placed, sourceContext: "order", streamID: "order-7", streamVersion: 1)
            var batch = WriteBatch()
            try batch.append(
                [EventEnvelope(try HandlerSkipped(handler: "fulfilment", condition: "in-stock", input: input))],
                to: HandlerSkipped.stream(for: "order"))
            _ = try await store.commit(batch)

            let listed = try await ChildProcess.run(
                BuiltProducts.path("context-consumer"), ["--context", "order", "--config", config, "--list-skipped-handlers"],
                environment: ["AMQP_URL": ""])
            #expect(listed.status == 0, "\(listed.standardError)")
            #expect(listed.standardOutput.contains("1 skipped handler(s) in skipped-order"))
            #expect(listed.standardOutput.contains("\tfulfilment\tin-stock\tOrderPlaced\t\(placed.id)\torder/order-7"))
            #expect(listed.standardOutput.contains("0 forced rerun(s)"))

            /// `--rerun-handler fulfilment` for `event` through `executable`.
            func rerun(_ executable: String, event: UUID) async throws -> ChildProcess.Result {
                try await ChildProcess.run(
                    BuiltProducts.path(executable),
                    [
                        "--context", "order", "--config", config, "--rerun-handler", "fulfilment", "--event", "\(event)", "--reason",
                        "restocked",
                    ],
                    environment: ["AMQP_URL": ""])
            }
            let generic = try await rerun("context-consumer", event: placed.id)
            #expect(generic.status == 78, "the generic build has no handler code: \(generic.standardError)")

            let unknown = try await rerun("demo-service", event: UUID())
            #expect(unknown.status == 1, "no skip recorded for that event: \(unknown.standardError)")

            // The demo's fulfilment runs for the skipped OrderPlaced: its flow starts.
            let forced = try await rerun("demo-service", event: placed.id)
            #expect(forced.status == 0, "\(forced.standardError)")
            #expect(forced.standardOutput.contains("fulfilment ran for \(placed.id)"))
            #expect(try await DemoConfiguration.flowsStarted(store) == ["7"])
            let reruns = try await ContextAdmin.reruns(context: "order", store: store)
            #expect(reruns.map(\.reason) == ["restocked"])
        }
    }
}
