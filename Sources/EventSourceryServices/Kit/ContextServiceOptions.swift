public import ArgumentParser
import EventSourcery
import Foundation

/// The command-line options of a service built with the kit (``ContextService``): the shared
/// ``ServiceOptions``, the role, and the admin modes that run once and exit.
public struct ContextServiceOptions: ParsableArguments {
    @OptionGroup public var service: ServiceOptions

    @Option(name: .long, help: "What to run: relay, consumer or all (default: this build's).")
    public var role: ServiceRole?

    @Flag(name: .long, help: "Relay only: publish what is pending, then exit.")
    public var once = false

    @Option(name: .long, help: "Write the RabbitMQ definitions of every context's topology to this file and exit.")
    public var exportDefinitions: String?

    @Flag(name: .long, help: "List the messages in <context>.dead (they stay there) and exit.")
    public var listDead = false

    @Flag(name: .long, help: "Move the messages in <context>.dead back into the inbox (its partitions) and exit.")
    public var replayDead = false

    @Flag(name: .long, help: "List the handler failures recorded in the context's store and exit.")
    public var listFailures = false

    @Flag(name: .long, help: "List the parked sequences in the context's store and exit.")
    public var listParked = false

    @Flag(name: .long, help: "Print how many rows the context's store keeps, table by table, and exit.")
    public var storeSizes = false

    @Option(name: .long, help: "Let the running consumer apply the parked sequence <source>/<stream> in order, and exit.")
    public var retryParked: String?

    @Option(name: .long, help: "Skip the parked event at the head of <source>/<stream> (needs --reason), and exit.")
    public var skipParked: String?

    @Option(name: .long, help: "Why the event is skipped (--skip-parked) or the handler rerun (--rerun-handler); recorded.")
    public var reason: String?

    @Flag(name: .long, help: "List the handlers skipped by a condition (skipped-<context>) and the forced reruns, and exit.")
    public var listSkippedHandlers = false

    @Option(name: .long, help: "Force this handler to run for the event it skipped (needs --event and --reason), and exit.")
    public var rerunHandler: String?

    @Option(name: .long, help: "The id of the event --rerun-handler runs the handler for.")
    public var event: String?

    @Flag(name: .long, help: "List the commands the relay parked in the context's command outbox, and exit.")
    public var listParkedCommands = false

    @Flag(name: .long, help: "Make the parked commands due again for the running relay, and exit.")
    public var retryParkedCommands = false

    public init() {}

    /// Which admin modes were asked for.
    private var modes: [Bool] {
        [
            exportDefinitions != nil, listDead, replayDead, listFailures, listParked, retryParked != nil, skipParked != nil, storeSizes,
            listSkippedHandlers, rerunHandler != nil, listParkedCommands, retryParkedCommands,
        ]
    }

    /// Whether an admin mode was asked for.
    var isAdmin: Bool { modes.contains(true) }

    public func validate() throws {
        guard modes.filter({ $0 }).count <= 1 else {
            throw ValidationError(
                "use at most one of --export-definitions, --list-dead, --replay-dead, --list-failures, --list-parked, --retry-parked, --skip-parked, --store-sizes, --list-skipped-handlers, --rerun-handler, --list-parked-commands, --retry-parked-commands"
            )
        }
        if skipParked != nil, (reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--skip-parked needs --reason <why the event is skipped>")
        }
        if rerunHandler != nil {
            guard let event, UUID(uuidString: event) != nil else { throw ValidationError("--rerun-handler needs --event <the event's id>") }
            guard !(reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ValidationError("--rerun-handler needs --reason <why the handler runs again>")
            }
        }
        for stream in [retryParked, skipParked].compactMap({ $0 }) where Self.sequence(stream) == nil {
            throw ValidationError("'\(stream)' is not <source context>/<stream id>, such as order/order-42")
        }
        if once, (role ?? ContextService.current.role) != .relay {
            throw ValidationError("--once relays what is pending and exits; it needs --role relay")
        }
    }

    /// `<source>/<stream>` split into the source context and a valid stream id.
    static func sequence(_ text: String) -> (source: String, stream: StreamID)? {
        guard let slash = text.firstIndex(of: "/") else { return nil }
        let source = String(text[..<slash])
        guard !source.isEmpty, let stream = try? StreamID(String(text[text.index(after: slash)...])) else { return nil }
        return (source, stream)
    }
}
