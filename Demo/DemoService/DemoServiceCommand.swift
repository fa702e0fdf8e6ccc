import ArgumentParser
import DemoContexts
import EventSourceryServices

/// `demo-service`: the demo's contexts `order`, `payment` and `invoice` built with the kit;
/// `--context` picks one, `--role` (default all) what runs of it. The order context hosts the
/// fulfilment process manager; every context answers its commands (`<context>.commands`).
@main
enum DemoServiceCommand {
    static func main() async {
        await ContextService(commandName: "demo-service", abstract: "Runs one of the demo's contexts: order, payment or invoice.")
            .main(options: DemoOptions.self) { options in
                DemoContext.handlers(
                    declineAbove: options.declineAbove, publishOrderOutcomes: options.publishOrderOutcomes,
                    gatewayDownFile: options.gatewayDownFile, fulfilmentDownFile: options.fulfilmentDownFile)
            }
    }
}

/// The demo's own options.
struct DemoOptions: ParsableArguments {
    @Option(name: .long, help: "The payment context's simulated gateway declines amounts above this.")
    var declineAbove = DemoContext.defaultDeclineAbove

    @Option(
        name: .long,
        help: "While a file exists at this path, the payment context's simulated gateway is down and ChargePayment fails (requeued)."
    )
    var gatewayDownFile: String?

    @Option(
        name: .long,
        help:
            "While a file exists at this path, the order context's fulfilment handler fails (retried with backoff, its stream's later events held behind it)."
    )
    var fulfilmentDownFile: String?

    @Flag(
        name: .long,
        help:
            "The order context also publishes OrderPaid, OrderCancelled and OrderCompleted (only when a consumer binds them; unroutable messages are parked)."
    )
    var publishOrderOutcomes = false
}
