public import EventSourcery

extension ProcessManagerRunner {
    /// An event handler that feeds the process manager the events of `subscriptions`, for the
    /// context's ``ContextConsumer``: each event is handled once (inbox `<context>.<name>`).
    public func eventHandler(name: String, subscriptions: [EventSubscription]) -> EventHandler {
        EventHandler(name: name, subscriptions: subscriptions) { input, batch in
            try await self.handle(input.envelope, in: &batch)
        }
    }

    /// The command handler that fires the process manager's deadlines, for the context's
    /// ``CommandConsumer``; a deadline the flow cancelled changes nothing.
    public var deadlineHandler: CommandHandler {
        CommandHandler(DeadlineDue.self) { due, received, batch in
            try await self.handle(due, command: received.envelope, in: &batch)
        }
    }
}
