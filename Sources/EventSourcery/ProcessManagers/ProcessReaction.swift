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

    /// A deadline to schedule: a name and a due time. Scheduling a name that is live replaces
    /// that deadline.
    public struct ScheduledDeadline: Sendable, Hashable {
        public var name: String
        public var dueAt: Date

        public init(name: String, dueAt: Date) {
            self.name = name
            self.dueAt = dueAt
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
    /// Cancels the live deadline `name`.
    public mutating func cancel(_ name: String) { cancelled.append(name) }
}
