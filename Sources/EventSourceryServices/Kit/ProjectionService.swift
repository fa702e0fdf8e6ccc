public import EventSourcery
public import Logging
public import ServiceLifecycle

/// Keeps a projection of a context's store caught up while the service runs: it catches up
/// at start and then every ``interval`` (``ProjectionRunner/catchUp()`` commits the state
/// with its checkpoint), until graceful shutdown. A ``ContextModule`` lists its projections;
/// the kit runs them beside the consumer.
public struct ProjectionService: Service {
    /// The projection's name.
    public let name: String
    /// How long it waits between catch-ups.
    public let interval: Duration
    private let catchUp: @Sendable () async throws -> Int
    private let logger: Logger

    /// Creates the service of `runner`'s projection; nothing runs until ``run()``.
    public init<P: Projection>(
        _ runner: ProjectionRunner<P>, interval: Duration = .milliseconds(500), logger: Logger = Logger(label: "eventsourcery.projection")
    ) {
        self.name = runner.projection.name
        self.interval = interval
        self.catchUp = { try await runner.catchUp().applied }
        self.logger = logger
    }

    /// Catches up until graceful shutdown or cancellation. An unavailable store is logged
    /// and tried again after ``interval``; other errors end the service.
    public func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let applied = try await catchUp()
                if applied > 0 { logger.debug("Projection caught up", metadata: ["es.projection": "\(name)", "es.applied": "\(applied)"]) }
            } catch let error as EventStoreError where error.code == .storageUnavailable {
                logger.warning("Projection store unavailable; retrying", metadata: ["es.projection": "\(name)", "error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
