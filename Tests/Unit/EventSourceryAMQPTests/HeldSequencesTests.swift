@testable import EventSourceryAMQP
import EventSourceryRabbitMQ
import EventSourcery
import Foundation
import Testing

/// The pure decisions about held events: backoff, parking, which sequences are due.
struct HeldSequencesTests {
    private let start = Date(timeIntervalSince1970: 1_700_000_000)

    private func configuration(
        attempts: Int = 5, first: Duration = .seconds(1), maximum: Duration = .seconds(300)
    ) throws
        -> ContextConsumer.Configuration
    {
        ContextConsumer.Configuration(context: "payment", deliveryLimit: attempts, retryFirstDelay: first, retryMaximumDelay: maximum)
    }

    private func held(
        _ number: Int64, stream: StreamID, attempts: Int = 0, next: TimeInterval = 0, state: HeldEvent.State = .waiting
    ) -> HeldEvent {
        HeldEvent(
            sequenceNumber: number,
            sequence: HeldEvent.Sequence(consumer: "payment", sourceContext: "order", sourceStream: stream),
            streamVersion: number,
            event: EncodedEvent(
                id: UUID(), typeName: "OrderPlaced", schemaVersion: 1, createdAt: start, metadata: EventMetadata(), payload: Data("{}".utf8)
            ),
            attempts: attempts, nextAttemptAt: start.addingTimeInterval(next), state: state)
    }

    // MARK: Retry schedule

    @Test func delaysDoubleFromTheFirstUpToTheMaximum() throws {
        let schedule = try configuration(attempts: 20, first: .seconds(1), maximum: .seconds(300)).retrySchedule
        let delays = (1...11).map { schedule.delay(afterFailedAttempts: $0) }
        #expect(delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300].map { Duration.seconds($0) })
    }

    @Test func aFailedAttemptIsCountedAndRescheduledWithBackoff() throws {
        let schedule = try configuration().retrySchedule
        var event = held(1, stream: "order-1")
        event = schedule.failed(event, error: "gateway down", at: start)
        #expect(event.attempts == 1)
        #expect(event.state == .waiting)
        #expect(event.lastError == "gateway down")
        #expect(event.nextAttemptAt == start.addingTimeInterval(1))
        event = schedule.failed(event, error: "still down", at: start.addingTimeInterval(1))
        #expect(event.attempts == 2)
        #expect(event.lastError == "still down")
        #expect(event.nextAttemptAt == start.addingTimeInterval(3))
    }

    @Test func theNthFailedAttemptOfNParksTheEvent() throws {
        let schedule = try configuration(attempts: 3).retrySchedule
        var event = held(1, stream: "order-1")
        var states: [HeldEvent.State] = []
        for attempt in 1...3 {
            event = schedule.failed(event, error: "bug", at: start.addingTimeInterval(Double(attempt)))
            states.append(event.state)
        }
        #expect(states == [.waiting, .waiting, .parked], "delivery_limit 3 means three attempts")
        #expect(event.attempts == 3)
    }

    @Test func oneAttemptParksAtTheFirstFailure() throws {
        let event = try configuration(attempts: 1).retrySchedule.failed(held(1, stream: "order-1"), error: "bug", at: start)
        #expect(event.state == .parked)
        #expect(event.attempts == 1)
    }

    @Test func aRetriedParkedEventIsParkedAgainAtItsNextFailure() throws {
        let schedule = try configuration(attempts: 3).retrySchedule
        var event = held(1, stream: "order-1", attempts: 3, state: .waiting)
        event = schedule.failed(event, error: "still broken", at: start)
        #expect(event.state == .parked)
        #expect(event.attempts == 4)
    }

    // MARK: Sequences

    @Test func eventsAreGroupedPerStreamInOrderWithTheHeadFirst() {
        let sequences = HeldSequences([
            held(1, stream: "order-1", attempts: 2, next: 10), held(2, stream: "order-2", attempts: 1, next: 5),
            held(3, stream: "order-1"), held(4, stream: "order-1"), held(5, stream: "order-2"),
        ])
        #expect(sequences.entries.map(\.sequence.sourceStream) == ["order-1", "order-2"])
        #expect(sequences.entries.map(\.head.sequenceNumber) == [1, 2])
        #expect(sequences.entries.map(\.waitingBehind) == [2, 1])
        #expect(
            sequences.entry(for: HeldEvent.Sequence(consumer: "payment", sourceContext: "order", sourceStream: "order-2"))?.head.attempts
                == 1)
        #expect(sequences.entry(for: HeldEvent.Sequence(consumer: "payment", sourceContext: "order", sourceStream: "order-3")) == nil)
    }

    @Test func onlyWaitingHeadsWhoseTimeHasComeAreDue() {
        let sequences = HeldSequences([
            held(1, stream: "due", attempts: 1, next: 0), held(2, stream: "later", attempts: 1, next: 30),
            held(3, stream: "parked", attempts: 5, next: -60, state: .parked),
            // Behind a head that is not due, an event whose own time has come waits.
            held(4, stream: "later", next: -10),
        ])
        #expect(sequences.due(at: start).map(\.sequence.sourceStream) == ["due"])
        #expect(sequences.due(at: start.addingTimeInterval(30)).map(\.sequence.sourceStream) == ["due", "later"])
        #expect(sequences.due(at: start.addingTimeInterval(-1)).isEmpty)
    }

    @Test func theNextAttemptIsTheEarliestWaitingHeadAndParkedSequencesNeverWake() {
        let sequences = HeldSequences([
            held(1, stream: "a", attempts: 1, next: 30), held(2, stream: "b", attempts: 5, next: -60, state: .parked),
            held(3, stream: "c", attempts: 1, next: 12), held(4, stream: "a", next: 1),
        ])
        #expect(sequences.nextAttemptAt == start.addingTimeInterval(12))
        #expect(HeldSequences([held(1, stream: "b", attempts: 5, state: .parked)]).nextAttemptAt == nil)
        #expect(HeldSequences([]).nextAttemptAt == nil)
    }

    @Test func parkedSequencesAreListedWithWhatWaitsBehindThem() {
        let sequences = HeldSequences([
            held(1, stream: "a", attempts: 5, state: .parked), held(2, stream: "b", attempts: 1, next: 5), held(3, stream: "a"),
            held(4, stream: "a"),
        ])
        #expect(sequences.parked.map(\.sequence.sourceStream) == ["a"])
        #expect(sequences.parked.first?.waitingBehind == 2)
        #expect(sequences.parked.first?.head.sequenceNumber == 1)
    }

    // MARK: Configuration

    @Test func theDefaultsRetryFromOneSecondToFiveMinutesOverFiveAttempts() throws {
        let configuration = ContextConsumer.Configuration(context: "payment")
        #expect(configuration.retryFirstDelay == .seconds(1))
        #expect(configuration.retryMaximumDelay == .seconds(300))
        #expect(configuration.deliveryLimit == 5)
        #expect(configuration.retrySchedule.attempts == 5)
    }

    /// The field ``ContextConsumer/Configuration/validate()`` names, or `nil` when it accepts.
    private func rejectedField(_ configuration: ContextConsumer.Configuration) -> String? {
        do {
            try configuration.validate()
            return nil
        } catch {
            #expect(error.code == .invalidArgument)
            return error.field
        }
    }

    @Test func aSettingOutOfRangeIsATypedErrorNamingIt() {
        typealias C = ContextConsumer.Configuration
        #expect(rejectedField(C(context: "c", deliveryLimit: 0)) == "deliveryLimit")
        #expect(rejectedField(C(context: "c", retryFirstDelay: .zero)) == "retryFirstDelay")
        #expect(rejectedField(C(context: "c", retryFirstDelay: .seconds(2), retryMaximumDelay: .seconds(1))) == "retryMaximumDelay")
        #expect(rejectedField(C(context: "c", heldPollInterval: .zero)) == "heldPollInterval")
        #expect(rejectedField(C(context: "c", concurrency: 0)) == "concurrency")
        #expect(rejectedField(C(context: "c", batchSize: -1)) == "batchSize")
        #expect(rejectedField(C(context: "c", ackBatchSize: 0)) == "ackBatchSize")
        #expect(rejectedField(C(context: "c", prefetch: 0)) == "prefetch")
        #expect(rejectedField(C(context: "c", maximumBodySize: 0)) == "maximumBodySize")
        #expect(rejectedField(C(context: "c", conflictRetries: -1)) == "conflictRetries")
        #expect(rejectedField(C(context: "")) == "context")
        #expect(rejectedField(C(context: "c", deliveryLimit: 1, retryFirstDelay: .seconds(1), retryMaximumDelay: .seconds(1))) == nil)
    }
}
