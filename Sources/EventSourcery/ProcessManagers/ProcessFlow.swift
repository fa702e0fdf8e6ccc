public import Foundation

/// One flow of a process manager as its stream says: the state, the stream version and the
/// live deadlines. Folding and deciding are pure; ``ProcessManagerRunner`` does the I/O, and
/// the Given/When/Then kit in `EventSourceryTesting` drives the same code without a store.
public struct ProcessFlow<PM: ProcessManager>: Sendable {
    /// Everything one input leads to, ready to stage in a write batch.
    public struct Step: Sendable {
        /// Events to append to the flow's stream, in order: the process manager's own and
        /// ``DeadlineChanged`` records.
        public var events: [any Event] = []
        /// Commands to send.
        public var commands: [ProcessReaction.SentCommand] = []
        /// Deadlines to schedule, with their new ids.
        public var scheduled: [Deadline] = []
        /// Deadlines to cancel.
        public var cancelled: [Deadline] = []
        /// Whether the input was a deadline that is no longer live (cancelled or fired before):
        /// the process manager was not asked.
        public var isStaleDeadline = false

        /// An empty step.
        public init() {}

        /// Whether the step writes or sends nothing.
        public var isEmpty: Bool { events.isEmpty && commands.isEmpty && scheduled.isEmpty && cancelled.isEmpty }
    }

    /// The process manager's state.
    public private(set) var state: PM.State
    /// The flow stream's version: the number of events applied.
    public private(set) var version: Int64 = 0
    /// The live deadlines by name.
    public private(set) var deadlines: [String: Deadline] = [:]

    /// A new flow, in the process manager's initial state.
    public init(_ processManager: PM) {
        state = processManager.initialState
    }

    /// Applies one event of the flow's stream.
    public mutating func apply(_ event: any Event, using processManager: PM) {
        version += 1
        guard let change = event as? DeadlineChanged else {
            processManager.apply(event, to: &state)
            return
        }
        switch change.change {
        case .scheduled: deadlines[change.deadline.name] = change.deadline
        case .cancelled, .fired:
            if deadlines[change.deadline.name]?.id == change.deadline.id { deadlines[change.deadline.name] = nil }
        }
    }

    /// Decides what `input` leads to. A deadline that is not live leads to nothing.
    ///
    /// - Parameters:
    ///   - now: The time of the decision: deadlines scheduled `after` a delay are due then plus the delay.
    ///   - makeID: Makes the ids of new deadlines.
    public func decide(
        _ input: ProcessInput, using processManager: PM, now: Date = Date(), makeID: () -> UUID = { .timeOrdered() }
    ) -> Step {
        var step = Step()
        if case .deadline(let deadline) = input {
            guard deadlines[deadline.name]?.id == deadline.id else {
                step.isStaleDeadline = true
                return step
            }
            step.events.append(DeadlineChanged(deadline, .fired))
        }
        let reaction = processManager.react(to: input, in: state)
        var live = deadlines
        if case .deadline(let deadline) = input { live[deadline.name] = nil }
        for name in reaction.cancelled {
            guard let deadline = live.removeValue(forKey: name) else { continue }
            step.events.append(DeadlineChanged(deadline, .cancelled))
            step.cancelled.append(deadline)
        }
        step.events += reaction.events
        step.commands = reaction.commands
        for request in reaction.scheduled {
            if let replaced = live.removeValue(forKey: request.name) {
                step.events.append(DeadlineChanged(replaced, .cancelled))
                step.cancelled.append(replaced)
            }
            let deadline = Deadline(id: makeID(), name: request.name, dueAt: request.dueAt(decidedAt: now))
            live[request.name] = deadline
            step.events.append(DeadlineChanged(deadline, .scheduled))
            step.scheduled.append(deadline)
        }
        return step
    }

    /// Applies the events of a step this flow decided.
    public mutating func apply(_ step: Step, using processManager: PM) {
        for event in step.events { apply(event, using: processManager) }
    }
}
