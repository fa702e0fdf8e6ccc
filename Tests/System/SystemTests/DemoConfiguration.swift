import Foundation

/// The configuration of the demo's contexts `order`, `payment` and `invoice` for the system
/// tests that run them as processes, each with a SQLite store in the test's folder.
enum DemoConfiguration {
    /// The YAML of the demo's contexts on `brokerURL`, the relay polling every 20 ms.
    ///
    /// - Parameters:
    ///   - broker: Further lines of the `broker:` section, such as `heartbeat_seconds: 2`.
    ///   - stores: The store of a context, by context name, instead of its SQLite file.
    ///   - consumer: Lines of every context's `consumer:` section, such as `prefetch: 100`.
    ///   - moreContexts: Further contexts, written as entries of `contexts:` (indented by two).
    static func yaml(
        brokerURL: String, directory: URL, broker: [String] = [], stores: [String: String] = [:], consumer: [String] = [],
        moreContexts: String = ""
    ) -> String {
        func store(_ context: String) -> String {
            stores[context] ?? "sqlite:" + directory.appendingPathComponent("\(context).sqlite").path
        }
        let consumerSection = consumer.isEmpty ? "" : "\n    consumer:" + consumer.map { "\n      \($0)" }.joined()
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
                  mark-paid:
                    subscribes: [payment.PaymentSucceeded]
                  cancel-unpaid:
                    subscribes: [payment.PaymentFailed]
                  complete-invoiced:
                    subscribes: [invoice.InvoiceIssued]\(consumerSection)
              payment:
                store: \(store("payment"))
                publishes: [PaymentSucceeded, PaymentFailed]
                handlers:
                  charge-order:
                    subscribes: [order.OrderPlaced]\(consumerSection)
              invoice:
                store: \(store("invoice"))
                publishes: [InvoiceIssued]
                handlers:
                  issue-invoice:
                    subscribes: [payment.PaymentSucceeded]\(consumerSection)

            """ + moreContexts
    }
}
