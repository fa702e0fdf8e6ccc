/// The order context's fulfilment handler is switched off by its down file (see
/// ``DemoContext/handlers(declineAbove:publishOrderOutcomes:gatewayDownFile:fulfilmentDownFile:contexts:)``).
public struct FulfilmentUnavailable: Error, CustomStringConvertible {
    /// The event that could not be handled.
    public var eventType: String

    public var description: String { "the fulfilment is unavailable; \(eventType) was not handled" }
}
