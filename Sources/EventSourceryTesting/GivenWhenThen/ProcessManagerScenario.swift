public import EventSourcery
public import Foundation
public import Testing

/// Given the inputs a flow saw, when an event or a deadline, then the commands sent, the
/// events recorded and the deadlines scheduled or cancelled: a test of a process manager's
/// decisions without a store or a broker.
///
/// The scenario runs the same ``ProcessFlow`` code as ``ProcessManagerRunner``. Inputs happen
/// at the scenario's clock (``at(_:)``; by default 2023-11-14 22:13:20 UTC), so deadlines are
/// exact times.
///
/// ```swift
/// @Test func paymentTimeoutCancelsTheOrder() {
///     let scenario = ProcessManagerScenario(Fulfilment(paymentTimeout: .seconds(5)))
///     scenario
///         .given(OrderPlaced(orderID: "42", amount: 10))
///         .whenDeadline("payment-timeout")
///         .then(
///             commands: [.init(SettleOrder(orderID: "42", outcome: .cancelled(reason: "payment timed out")), to: "order")],
///             events: [FulfilmentAdvanced(orderID: "42", stage: .cancelled)])
/// }
/// ```
public struct ProcessManagerScenario<PM: ProcessManager>: Sendable {
    private let processManager: PM
    private var flow: ProcessFlow<PM>
    private var now: Date
    private var deadlineCount = 0

    /// Starts a scenario with a new flow.
    public init(_ processManager: PM, at now: Date = Date(timeIntervalSince1970: 1_700_000_000)) {
        self.processManager = processManager
        self.flow = ProcessFlow(processManager)
        self.now = now
    }

    /// The scenario's clock: when the next input happens.
    public var time: Date { now }

    /// Moves the clock to `date` for the inputs that follow.
    public func at(_ date: Date) -> Self {
        var scenario = self
        scenario.now = date
        return scenario
    }

    /// Feeds events the flow saw before, at the scenario's clock, keeping what it decided.
    public func given(_ events: any Event...) -> Self {
        var scenario = self
        for event in events { _ = scenario.run(.event(EventEnvelope(event, createdAt: now))) }
        return scenario
    }

    /// Fires the live deadline `name`, as an earlier input of the flow.
    public func givenDeadline(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) -> Self {
        var scenario = self
        if let deadline = scenario.liveDeadline(name, sourceLocation: sourceLocation) { _ = scenario.run(.deadline(deadline)) }
        return scenario
    }

    /// The flow's state after the inputs so far.
    public var state: PM.State { flow.state }

    /// Feeds `event`, at the scenario's clock.
    public func when(_ event: any Event) -> Outcome {
        var scenario = self
        return scenario.run(.event(EventEnvelope(event, createdAt: now)))
    }

    /// Fires the live deadline `name` (recording an issue when the flow has none by that name).
    public func whenDeadline(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) -> Outcome {
        var scenario = self
        guard let deadline = scenario.liveDeadline(name, sourceLocation: sourceLocation) else {
            return Outcome(step: ProcessFlow<PM>.Step(), state: flow.state, time: now)
        }
        return scenario.run(.deadline(deadline))
    }

    /// Feeds any input, such as a deadline that is no longer live.
    public func when(_ input: ProcessInput) -> Outcome {
        var scenario = self
        return scenario.run(input)
    }

    private func liveDeadline(_ name: String, sourceLocation: SourceLocation) -> Deadline? {
        guard let deadline = flow.deadlines[name] else {
            let live = flow.deadlines.keys.sorted()
            Issue.record(
                "The flow has no live deadline '\(name)'; live: \(live.isEmpty ? "none" : live.joined(separator: ", "))",
                sourceLocation: sourceLocation)
            return nil
        }
        return deadline
    }

    private mutating func run(_ input: ProcessInput) -> Outcome {
        var count = deadlineCount
        let step = flow.decide(input, using: processManager, now: now) {
            count += 1
            return UUID(uuidString: String(format: "00000000-0000-4000-8000-%012d", count))!
        }
        deadlineCount = count
        flow.apply(step, using: processManager)
        return Outcome(step: step, state: flow.state, time: now)
    }

    /// What one input led to.
    public struct Outcome: Sendable {
        /// Everything the input led to, bookkeeping included.
        public let step: ProcessFlow<PM>.Step
        /// The flow's state afterwards.
        public let state: PM.State
        /// When the input happened: deadlines scheduled `after` a delay are due then plus the delay.
        public let time: Date

        /// Expects exactly these commands, events of the process manager's own, scheduled
        /// deadlines and cancelled deadline names, each in order; what is left out is expected
        /// not to happen.
        @discardableResult
        public func then(
            commands: [ProcessReaction.SentCommand] = [], events: [any Event] = [], scheduled: [ProcessReaction.ScheduledDeadline] = [],
            cancelled: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
        ) -> Bool {
            let ownEvents = step.events.filter { !($0 is DeadlineChanged) }
            return ScenarioComparison.check(
                [
                    ScenarioComparison.sideBySide(
                        "Commands", expected: commands.map(ScenarioComparison.describe),
                        actual: step.commands.map(ScenarioComparison.describe)
                    ),
                    ScenarioComparison.sideBySide(
                        "Events", expected: events.map(ScenarioComparison.describe), actual: ownEvents.map(ScenarioComparison.describe)),
                    ScenarioComparison.sideBySide(
                        "Scheduled deadlines",
                        expected: scheduled.map { ScenarioComparison.describe(deadline: $0.name, dueAt: $0.dueAt(decidedAt: time)) },
                        actual: step.scheduled.map { ScenarioComparison.describe(deadline: $0.name, dueAt: $0.dueAt) }),
                    ScenarioComparison.sideBySide("Cancelled deadlines", expected: cancelled, actual: step.cancelled.map(\.name)),
                ],
                sourceLocation: sourceLocation)
        }
    }
}
