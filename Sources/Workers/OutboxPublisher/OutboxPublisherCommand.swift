import EventSourceryServices

/// `outbox-publisher`: the kit with no context code, relaying one context's outbox to
/// RabbitMQ (`--context order`, `--once`); `--role` and the admin modes work as in every
/// kit build (``ContextService``).
@main
enum OutboxPublisherCommand {
    static func main() async {
        await ContextService(
            commandName: "outbox-publisher", abstract: "Publishes a bounded context's outbox to RabbitMQ with publisher confirms.",
            role: .relay
        ).main([])
    }
}
