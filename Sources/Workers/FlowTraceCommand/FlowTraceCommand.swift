import ArgumentParser
import EventSourcery
import EventSourceryServices
import FlowTrace
import Foundation

/// `flow-trace`: prints the causal timeline of one flow across the context stores and
/// optionally writes it as an HTML or SVG sequence diagram.
@main
struct FlowTraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flow-trace",
        abstract: "Prints the causal timeline of one flow (an order or a correlation id) across the context stores.",
        discussion: """
            Reads every context store named in the configuration file (or given with \
            --context name=store), keeps the events of the flow and prints them in causal \
            order: each event after the event that caused it, across contexts, with the time \
            since the start, the delay from its cause (the hop through the broker when the \
            cause is in another context), the context, the event type and stream@version. \
            Handler failures recorded in failures-<context> appear as failed attempts (✗).

            --order <id> traces the flow whose first event is the first event of the stream \
            order-<id> in the order context (--entry-context and --entry-category change that); \
            --correlation <uuid> traces a correlation id directly.

            Cost: the stores have no index by correlation id, so every event of every store is \
            read once (in pages); fine for demo-sized stores. SQLite stores may be in use by \
            running services.

            --html <file> writes a self-contained HTML page with an SVG sequence diagram, \
            --svg <file> the diagram alone, --json prints the trace as JSON instead of the table.

            Exit codes: 0 done, 1 no such order or flow, 64 bad arguments, 66 a store file \
            does not exist, 69 a store cannot be read, 73 an output file cannot be written, \
            78 bad configuration.
            """
    )

    @Option(name: .long, help: "The configuration file; its contexts.<name>.store entries name the stores.")
    var config: String?

    @Option(name: .long, help: "The order id to trace: the flow of the stream order-<id> in the order context.")
    var order: String?

    @Option(name: .long, help: "The correlation id (UUID) of the flow to trace.")
    var correlation: String?

    @Option(
        name: .long, parsing: .singleValue,
        help: ArgumentHelp("A context store, replacing or adding to the file's (repeatable).", valueName: "name=store"))
    var context: [String] = []

    @Option(name: .long, help: "The context whose store holds the entry streams.")
    var entryContext = "order"

    @Option(name: .long, help: "The category of the entry streams, <category>-<id>.")
    var entryCategory = "order"

    @Option(name: .long, help: "Write a self-contained HTML page with the sequence diagram to this file.")
    var html: String?

    @Option(name: .long, help: "Write the SVG sequence diagram to this file.")
    var svg: String?

    @Flag(name: .long, help: "Print the trace as JSON instead of the table.")
    var json = false

    @Flag(name: .long, help: "Leave out the payload summaries of the table.")
    var noDetails = false

    static let defaultConfig = "config/eventsourcery.yaml"

    func validate() throws {
        guard (order == nil) != (correlation == nil) else {
            throw ValidationError("give exactly one of --order <id> and --correlation <uuid>")
        }
        if let correlation, UUID(uuidString: correlation) == nil {
            throw ValidationError("--correlation: '\(correlation)' is not a UUID")
        }
        for entry in context {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex, entry.index(after: equals) != entry.endIndex else {
                throw ValidationError("--context: '\(entry)' is not name=store (for example payment=sqlite:.run/stores/payment.sqlite)")
            }
        }
    }

    func run() async throws {
        let stores: [FlowTracer.ContextStore]
        do {
            stores = try await openStores()
        } catch {
            Self.printError(error.message)
            throw ExitCode(error.exitCode)
        }
        try await StoreService.withRunning(stores.map(\.storage)) { try await trace(stores) }
    }

    /// Traces the flow in `stores` and writes it out.
    private func trace(_ stores: [FlowTracer.ContextStore]) async throws {
        do {
            let tracer = FlowTracer(
                stores: stores,
                configuration: FlowTracer.Configuration(entryContext: entryContext, entryCategory: entryCategory)
            )
            let trace: FlowTrace
            if let order {
                trace = try await tracer.trace(entityID: order)
            } else {
                trace = try await tracer.trace(correlationID: UUID(uuidString: correlation ?? "")!)
            }
            if json {
                print(String(decoding: try trace.renderJSON(), as: UTF8.self))
            } else {
                print(trace.renderText(options: FlowTrace.TextOptions(showsSummary: !noDetails)), terminator: "")
            }
            if let html {
                try write(trace.renderHTML(), to: html, what: "HTML sequence diagram")
            }
            if let svg {
                try write(trace.renderSVG(), to: svg, what: "SVG sequence diagram")
            }
        } catch let error as Failure {
            Self.printError(error.message)
            throw ExitCode(error.exitCode)
        } catch let error as FlowTraceError {
            Self.printError(error.description)
            switch error.code {
            case .unknownEntity, .unknownCorrelation: throw ExitCode(1)
            case .unknownContext: throw ExitCode(78)
            default: throw ExitCode(64)
            }
        } catch let error as EventStoreError {
            Self.printError("Cannot read a store: \(error)")
            throw ExitCode(69)
        }
    }

    // MARK: Stores

    /// A failure with a message for the operator and an exit code.
    struct Failure: Error {
        var message: String
        var exitCode: Int32
    }

    /// The stores to read: the file's contexts with `--context` replacing or adding stores.
    /// Order: the `--context` order, then the entry context, then the others by name.
    private func openStores() async throws(Failure) -> [FlowTracer.ContextStore] {
        var locations: [String: String] = [:]
        var origins: [String: ConfigurationOrigin] = [:]
        let configPath = config ?? Self.defaultConfig
        if config != nil || context.isEmpty || FileManager.default.fileExists(atPath: configPath) {
            do {
                let configuration = try ServiceConfiguration.load(path: configPath)
                for (name, entry) in configuration.contexts {
                    locations[name] = entry.store
                    origins[name] = configuration.origin(of: "contexts.\(name).store")
                }
            } catch {
                throw Failure(message: "Bad configuration: \(error.description)", exitCode: 78)
            }
        }
        var order: [String] = []
        for entry in context {
            let equals = entry.firstIndex(of: "=")!
            let name = String(entry[..<equals])
            locations[name] = String(entry[entry.index(after: equals)...])
            origins[name] = .option("--context")
            if !order.contains(name) { order.append(name) }
        }
        if locations[entryContext] != nil, !order.contains(entryContext) { order.append(entryContext) }
        order += locations.keys.sorted().filter { !order.contains($0) }
        guard !order.isEmpty else {
            throw Failure(message: "No context stores: the configuration defines no contexts and no --context was given.", exitCode: 78)
        }

        var stores: [FlowTracer.ContextStore] = []
        for name in order {
            let value = locations[name]!
            let location: StorageLocation
            do {
                location = try StorageLocation(value, origin: origins[name] ?? .option("--context"), entry: "contexts.\(name).store")
            } catch {
                throw Failure(message: "Bad configuration: \(error)", exitCode: 78)
            }
            // Opening a SQLite path that does not exist would create an empty store: skip it.
            if case .sqlite(let path) = location, !FileManager.default.fileExists(atPath: path) {
                Self.printError("warning: the \(name) store \(path) does not exist; the trace leaves the \(name) context out")
                continue
            }
            do {
                stores.append(FlowTracer.ContextStore(context: name, storage: try await location.open()))
            } catch {
                throw Failure(message: "Cannot open the \(name) store \(location): \(error)", exitCode: 69)
            }
        }
        guard !stores.isEmpty else {
            throw Failure(
                message: "None of the stores exists (\(order.map { "\($0): \(locations[$0]!)" }.joined(separator: ", "))).", exitCode: 66)
        }
        return stores
    }

    // MARK: Output

    private func write(_ text: String, to path: String, what: String) throws(Failure) {
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw Failure(message: "Cannot write \(path): \(error.localizedDescription)", exitCode: 73)
        }
        let message = "\(what) written to \(path)"
        if json {
            Self.printError(message)
        } else {
            print(message)
        }
    }

    private static func printError(_ message: String) {
        FileHandle.standardError.write(Data("flow-trace: \(message)\n".utf8))
    }
}
