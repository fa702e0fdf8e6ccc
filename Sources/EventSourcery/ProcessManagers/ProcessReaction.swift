public import Foundation

/// What a process manager decided for one input: events to record in the flow, commands to
/// send, deadlines to schedule and to cancel.
public struct ProcessReaction: Sendable {
    /// A command and the context it goes to.
    public struct SentCommand: Sendable {
        public var command: any Command
        /// The receiving context, such as `payment`.
        public var target: String

        public init(_ command: any Command, to target: String) {
            self.command = command
            self.target = target
        }
    }

    /// A deadline to schedule: a name and when it is due. Scheduling a name that is live
    /// replaces that deadline.
    public struct ScheduledDeadline: Sendable, Hashable {
        /// When a deadline is due.
        public enum Due: Sendable, Hashable {
            /// At a fixed time.
            case at(Date)
            /// This long after the decision (the runner's clock; a scenario's clock in tests).
            /// Prefer it for timeouts: an event's creation time read from the wire has whole seconds.
            case after(Duration)
        }

        public var name: String
        public var due: Due

        /// A deadline due at `dueAt`.
        public init(name: String, dueAt: Date) {
            self.name = name
            self.due = .at(dueAt)
        }

        /// A deadline due `delay` after the decision.
        public init(name: String, after delay: Duration) {
            self.name = name
            self.due = .after(delay)
        }

        /// The due time of a decision made at `now`.
        public func dueAt(decidedAt now: Date) -> Date {
            switch due {
            case .at(let date): return date
            case .after(let delay):
                let (seconds, attoseconds) = delay.components
                return now.addingTimeInterval(Double(seconds) + Double(attoseconds) / 1e18)
            }
        }
    }

    /// Events to record in the flow's stream.
    public var events: [any Event] = []
    /// Commands to send.
    public var commands: [SentCommand] = []
    /// Deadlines to schedule.
    public var scheduled: [ScheduledDeadline] = []
    /// Names of live deadlines to cancel; a name that is not live is ignored.
    public var cancelled: [String] = []

    /// A reaction that does nothing.
    public init() {}

    /// Records `event` in the flow.
    public mutating func record(_ event: some Event) { events.append(event) }
    /// Sends `command` to `target`.
    public mutating func send(_ command: some Command, to target: String) { commands.append(SentCommand(command, to: target)) }
    /// Schedules the deadline `name` at `dueAt`.
    public mutating func schedule(_ name: String, at dueAt: Date) { scheduled.append(ScheduledDeadline(name: name, dueAt: dueAt)) }
    /// Schedules the deadline `name` `delay` after the decision.
    public mutating func schedule(_ name: String, after delay: Duration) {
        scheduled.append(ScheduledDeadline(name: name, after: delay))
    }
    /// Cancels the live deadline `name`.
    public mutating func cancel(_ name: String) { cancelled.append(name) }
}
