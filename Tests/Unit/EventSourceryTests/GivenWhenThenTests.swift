import EventSourcery
import EventSourceryTesting
import Foundation
import Testing

private typealias F = ConformanceFixtures

/// The Given/When/Then kit on the fixture aggregate and process manager, including what a
/// failing expectation prints.
struct GivenWhenThenTests {
    // MARK: Aggregates

    @Test func anAggregateCommandRecordsItsEvents() {
        AggregateScenario(F.Account.self)
            .given(F.AccountOpened(owner: "ann"), F.Deposited(amount: 10))
            .when { try $0.withdraw(4) }
            .then(F.Withdrawn(amount: 4))
    }

    @Test func anAggregateRefusesWithItsError() {
        AggregateScenario(F.Account.self)
            .given(F.Deposited(amount: 10))
            .when { try $0.withdraw(20) }
            .thenError(F.InsufficientFunds(balance: 10, requested: 20))
    }

    @Test func differentEventsAreShownSideBySide() {
        withKnownIssue {
            AggregateScenario(F.Account.self)
                .given(F.Deposited(amount: 10))
                .when { try $0.withdraw(4) }
                .then(F.Withdrawn(amount: 5), F.Deposited(amount: 1))
        } matching: { issue in
            let text = issue.comments.map(\.rawValue).joined()
            return text.contains("Events differ:") && text.contains("expected") && text.contains("| actual")
                && text.contains(#"✗  1 Withdrawn {"amount":5}"#) && text.contains(#"| Withdrawn {"amount":4}"#)
                && text.contains(#"✗  2 Deposited {"amount":1}"#) && text.contains("| —")
        }
    }

    @Test func anUnexpectedErrorIsShownAgainstTheExpectedEvents() {
        withKnownIssue {
            AggregateScenario(F.Account.self).when { try $0.withdraw(1) }.then(F.Withdrawn(amount: 1))
        } matching: { issue in
            issue.comments.map(\.rawValue).joined().contains("error: InsufficientFunds(balance: 0, requested: 1)")
        }
    }

    @Test func aMissingErrorFails() {
        withKnownIssue {
            AggregateScenario(F.Account.self).given(F.Deposited(amount: 5)).when { try $0.withdraw(1) }
                .thenError(F.InsufficientFunds(balance: 5, requested: 1))
        } matching: { issue in
            issue.comments.map(\.rawValue).joined().contains(#"Withdrawn {"amount":1}"#)
        }
    }

    // MARK: Process managers

    private let scenario = ProcessManagerScenario(F.Reminders())

    @Test func aFlowStartsWithACommandAndADeadline() {
        scenario
            .when(F.AccountOpened(owner: "ann"))
            .then(
                commands: [.init(F.SendStatement(account: "ann"), to: "statements")], events: [F.AccountOpened(owner: "ann")],
                scheduled: [.init(name: "reminder", dueAt: scenario.time.addingTimeInterval(60))])
    }

    @Test func aDeadlineFires() {
        let outcome = scenario.given(F.AccountOpened(owner: "ann")).at(scenario.time.addingTimeInterval(60)).whenDeadline("reminder")
        outcome.then(events: [F.Deposited(amount: 1)])
        #expect(outcome.state == 1)
    }

    @Test func aDeadlineIsCancelledAndThenNoLongerFires() {
        let opened = scenario.given(F.AccountOpened(owner: "ann"))
        opened.when(F.AccountOpened(owner: "ann")).then(events: [F.AccountOpened(owner: "ann")], cancelled: ["reminder"])
        let cancelled = opened.given(F.AccountOpened(owner: "ann"))
        withKnownIssue {
            _ = cancelled.whenDeadline("reminder")
        } matching: { issue in
            issue.comments.map(\.rawValue).joined().contains("no live deadline 'reminder'; live: none")
        }
    }

    @Test func aDeadlineThatFiredIsStale() {
        let live = ProcessFlow(F.Reminders())
        var flow = live
        let step = flow.decide(.event(EventEnvelope(F.AccountOpened(owner: "ann"))), using: F.Reminders())
        flow.apply(step, using: F.Reminders())
        let deadline = try! #require(flow.deadlines["reminder"])
        let fired = flow.decide(.deadline(deadline), using: F.Reminders())
        #expect(!fired.isStaleDeadline)
        #expect(fired.events.compactMap { ($0 as? DeadlineChanged)?.change } == [.fired])
        flow.apply(fired, using: F.Reminders())
        #expect(flow.deadlines.isEmpty)
        #expect(flow.version == 4)
        let again = flow.decide(.deadline(deadline), using: F.Reminders())
        #expect(again.isStaleDeadline)
        #expect(again.isEmpty)
    }

    @Test func differentCommandsAndDeadlinesAreShownSideBySide() {
        withKnownIssue {
            scenario.when(F.AccountOpened(owner: "ann")).then(events: [F.AccountOpened(owner: "ann")])
        } matching: { issue in
            let text = issue.comments.map(\.rawValue).joined()
            return text.contains("Commands differ:") && text.contains(#"| → statements SendStatement {"account":"ann"}"#)
                && text.contains("Scheduled deadlines differ:") && text.contains("| reminder at 2023-11-14T22:14:20Z")
                && !text.contains("Events differ")
        }
    }
}

/// Commands as a writer sends them: encoding, the target, and the registry on the receiving side.
struct CommandEncodingTests {
    @Test func aCommandIsEncodedWithItsTargetAndDueTime() throws {
        let due = Date(timeIntervalSince1970: 1_800_000_000)
        var batch = WriteBatch()
        try batch.send(F.SendStatement(account: "a"), to: "statements", at: due)
        batch.cancelCommand(UUID())
        #expect(!batch.isEmpty)
        let command = try #require(batch.commands.first)
        #expect(command.typeName == "SendStatement")
        #expect(command.target == "statements")
        #expect(command.dueAt == due)
        #expect(command.metadata.correlationID == command.id, "a command starting a flow correlates to itself")
        let decoded = try CommandRegistry([F.SendStatement.self]).decode(
            typeName: command.typeName, id: command.id, createdAt: command.createdAt, metadata: command.metadata, payload: command.payload)
        #expect(decoded.as(F.SendStatement.self) == F.SendStatement(account: "a"))
    }

    @Test func aCommandNeedsATargetAndAKnownType() throws {
        var batch = WriteBatch()
        #expect(throws: EventStoreError.self) { try batch.send(F.SendStatement(account: "a"), to: "") }
        #expect(batch.commands.isEmpty)
        let error = #expect(throws: EventStoreError.self) {
            try CommandRegistry().decode(
                typeName: "Nope", id: UUID(), createdAt: Date(), metadata: EventMetadata(), payload: Data("{}".utf8))
        }
        #expect(error?.code == .unknownEventType)
    }
}
