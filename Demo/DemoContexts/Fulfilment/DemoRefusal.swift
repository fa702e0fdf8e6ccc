public import EventSourceryAMQP

/// A demo aggregate refusing a command (recorded by the command consumer as `CommandRejected`).
public struct DemoRefusal: CommandRefusal, Equatable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}
