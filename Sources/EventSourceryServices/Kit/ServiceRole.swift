public import ArgumentParser

/// What a service process built with the kit runs for its context.
public enum ServiceRole: String, Sendable, CaseIterable, ExpressibleByArgument {
    /// The outbox relay only (`outbox-publisher`).
    case relay
    /// The consumer of the context's inbox only (`context-consumer`).
    case consumer
    /// The consumer and the relay in one process: a context's whole service.
    case all

    /// Whether the process relays the context's outbox.
    public var runsRelay: Bool { self != .consumer }
    /// Whether the process consumes the context's inbox with its handlers.
    public var runsConsumer: Bool { self != .relay }
}
