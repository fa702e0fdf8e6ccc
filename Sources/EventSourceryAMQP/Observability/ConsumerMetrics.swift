import Metrics

/// The counters and handler timers of one ``ContextConsumer``, created once per consumer.
struct ConsumerMetrics: Sendable {
    let context: String
    let consumed: Counter
    let duplicatesSkipped: Counter
    let handlerFailures: Counter
    let deadLettered: Counter
    /// One timer per handler name.
    let handlerDurations: [String: Metrics.Timer]

    init(context: String, handlers: [String]) {
        self.context = context
        let dimensions = [("context", context)]
        consumed = Counter(label: MetricName.consumerConsumed, dimensions: dimensions)
        duplicatesSkipped = Counter(label: MetricName.consumerDuplicatesSkipped, dimensions: dimensions)
        handlerFailures = Counter(label: MetricName.consumerHandlerFailures, dimensions: dimensions)
        deadLettered = Counter(label: MetricName.consumerDeadLettered, dimensions: dimensions)
        handlerDurations = Dictionary(
            handlers.map { ($0, Metrics.Timer(label: MetricName.consumerHandlerDuration, dimensions: dimensions + [("handler", $0)])) },
            uniquingKeysWith: { first, _ in first })
    }

    /// Counts the outcomes of deliveries handled together.
    func record(_ outcomes: [ContextConsumer.Outcome]) {
        for outcome in outcomes {
            switch outcome {
            case .processed(_, let alreadyProcessed, _):
                consumed.increment()
                if alreadyProcessed > 0 { duplicatesSkipped.increment(by: alreadyProcessed) }
            case .failed: handlerFailures.increment()
            case .held: consumed.increment()  // taken and kept in the store behind an earlier event of its stream
            case .poison: deadLettered.increment()
            case .requeued: break  // goes back to the queue; counted when it is taken
            }
        }
    }

    /// The counter of deliveries received from one inbox queue (partition).
    func partitionDeliveries(queue: String) -> Counter {
        Counter(label: MetricName.consumerPartitionDeliveries, dimensions: [("context", context), ("queue", queue)])
    }

    /// Records how long `handler` took since `start`.
    func recordHandler(_ handler: String, since start: ContinuousClock.Instant) {
        handlerDurations[handler]?.record(duration: ContinuousClock.now - start)
    }
}
