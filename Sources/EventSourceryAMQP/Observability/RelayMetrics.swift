import Metrics

/// The counters and the confirm timer of one ``OutboxRelay``, created once per relay.
struct RelayMetrics: Sendable {
    let published: Counter
    let failedAttempts: Counter
    let confirmDuration: Metrics.Timer

    init(context: String) {
        let dimensions = [("context", context)]
        published = Counter(label: MetricName.outboxPublished, dimensions: dimensions)
        failedAttempts = Counter(label: MetricName.outboxFailedAttempts, dimensions: dimensions)
        confirmDuration = Metrics.Timer(label: MetricName.outboxConfirmDuration, dimensions: dimensions)
    }

    /// Records how long a batch took to be confirmed since `start`.
    func recordConfirm(since start: ContinuousClock.Instant) {
        confirmDuration.record(duration: ContinuousClock.now - start)
    }

    /// Counts what one round did.
    func record(_ statistics: OutboxRelay.Statistics) {
        if statistics.published > 0 { published.increment(by: statistics.published) }
        if statistics.failed > 0 { failedAttempts.increment(by: statistics.failed) }
    }
}
