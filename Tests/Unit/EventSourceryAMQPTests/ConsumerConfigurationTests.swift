import TestSupport
import EventSourceryAMQP
@testable import EventSourceryServices
import Foundation
import Testing

/// `handlers:` and `consumer:` in the service configuration, and their validation.
struct ConsumerConfigurationTests {
    private func yaml(order handlers: String, consumer: String = "") -> String {
        """
        contexts:
          order:
            store: sqlite:order.sqlite
            publishes: [OrderPlaced]
            handlers:
        \(handlers)
        \(consumer)
          payment:
            store: sqlite:payment.sqlite
            publishes: [PaymentSucceeded, PaymentFailed]
        """
    }

    private func load(_ text: String) throws(ConfigurationError) -> ServiceConfiguration {
        let configuration = try ServiceConfiguration.parse(text, file: "test.yaml")
        try configuration.validate()
        return configuration
    }

    private func error(_ text: String) -> ConfigurationError? {
        do {
            _ = try load(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func readsHandlersAndConsumerSettings() throws {
        let configuration = try load(
            yaml(
                order: """
                          mark-paid:
                            subscribes: [payment.PaymentSucceeded]
                          cancel:
                            subscribes: [payment.PaymentFailed]
                    """,
                consumer: """
                        consumer:
                          prefetch: 20
                          delivery_limit: 3
                          max_body_bytes: 4096
                          ack_batch: 10
                          concurrency: 2
                          batch_size: 25
                          initial_backoff_ms: 250
                          max_backoff_ms: 60000
                    """
            ))
        let order = try #require(configuration.contexts["order"])
        #expect(order.handlers["mark-paid"]?.subscribes == ["payment.PaymentSucceeded"])
        #expect(order.consumer.prefetch == 20)
        #expect(order.consumer.deliveryLimit == 3)
        #expect(order.consumer.maximumBodyBytes == 4096)
        #expect(order.consumer.ackBatch == 10)
        #expect(order.consumer.concurrency == 2)
        #expect(order.consumer.batchSize == 25)
        #expect(order.consumer.initialBackoffMilliseconds == 250)
        #expect(order.consumer.maximumBackoffMilliseconds == 60000)
        let description = try #require(configuration.contextDescription("order"))
        #expect(description.subscriptions.map(\.routingKey) == ["payment.PaymentFailed", "payment.PaymentSucceeded"])
        #expect(description.deliveryLimit == 3)
        #expect(configuration.contexts["payment"]?.consumer == ServiceConfiguration.Consumer())
    }

    @Test func theRetryDelaysReachTheConsumerAndAreChecked() throws {
        let retries = """
                consumer:
                  initial_backoff_ms: 500
                  max_backoff_ms: 400
            """
        let failure = try #require(
            error(yaml(order: "      mark-paid:\n        subscribes: [payment.PaymentSucceeded]", consumer: retries)))
        #expect(failure.entry == "contexts.order.consumer.max_backoff_ms")
        #expect(failure.message.contains("must be at least retryFirstDelay (0.5 seconds), got 0.4 seconds"))
        let zero = try #require(
            error(
                yaml(
                    order: "      mark-paid:\n        subscribes: [payment.PaymentSucceeded]",
                    consumer: "    consumer:\n      initial_backoff_ms: 0")))
        #expect(zero.entry == "contexts.order.consumer.initial_backoff_ms")

        let configuration = try load(
            yaml(
                order: "      mark-paid:\n        subscribes: [payment.PaymentSucceeded]",
                consumer: "    consumer:\n      delivery_limit: 7\n      initial_backoff_ms: 250\n      max_backoff_ms: 2000")
        ).consumerConfiguration(context: "order")
        #expect(configuration.deliveryLimit == 7)
        #expect(configuration.retryFirstDelay == .milliseconds(250))
        #expect(configuration.retryMaximumDelay == .seconds(2))
    }

    @Test func theShippedConfigurationIsValid() throws {
        let path = TestRepository.root.appendingPathComponent("config/eventsourcery.yaml").path
        let configuration = try ServiceConfiguration.load(path: path, environment: [:])
        // The coordinated flow: only the order context's fulfilment subscribes to events;
        // every context accepts commands, and the order context sends to payment and invoice.
        #expect(
            configuration.contextDescription("order")?.subscriptions.map(\.routingKey) == [
                "invoice.InvoiceIssued", "order.OrderPlaced", "payment.PaymentFailed", "payment.PaymentSucceeded",
            ])
        #expect(configuration.contextDescription("payment")?.subscriptions.isEmpty == true)
        #expect(configuration.contextDescription("invoice")?.subscriptions.isEmpty == true)
        #expect(configuration.contexts.values.filter(\.acceptsCommands).count == 3)
        #expect(configuration.contextDescription("order")?.commandTargets == ["payment", "invoice"])
        let deadlines = try configuration.deadlines(context: "order")
        #expect(deadlines == ["payment-timeout": .seconds(5)])
        #expect(configuration.topologies.count == 3)
        #expect(
            configuration.topologies.first { $0.context == "order" }?.commandExchanges == [
                "invoice.commands", "order.commands", "payment.commands",
            ])
    }

    @Test func rejectsASubscriptionToAnUnknownContext() throws {
        let failure = try #require(
            error(
                yaml(
                    order: """
                                  mark-paid:
                                    subscribes: [billing.PaymentSucceeded]
                        """)))
        #expect(failure.origin == .file("test.yaml", line: 7, column: 13))
        #expect(failure.entry == "contexts.order.handlers.mark-paid.subscribes")
        #expect(failure.message.contains("unknown context 'billing'"))
    }

    @Test func rejectsASubscriptionToATypeTheSourceDoesNotPublish() throws {
        let failure = try #require(
            error(
                yaml(
                    order: """
                                  mark-paid:
                                    subscribes: [payment.PaymentRefunded]
                        """)))
        #expect(failure.entry == "contexts.order.handlers.mark-paid.subscribes")
        #expect(failure.message.contains("does not publish 'PaymentRefunded'"))
        #expect(failure.description.hasPrefix("test.yaml:7:13: contexts.order.handlers.mark-paid.subscribes: "))
    }

    @Test func rejectsAMalformedSubscription() throws {
        for text in ["PaymentSucceeded", "payment.", ".PaymentSucceeded", "a.b.c"] {
            let failure = try #require(
                error(
                    yaml(
                        order: """
                                      mark-paid:
                                        subscribes: [\"\(text)\"]
                            """)))
            #expect(failure.entry == "contexts.order.handlers.mark-paid.subscribes")
            #expect(failure.message.contains("source.EventType"))
        }
    }

    @Test func rejectsADuplicateSubscriptionWithinAHandler() throws {
        let failure = try #require(
            error(
                yaml(
                    order: """
                                  mark-paid:
                                    subscribes: [payment.PaymentSucceeded, payment.PaymentSucceeded]
                        """)))
        #expect(failure.entry == "contexts.order.handlers.mark-paid.subscribes")
        #expect(failure.message.contains("twice"))
    }

    @Test func rejectsUnknownKeysAndBadConsumerValues() throws {
        let unknown = try #require(
            error(
                yaml(
                    order: """
                                  mark-paid:
                                    subscribe: [payment.PaymentSucceeded]
                        """)))
        #expect(unknown.entry == "contexts.order.handlers.mark-paid.subscribe")
        let zero = try #require(
            error(
                yaml(
                    order: """
                              mark-paid:
                                subscribes: [payment.PaymentSucceeded]
                        """,
                    consumer: """
                            consumer:
                              delivery_limit: 0
                        """
                )))
        #expect(zero.entry == "contexts.order.consumer.delivery_limit")
        let negative = try #require(
            error(
                yaml(
                    order: """
                              mark-paid:
                                subscribes: [payment.PaymentSucceeded]
                        """,
                    consumer: """
                            consumer:
                              batch_size: -1
                        """
                )))
        #expect(negative.entry == "contexts.order.consumer.batch_size")
        #expect(negative.message == "batchSize must be positive, got -1")
    }
}
