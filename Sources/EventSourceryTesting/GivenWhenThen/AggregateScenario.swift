public import EventSourcery
public import Testing

/// Given past events, when a command, then new events or an error: a test of an aggregate's
/// decisions without a store.
///
/// ```swift
/// @Test func refusesOverdraft() {
///     AggregateScenario(Account.self)
///         .given(AccountOpened(owner: "ann"), Deposited(amount: 10))
///         .when { try $0.withdraw(20) }
///         .thenError(InsufficientFunds(balance: 10, requested: 20))
/// }
/// ```
///
/// A failed expectation is recorded as a test issue that shows what was expected and what
/// happened side by side, events as their type name and JSON.
public struct AggregateScenario<A: Aggregate>: Sendable {
    private let id: String
    private let history: [any Event]

    /// Starts a scenario for the aggregate `id` with no past events.
    public init(_ type: A.Type = A.self, id: String = "scenario") {
        self.init(id: id, history: [])
    }

    private init(id: String, history: [any Event]) {
        self.id = id
        self.history = history
    }

    /// Adds past events: the aggregate is rebuilt from them before the command.
    public func given(_ events: any Event...) -> Self {
        AggregateScenario(id: id, history: history + events)
    }

    /// Runs `command` on the aggregate rebuilt from the given events.
    public func when(_ command: (inout A) throws -> Void) -> Outcome {
        var aggregate = A(id: id)
        for event in history { aggregate.apply(event) }
        do {
            try command(&aggregate)
            return Outcome(result: .success(aggregate.uncommittedEvents))
        } catch {
            return Outcome(result: .failure(error))
        }
    }

    /// What the command did: the events it recorded, or the error it threw.
    public struct Outcome: Sendable {
        /// The recorded events or the error.
        public let result: Result<[any Event], any Error>

        /// Expects exactly these events, in this order (none: the command recorded nothing).
        @discardableResult
        public func then(_ expected: any Event..., sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
            let actual: [String]
            switch result {
            case .success(let events): actual = events.map(ScenarioComparison.describe)
            case .failure(let error): actual = ["error: \(error)"]
            }
            return ScenarioComparison.check(
                [ScenarioComparison.sideBySide("Events", expected: expected.map(ScenarioComparison.describe), actual: actual)],
                sourceLocation: sourceLocation)
        }

        /// Expects the command to throw `expected` and record nothing.
        @discardableResult
        public func thenError<E: Error & Equatable>(_ expected: E, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
            let actual: [String]
            switch result {
            case .success(let events): actual = events.isEmpty ? ["no error, no events"] : events.map(ScenarioComparison.describe)
            case .failure(let error as E) where error == expected: actual = ["error: \(expected)"]
            case .failure(let error): actual = ["error: \(error)"]
            }
            return ScenarioComparison.check(
                [ScenarioComparison.sideBySide("Outcomes", expected: ["error: \(expected)"], actual: actual)],
                sourceLocation: sourceLocation)
        }
    }
}
