import AMQPTestSupport
import Foundation
import Testing

/// The `context-consumer` executable's admin modes and start-up checks, run as a real process.
@Suite(.timeLimit(.minutes(1)))
struct ContextConsumerProcessTests {
    private func directory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("context-consumer-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func exportsTheDefinitionsOfEveryContext() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = TestBroker.repositoryRoot.appendingPathComponent("config/eventsourcery.yaml").path
        let output = directory.appendingPathComponent("definitions.json").path
        let result = try await ChildProcess.run(BuiltProducts.path("context-consumer"), ["--context", "payment", "--config", config, "--export-definitions", output])
        #expect(result.status == 0, "\(result.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [String: Any])
        let queues = try #require(document["queues"] as? [[String: Any]])
        #expect(Set(queues.compactMap { $0["name"] as? String }) == [
            "order.inbox", "order.dead", "payment.inbox", "payment.dead", "invoice.inbox", "invoice.dead",
        ])
        let paymentInbox = try #require(queues.first { $0["name"] as? String == "payment.inbox" })
        #expect((paymentInbox["arguments"] as? [String: Any])?["x-queue-type"] as? String == "quorum")
        let bindings = try #require(document["bindings"] as? [[String: Any]])
        #expect(bindings.contains { $0["source"] as? String == "order.events" && $0["destination"] as? String == "payment.inbox" && $0["routing_key"] as? String == "order.OrderPlaced" })
    }

    @Test func anInvalidSubscriptionIsRejectedNamingTheFileAndEntry() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = directory.appendingPathComponent("eventsourcery.yaml").path
        try """
            contexts:
              order:
                store: sqlite:\(directory.path)/order.sqlite
                publishes: [OrderPlaced]
              payment:
                store: sqlite:\(directory.path)/payment.sqlite
                publishes: [PaymentSucceeded]
                handlers:
                  charge-order:
                    subscribes: [order.OrderShipped]
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let result = try await ChildProcess.run(BuiltProducts.path("context-consumer"), ["--context", "payment", "--config", config])
        #expect(result.status == 78)
        #expect(result.standardError.contains("\(config): contexts.payment.handlers.charge-order.subscribes: 'order.OrderShipped'"))
    }
}
