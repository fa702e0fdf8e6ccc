extension DemoContext {
    /// How the demo's command handlers behave (the options of `demo-service`).
    public struct CommandOptions: Sendable {
        /// The simulated gateway declines amounts above this.
        public var declineAbove: Int
        /// Whether the order aggregate's outcomes also go to the order outbox.
        public var publishOrderOutcomes: Bool
        /// While a file exists at this path, `ChargePayment` fails with ``PaymentGatewayUnavailable``.
        public var gatewayDownFile: String?

        /// Creates the options; the defaults are the demo's.
        public init(declineAbove: Int = DemoContext.defaultDeclineAbove, publishOrderOutcomes: Bool = false, gatewayDownFile: String? = nil)
        {
            self.declineAbove = declineAbove
            self.publishOrderOutcomes = publishOrderOutcomes
            self.gatewayDownFile = gatewayDownFile
        }
    }
}
