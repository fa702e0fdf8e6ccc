/// Runs a ``ProcessManager`` against a store: loads the flow, decides, and stages the flow's
/// events, the commands, the new deadlines and the cancellations in one ``WriteBatch``.
///
/// Use it from an inbox handler, so the staged writes commit with the inbox entry exactly once
/// per input: an event handler for the events the process manager follows, and a command
/// handler for ``DeadlineDue`` (the bridge module's `ProcessManagerRunner.eventHandler` and
/// `deadlineHandler` build both). A deadline is a ``DeadlineDue`` command sent to ``context``
/// through the command outbox, due at the deadline's time; cancelling it cancels that
/// outbox entry in the same transaction.
///
/// The flow's stream is appended with its expected version, also when a step records no
/// event of its own, so two inputs of one flow processed at the same time cannot both decide
/// from the same state: one gets ``EventStoreError/Code/concurrencyConflict`` and is retried.
public struct ProcessManagerRunner<PM: ProcessManager>: Sendable {
    /// The process manager.
    public let processManager: PM
    /// The store of the context the process manager lives in.
    public let store: EventStore
    /// The context the process manager lives in: deadlines are sent to its command queue.
    public let context: String
    /// Whether the flow's events also go to the outbox, for other contexts to see.
    public let publishesEvents: Bool

    /// The event types the runner records in every flow; register them in the store's registry.
    public static var eventTypes: [any Event.Type] { [DeadlineChanged.self] }

    /// Creates a runner.
    public init(_ processManager: PM, store: EventStore, context: String, publishesEvents: Bool = false) {
        self.processManager = processManager
        self.store = store
        self.context = context
        self.publishesEvents = publishesEvents
    }

    /// The stream of the flow `flowID`: `<category>-<flow id>`.
    public func stream(of flowID: String) throws(EventStoreError) -> StreamID {
        try StreamID(category: PM.category, id: flowID)
    }

    /// Loads the flow `flowID` from its stream.
    public func load(_ flowID: String) async throws -> ProcessFlow<PM> {
        var flow = ProcessFlow(processManager)
        for event in try await store.load(stream(of: flowID)) {
            flow.apply(event.event, using: processManager)
        }
        return flow
    }

    /// Stages the reaction to `event` in `batch`; stages nothing when the event belongs to no flow.
    ///
    /// - Returns: the step, or `nil` when the event belongs to no flow.
    @discardableResult
    public func handle(_ event: EventEnvelope, in batch: inout WriteBatch) async throws -> ProcessFlow<PM>.Step? {
        guard let flowID = processManager.flowID(for: event) else { return nil }
        return try await handle(.event(event), flowID: flowID, metadata: .causedBy(event), in: &batch)
    }

    /// Stages the reaction to a deadline delivered by `command`; stages nothing for a deadline
    /// of another process manager or one the flow no longer has.
    @discardableResult
    public func handle(_ due: DeadlineDue, command: CommandEnvelope, in batch: inout WriteBatch) async throws -> ProcessFlow<PM>.Step? {
        guard due.processManager == PM.category else { return nil }
        return try await handle(.deadline(due.deadline), flowID: due.flowID, metadata: command.causedMetadata, in: &batch)
    }

    private func handle(
        _ input: ProcessInput, flowID: String, metadata: EventMetadata, in batch: inout WriteBatch
    ) async throws
        -> ProcessFlow<PM>.Step
    {
        let flow = try await load(flowID)
        let step = flow.decide(input, using: processManager)
        guard !step.isEmpty else { return step }
        let stream = try stream(of: flowID)
        let expected: ExpectedVersion = flow.version == 0 ? .noStream : .exact(flow.version)
        let envelopes = step.events.map { EventEnvelope($0, metadata: metadata) }
        if publishesEvents {
            try batch.publish(envelopes, to: stream, expectedVersion: expected)
        } else {
            try batch.append(envelopes, to: stream, expectedVersion: expected)
        }
        for sent in step.commands {
            try batch.send(CommandEnvelope(sent.command, metadata: metadata), to: sent.target)
        }
        for deadline in step.scheduled {
            let due = DeadlineDue(processManager: PM.category, flowID: flowID, deadline: deadline)
            try batch.send(due, to: context, id: deadline.id, metadata: metadata, at: deadline.dueAt)
        }
        for deadline in step.cancelled {
            batch.cancelCommand(deadline.id)
        }
        return step
    }
}
