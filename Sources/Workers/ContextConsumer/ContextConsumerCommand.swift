import EventSourceryServices

/// `context-consumer`: the kit with no context code. It runs the admin modes on any context
/// (`--export-definitions`, `--list-dead`, `--replay-dead`, `--list-failures`,
/// `--list-parked`, `--retry-parked`, `--skip-parked`); a context's consumer runs in an
/// executable built with the kit that registers the context's handlers (``ContextService``),
/// such as the demo's `demo-service` or the example `shipping-service`.
@main
enum ContextConsumerCommand {
    static func main() async {
        await ContextService(
            commandName: "context-consumer", abstract: "Administers a bounded context's inbox, dead letters and parked sequences.",
            role: .consumer
        ).main([])
    }
}
