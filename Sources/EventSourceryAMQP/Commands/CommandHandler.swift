public import EventSourcery

/// Code that handles one command type in its context, run exactly once per command id by a
/// ``CommandConsumer``.
///
/// The handler adds its writes to the batch; they commit in one transaction with the inbox
/// entry `<context>.commands` / command id. Throw a ``CommandRefusal`` to refuse the command
/// (recorded as ``CommandRejected``); any other error is retried.
///
/// Most handlers load an aggregate, decide and save: ``aggregate(_:_:repository:id:_:)``
/// builds one from a ``Repository``.
public struct CommandHandler: Sendable {
    /// The writes of one handler run.
    public typealias Body = @Sendable (ReceivedCommand, inout WriteBatch) async throws -> Void

    /// The command type it handles.
    public var commandType: any Command.Type
    /// The handler's code.
    public var handle: Body

    /// Creates a handler for `type`.
    public init<C: Command>(_ type: C.Type, handle: @escaping @Sendable (C, ReceivedCommand, inout WriteBatch) async throws -> Void) {
        commandType = type
        self.handle = { received, batch in
            guard let command = received.as(C.self) else { return }
            try await handle(command, received, &batch)
        }
    }

    /// The type name it handles.
    public var typeName: String { commandType.typeName }

    /// A handler that loads the aggregate `id(command)` through `repository` (a new one when
    /// its stream does not exist yet), runs `decide` on it, and stages what it recorded, with
    /// the command as cause, in the inbox transaction.
    ///
    /// ```swift
    /// CommandHandler.aggregate(ChargePayment.self, Payment.self, repository: payments, id: \.orderID) { command, payment in
    ///     try payment.charge(amount: command.amount)   // throws a CommandRefusal to refuse
    /// }
    /// ```
    public static func aggregate<C: Command, A: Aggregate>(
        _ type: C.Type, _ aggregate: A.Type, repository: Repository<A>, id: @escaping @Sendable (C) -> String,
        _ decide: @escaping @Sendable (C, inout A) throws -> Void
    ) -> CommandHandler {
        CommandHandler(type) { command, received, batch in
            let aggregateID = id(command)
            let metadata = received.envelope.causedMetadata
            if try await repository.load(aggregateID) == nil {
                try await repository.new(aggregateID, metadata: metadata, in: &batch) { try decide(command, &$0) }
            } else {
                try await repository.update(aggregateID, metadata: metadata, in: &batch) { try decide(command, &$0) }
            }
        }
    }
}
