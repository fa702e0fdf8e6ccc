@testable import EventSourceryAMQP
import EventSourceryRabbitMQ
import Testing

/// `validate()` of the relay's and the consumer's configurations: a typed error naming the
/// field, never a crash or a silently corrected value.
struct BridgeConfigurationTests {
    private func failure(_ body: () throws(AMQPError) -> Void) -> AMQPError? {
        do {
            try body()
            return nil
        } catch {
            return error
        }
    }

    @Test func theDefaultsAreValid() throws {
        try OutboxRelay.Configuration(context: "order").validate()
        try ContextConsumer.Configuration(context: "order").validate()
        try RetryPolicy().validate()
    }

    @Test func relayFieldsAreChecked() {
        let cases: [(OutboxRelay.Configuration, String)] = [
            (OutboxRelay.Configuration(context: ""), "context"),
            (OutboxRelay.Configuration(context: "order", batchSize: 0), "batchSize"),
            (OutboxRelay.Configuration(context: "order", leaseDuration: .seconds(-1)), "leaseDuration"),
            (OutboxRelay.Configuration(context: "order", idlePollInterval: .zero), "idlePollInterval"),
            (OutboxRelay.Configuration(context: "order", retention: .seconds(-1)), "retention"),
            (OutboxRelay.Configuration(context: "order", linger: .milliseconds(-1)), "linger"),
            (OutboxRelay.Configuration(context: "order", linger: .milliseconds(1001)), "linger"),
            (OutboxRelay.Configuration(context: "order", retry: RetryPolicy(attemptLimit: 0)), "retry.attemptLimit"),
            (
                OutboxRelay.Configuration(context: "order", retry: RetryPolicy(initialBackoff: .seconds(2), maximumBackoff: .seconds(1))),
                "retry.backoff.maximumDelay"
            ),
        ]
        for (configuration, field) in cases {
            let error = failure(configuration.validate)
            #expect(error?.code == .invalidArgument)
            #expect(error?.field == field)
            #expect(error?.message.hasPrefix(field) == true)
        }
    }

    @Test func aRelayLingersOnlyWhenBusyAndConfigured() {
        let linger = Duration.milliseconds(2)
        // Entries were waiting when the last round that published something ended: linger.
        #expect(OutboxRelay.lingers(linger, lastRoundClaimed: 3, waited: .microseconds(20)))
        // The wait lasted: the relay was idle, the next entry goes out at once.
        #expect(!OutboxRelay.lingers(linger, lastRoundClaimed: 3, waited: .milliseconds(4)))
        // The last round found nothing (a poll): no linger.
        #expect(!OutboxRelay.lingers(linger, lastRoundClaimed: 0, waited: .microseconds(20)))
        // Not configured.
        #expect(!OutboxRelay.lingers(.zero, lastRoundClaimed: 3, waited: .microseconds(20)))
        #expect(OutboxRelay.Configuration(context: "order").linger == .zero)
    }

    @Test func consumerFieldsAreCheckedNotClamped() {
        let zero = ContextConsumer.Configuration(context: "order", prefetch: 0)
        #expect(zero.prefetch == 0)
        #expect(failure(zero.validate)?.message == "prefetch must be positive, got 0")
        #expect(failure(ContextConsumer.Configuration(context: "order", deliveryLimit: -1).validate)?.field == "deliveryLimit")
        #expect(failure(ContextConsumer.Configuration(context: "order", ackBatchSize: 0).validate)?.field == "ackBatchSize")
        #expect(failure(ContextConsumer.Configuration(context: "order", concurrency: 0).validate)?.field == "concurrency")
        #expect(failure(ContextConsumer.Configuration(context: "order", conflictRetries: -1).validate)?.field == "conflictRetries")
        #expect(failure(ContextConsumer.Configuration(context: "order", ackFlushInterval: .zero).validate)?.field == "ackFlushInterval")
        #expect(failure(ContextConsumer.Configuration(context: "order", inboxRetention: .seconds(-1)).validate)?.field == "inboxRetention")
        #expect(failure(ContextConsumer.Configuration(context: "order", inboxPruneInterval: .zero).validate)?.field == "inboxPruneInterval")
        #expect(ContextConsumer.Configuration(context: "order").inboxRetention == nil, "the inbox is kept for ever by default")
    }
}
