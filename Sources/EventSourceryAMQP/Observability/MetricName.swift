/// The names of the metrics the bridge and its services report through swift-metrics.
///
/// Every metric has the label `context` (the bounded context); the queue gauges have
/// `queue` too, and the handler duration `handler`. With the Prometheus backend of the
/// service executables, timers are histograms in seconds (`_bucket`, `_sum`, `_count`).
/// The counters are counted by ``OutboxRelay`` and ``ContextConsumer`` as they work; the
/// gauges are sampled by the services' health checks.
public enum MetricName {
    /// Counter: outbox entries the broker confirmed and the relay marked published.
    public static let outboxPublished = "eventsourcery_outbox_published_total"
    /// Counter: failed publish attempts (nack, unroutable return, confirm lost with the connection).
    public static let outboxFailedAttempts = "eventsourcery_outbox_failed_attempts_total"
    /// Timer: from handing a batch to the publisher until the broker confirmed (or refused) all of it.
    public static let outboxConfirmDuration = "eventsourcery_outbox_confirm_duration_seconds"
    /// Gauge: outbox entries waiting to be published.
    public static let outboxPending = "eventsourcery_outbox_pending_entries"
    /// Gauge: outbox entries parked after reaching the attempt limit.
    public static let outboxParked = "eventsourcery_outbox_parked_entries"
    /// Gauge: how long the oldest entry that is due has waited since its event was created, in
    /// seconds; 0 when nothing is due.
    public static let outboxOldestDueAge = "eventsourcery_outbox_oldest_due_age_seconds"
    /// Counter: deliveries whose handlers all committed (or had committed before), acknowledged.
    public static let consumerConsumed = "eventsourcery_consumer_consumed_total"
    /// Counter: handler runs skipped because the inbox already held the event (duplicates).
    public static let consumerDuplicatesSkipped = "eventsourcery_consumer_duplicates_skipped_total"
    /// Counter: deliveries a handler failed on; the failure is recorded and the delivery requeued.
    public static let consumerHandlerFailures = "eventsourcery_consumer_handler_failures_total"
    /// Counter: poison messages the consumer published to the dead-letter exchange.
    public static let consumerDeadLettered = "eventsourcery_consumer_dead_lettered_total"
    /// Timer: one handler deciding on one event (conditions and writes, before the commit); label `handler`.
    public static let consumerHandlerDuration = "eventsourcery_consumer_handler_duration_seconds"
    /// Counter: deliveries this consumer process received from one of its inbox queues;
    /// label `queue` (`<context>.inbox` or a partition `<context>.inbox.<p>`). Of several
    /// replicas, the one whose count of a partition grows holds that partition.
    public static let consumerPartitionDeliveries = "eventsourcery_consumer_partition_deliveries_total"
    /// Gauge: messages ready in a queue (`<context>.inbox` or its partitions, `<context>.dead`); label `queue`.
    public static let queueMessages = "eventsourcery_queue_messages"
    /// Gauge: consumers subscribed to a queue; label `queue`.
    public static let queueConsumers = "eventsourcery_queue_consumers"
}
