import EventSourceryRabbitMQ
import EventSourcery

/// The settlement of one claimed batch of outbox entries: which entries go out together,
/// and what becomes of each once the broker answered. A pure state machine: the
/// ``OutboxRelay`` publishes and writes, this value only decides.
///
/// A batch goes out in waves. A wave holds the earliest unsent entry of every stream of the
/// batch whose entries were all confirmed so far, in outbox order; the next wave starts only
/// after the broker answered for every message of the previous one. So streams are pipelined
/// against each other, but no entry of a stream is in flight while an earlier entry of that
/// stream is unconfirmed. Once an entry is not confirmed (`basic.nack`, `basic.return`, or
/// no answer before the connection was lost), the later entries of its stream are not sent
/// in this batch: they are held back and handed back to the storage, which hands them out
/// again only after the failed entry is published.
///
/// ```swift
/// var settlement = RelaySettlement(entries, retry: policy)
/// while case let wave = settlement.nextWave(), !wave.isEmpty {
///     settlement.record(try await publish(wave))
/// }
/// for action in settlement.finish() { /* mark, record, park, release */ }
/// ```
struct RelaySettlement: Sendable {
    /// What the relay does with the entries of a settled batch.
    enum Action: Sendable, Hashable {
        /// Mark the entries published: the broker confirmed them.
        case markPublished([Int64])
        /// Record a failed attempt; the entry is due again after `retryIn`.
        case retry(OutboxEntry, attempts: Int, reason: String, retryIn: Duration)
        /// Record the refusal that reaches the attempt limit: the entry is parked until requeued.
        case park(OutboxEntry, attempts: Int, reason: String)
        /// End the leases of entries that were not sent because an earlier entry of their
        /// stream was not confirmed (or the relay is stopping), without recording an attempt.
        case holdBack([OutboxEntry])
    }

    private let entries: [OutboxEntry]
    private let retry: RetryPolicy
    private let randomFraction: @Sendable () -> Double
    /// The batch's entries per stream (indices into `entries`, in outbox order), streams in
    /// the order of their first entry.
    private let streams: [[Int]]
    /// How many entries of each stream were sent.
    private var sent: [Int]
    /// Streams that may send their next entry: every entry sent so far was confirmed.
    private var open: [Int]
    /// The streams of the wave in flight, in its order.
    private var inFlight: [Int] = []
    private var published: [Int64] = []
    private var failures: [Action] = []

    /// Starts the settlement of a claimed batch.
    ///
    /// - Parameters:
    ///   - entries: The claimed entries, in outbox order.
    ///   - retry: Backoff and attempt limit for refused entries.
    ///   - randomFraction: The jitter of each retry's backoff, 0...1 (0: the full delay).
    init(_ entries: [OutboxEntry], retry: RetryPolicy, randomFraction: @escaping @Sendable () -> Double = { .random(in: 0...1) }) {
        self.entries = entries
        self.retry = retry
        self.randomFraction = randomFraction
        var streamIndex: [StreamID: Int] = [:]
        var streams: [[Int]] = []
        for (index, entry) in entries.enumerated() {
            if let stream = streamIndex[entry.event.streamID] {
                streams[stream].append(index)
            } else {
                streamIndex[entry.event.streamID] = streams.count
                streams.append([index])
            }
        }
        self.streams = streams
        sent = Array(repeating: 0, count: streams.count)
        open = Array(streams.indices)
    }

    /// The entries to publish next, at most one per stream, in outbox order; empty when the
    /// batch is done. Publish them, then pass their outcomes to ``record(_:)``.
    mutating func nextWave() -> [OutboxEntry] {
        precondition(inFlight.isEmpty, "the outcomes of the previous wave were not recorded")
        let (streams, sent) = (self.streams, self.sent)
        open.removeAll { sent[$0] == streams[$0].count }
        inFlight = open.sorted { streams[$0][sent[$0]] < streams[$1][sent[$1]] }
        return inFlight.map { entries[streams[$0][sent[$0]]] }
    }

    /// Takes the broker's answers for the wave returned by ``nextWave()``, one per entry in
    /// the same order.
    mutating func record(_ outcomes: [PublishOutcome]) {
        precondition(outcomes.count == inFlight.count, "one outcome per entry of the wave")
        var closed: Set<Int> = []
        for (stream, outcome) in zip(inFlight, outcomes) {
            let entry = entries[streams[stream][sent[stream]]]
            sent[stream] += 1
            if outcome.isConfirmed {
                published.append(entry.id)
            } else {
                failures.append(failure(of: entry, outcome))
                closed.insert(stream)
            }
        }
        inFlight = []
        if !closed.isEmpty { open.removeAll { closed.contains($0) } }
    }

    /// Ends the batch: what to write for every entry of it. Entries not sent (behind a
    /// failure, or because the relay stopped early) are held back.
    func finish() -> [Action] {
        precondition(inFlight.isEmpty, "the outcomes of the last wave were not recorded")
        var actions: [Action] = []
        if !published.isEmpty { actions.append(.markPublished(published)) }
        actions += failures
        let unsent = streams.indices.flatMap { stream in streams[stream][sent[stream]...] }.sorted().map { entries[$0] }
        if !unsent.isEmpty { actions.append(.holdBack(unsent)) }
        return actions
    }

    private func failure(of entry: OutboxEntry, _ outcome: PublishOutcome) -> Action {
        let attempts = entry.attempts + 1
        let (reason, isRefusal) = Self.describe(outcome)
        if isRefusal && attempts >= retry.attemptLimit {
            return .park(entry, attempts: attempts, reason: reason)
        }
        return .retry(
            entry, attempts: attempts, reason: reason, retryIn: retry.delay(afterAttempts: attempts, randomFraction: randomFraction()))
    }

    /// The reason recorded for an outcome, and whether it is the broker's refusal (which
    /// counts toward the attempt limit) rather than a lost connection (which never parks).
    static func describe(_ outcome: PublishOutcome) -> (reason: String, isRefusal: Bool) {
        switch outcome {
        case .confirmed: ("confirmed", false)
        case .nacked: ("the broker refused the message (basic.nack)", true)
        case .returned(let code, let text):
            ("unroutable: the broker returned the message (\(code) \(text)); check the exchange's bindings", true)
        case .notConfirmed(let error): ("no confirm before the connection was lost: \(error)", false)
        }
    }
}
