import DemoContexts
import EventSourcery
import Foundation

/// The configuration of the demo's contexts `order`, `payment` and `invoice` for the system
/// tests that run them as processes, each with a SQLite store in the test's folder.
enum DemoConfiguration {
    /// The YAML of the demo's contexts on `brokerURL`, the relay polling every 20 ms: the order
    /// context's fulfilment process manager coordinates payment and invoice with commands.
    ///
    /// - Parameters:
    ///   - broker: Further lines of the `broker:` section, such as `heartbeat_seconds: 2`.
    ///   - stores: The store of a context, by context name, instead of its SQLite file.
    ///   - consumer: Lines of every context's `consumer:` section, such as `prefetch: 100`.
    ///   - paymentTimeout: The deadline `payment-timeout`, in seconds.
    ///   - moreContexts: Further contexts, written as entries of `contexts:` (indented by two).
    static func yaml(
        brokerURL: String, directory: URL, broker: [String] = [], stores: [String: String] = [:], consumer: [String] = [],
        paymentTimeout: Double = 30,
        moreContexts: String = ""
    ) -> String {
        func store(_ context: String) -> String {
            stores[context] ?? "sqlite:" + directory.appendingPathComponent("\(context).sqlite").path
        }
        let consumerSection = consumer.isEmpty ? "" : "\n    consumer:" + consumer.map { "\n      \($0)" }.joined()
        // Every invoice takes the next number of one counter stream: one command after another.
        let invoiceConsumer =
            "\n    consumer:" + (consumer.filter { !$0.hasPrefix("concurrency:") } + ["concurrency: 1"]).map { "\n      \($0)" }.joined()
        return """
            broker:
              url: \(brokerURL)\(broker.map { "\n  \($0)" }.joined())
            relay:
              idle_poll_ms: 20
            contexts:
              order:
                store: \(store("order"))
                publishes: [OrderPlaced, OrderPaid, OrderCancelled, OrderCompleted]
                handlers:
                  fulfilment:
                    subscribes: [order.OrderPlaced, payment.PaymentSucceeded, payment.PaymentFailed, invoice.InvoiceIssued]
                accepts_commands: true
                command_targets: [payment, invoice]
                deadlines:
                  payment-timeout: \(paymentTimeout)\(consumerSection)
              payment:
                store: \(store("payment"))
                publishes: [PaymentSucceeded, PaymentFailed]
                accepts_commands: true\(consumerSection)
              invoice:
                store: \(store("invoice"))
                publishes: [InvoiceIssued]
                accepts_commands: true\(invoiceConsumer)

            """ + moreContexts
    }

    /// The orders whose fulfilment flow started (`FulfilmentAdvanced` `charging`) in the order
    /// store, in commit order: what the order context's `fulfilment` handler applied.
    static func flowsStarted(_ store: EventStore) async throws -> [String] {
        var orders: [String] = []
        var position: Int64 = 0
        while true {
            let page = try await store.readAll(after: position, limit: 5000)
            for event in page {
                if let advanced = event.event as? FulfilmentAdvanced, advanced.stage == .charging { orders.append(advanced.orderID) }
            }
            guard let last = page.last else { return orders }
            position = last.position
        }
    }
}
