public import EventSourcery
import Foundation

/// Events and an aggregate the conformance suite writes; public so backend test suites
/// can register them too.
public enum ConformanceFixtures {
    /// An account was opened.
    public struct AccountOpened: Event, Equatable {
        public var owner: String
        public init(owner: String) { self.owner = owner }
    }

    /// Money was deposited.
    public struct Deposited: Event, Equatable {
        public var amount: Int
        public init(amount: Int) { self.amount = amount }
    }

    /// Version 2 of a renamed field: version 1 stored `{"total": n}`, version 2 `{"amount": n}`.
    public struct Withdrawn: Event, Equatable {
        public static var schemaVersion: Int { 2 }
        public var amount: Int
        public init(amount: Int) { self.amount = amount }
    }

    /// A bank account aggregate with a no-overdraft invariant.
    public struct Account: SnapshottingAggregate, Equatable {
        public static let category = "account"
        public let id: String
        public var owner: String?
        public var balance = 0
        public var appliedEvents = 0
        public var uncommittedEvents: [any Event] = []

        public struct SnapshotState: Codable, Sendable {
            var owner: String?
            var balance: Int
            var appliedEvents: Int
        }

        public init(id: String) { self.id = id }

        public init(id: String, snapshotState: SnapshotState) {
            self.id = id
            owner = snapshotState.owner
            balance = snapshotState.balance
            appliedEvents = snapshotState.appliedEvents
        }

        public var snapshotState: SnapshotState {
            SnapshotState(owner: owner, balance: balance, appliedEvents: appliedEvents)
        }

        public mutating func apply(_ event: any Event) {
            appliedEvents += 1
            switch event {
            case let opened as AccountOpened: owner = opened.owner
            case let deposited as Deposited: balance += deposited.amount
            case let withdrawn as Withdrawn: balance -= withdrawn.amount
            default: break
            }
        }

        public mutating func open(owner: String) { record(AccountOpened(owner: owner)) }
        public mutating func deposit(_ amount: Int) { record(Deposited(amount: amount)) }
        public mutating func withdraw(_ amount: Int) throws {
            guard amount <= balance else { throw InsufficientFunds(balance: balance, requested: amount) }
            record(Withdrawn(amount: amount))
        }

        public static func == (lhs: Account, rhs: Account) -> Bool {
            lhs.id == rhs.id && lhs.owner == rhs.owner && lhs.balance == rhs.balance && lhs.appliedEvents == rhs.appliedEvents
        }
    }

    /// A command the command-outbox checks send.
    public struct SendStatement: Command, Equatable {
        public var account: String
        public init(account: String) { self.account = account }
    }

    /// A process manager with one flow per account owner: opening an account sends a
    /// ``SendStatement`` to `statements` and schedules a `reminder` a minute later; opening it
    /// again cancels the reminder; a reminder that fires records a deposit of 1.
    public struct Reminders: ProcessManager {
        public static let category = "reminders"
        public init() {}
        public var initialState: Int { 0 }

        public func flowID(for event: EventEnvelope) -> String? { event.as(AccountOpened.self)?.owner }

        public func react(to input: ProcessInput, in openings: Int) -> ProcessReaction {
            var reaction = ProcessReaction()
            if let opened = input.event(AccountOpened.self) {
                reaction.record(opened)
                if openings == 0 {
                    reaction.send(SendStatement(account: opened.owner), to: "statements")
                    reaction.schedule("reminder", at: input.time.addingTimeInterval(60))
                } else {
                    reaction.cancel("reminder")
                }
            } else if input.isDeadline("reminder") {
                reaction.record(Deposited(amount: 1))
            }
            return reaction
        }

        public func apply(_ event: any Event, to openings: inout Int) {
            if event is AccountOpened { openings += 1 }
        }
    }

    /// A withdrawal larger than the balance.
    public struct InsufficientFunds: Error, Equatable {
        public var balance: Int
        public var requested: Int
        public init(balance: Int, requested: Int) {
            self.balance = balance
            self.requested = requested
        }
    }

    /// A registry with every fixture event and the `Withdrawn` v1 → v2 upcaster.
    public static var registry: EventRegistry {
        var registry = EventRegistry([AccountOpened.self, Deposited.self, Withdrawn.self] + ProcessManagerRunner<Reminders>.eventTypes)
        registry.registerUpcaster(for: Withdrawn.self, from: 1) { json in
            var json = json
            json["amount"] = json["total"]
            json["total"] = nil
            return json
        }
        return registry
    }
}
