import ArgumentParser
import EventSourcery
import EventSourceryAMQP
import EventSourceryRabbitMQ
import Foundation
import Logging

extension ContextServiceCommand {
    /// Runs the one admin mode asked for; closes what it opened.
    func runAdmin(_ settings: ServiceBootstrap.Settings, modules: ContextHandlers, logger: Logger) async throws {
        if let path = kit.exportDefinitions {
            try export(settings.configuration, to: path, logger: logger)
        } else if kit.listDead || kit.replayDead {
            try await deadLetters(settings, logger: logger)
        } else if let handler = kit.rerunHandler, let event = kit.event.flatMap(UUID.init(uuidString:)) {
            try await rerun(handler, event: event, settings, modules: modules, logger: logger)
        } else {
            let storage = try await ServiceBootstrap.openStore(settings, logger: logger)
            let store = EventStore(storage: storage, registry: EventRegistry([HandlerFailed.self, EventSkipped.self]), logger: logger)
            try await StoreService.withRunning([storage]) {
                if kit.listFailures {
                    try await listFailures(store)
                } else if kit.listSkippedHandlers {
                    try await listSkippedHandlers(store)
                } else if kit.listParkedCommands || kit.retryParkedCommands {
                    try await parkedCommands(storage)
                } else if kit.storeSizes {
                    try await printSizes(storage)
                } else {
                    try await parked(store, logger: logger)
                }
            }
        }
    }

    /// `--list-dead`, `--replay-dead`: work on the broker only.
    private func deadLetters(_ settings: ServiceBootstrap.Settings, logger: Logger) async throws {
        let connection = try await ServiceBootstrap.connect(settings, logger: logger)
        do {
            try await ServiceBootstrap.declareTopology(settings, on: connection, logger: logger)
            let admin = ContextAdmin(context: context, connection: connection, partitions: settings.consumerConfiguration.partitions)
            if kit.listDead {
                let letters = try await admin.deadLetters()
                print("\(letters.count) dead letter(s) in \(settings.topology.deadLetterQueue)")
                for letter in letters {
                    print(
                        "\(letter.messageID ?? "-")\t\(letter.isCommand ? "command" : "event")\t\(letter.routingKey)\t\(letter.reason)\t\(letter.detail ?? "")"
                    )
                }
            } else {
                let moved = try await admin.replayDeadLetters()
                print(
                    "moved \(moved) message(s) from \(settings.topology.deadLetterQueue) to \(settings.topology.inboxQueues.joined(separator: ", ")) (commands to \(CommandMessage.queue(for: context)))"
                )
            }
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
    }

    /// `--list-failures`.
    private func listFailures(_ store: EventStore) async throws {
        let failures = try await ContextAdmin.handlerFailures(context: context, store: store)
        print("\(failures.count) handler failure(s) in failures-\(context)")
        for failure in failures {
            print(
                "\(failure.failedAt)\t\(failure.handler)\t\(failure.eventType)\t\(failure.eventID)\tattempt \(failure.attempt)\t\(failure.error)"
            )
        }
    }

    /// `--list-skipped-handlers`.
    private func listSkippedHandlers(_ store: EventStore) async throws {
        let skips = try await ContextAdmin.skippedHandlers(context: context, store: store)
        print("\(skips.count) skipped handler(s) in skipped-\(context)")
        for skip in skips {
            print(
                "\(skip.skippedAt)\t\(skip.handler)\t\(skip.condition)\t\(skip.eventType)\t\(skip.eventID)\t\(skip.sourceContext)/\(skip.sourceStream)"
            )
        }
        let reruns = try await ContextAdmin.reruns(context: context, store: store)
        print("\(reruns.count) forced rerun(s)")
        for rerun in reruns {
            print("\(rerun.ranAt)\t\(rerun.handler)\t\(rerun.eventID)\t\(rerun.reason)")
        }
    }

    /// `--rerun-handler <name> --event <id> --reason <text>`: needs the context's code.
    private func rerun(
        _ handler: String, event: UUID, _ settings: ServiceBootstrap.Settings, modules: ContextHandlers, logger: Logger
    ) async throws {
        guard let module = modules.module(for: context) else {
            throw ServiceBootstrap.StartupError(
                "--rerun-handler runs the context's handler code, which this build does not have for '\(context)'; run it with the context's service",
                exitCode: 78)
        }
        let storage = try await ServiceBootstrap.openStore(settings, logger: logger)
        let store = EventStore(storage: storage, registry: module.registry, logger: logger)
        try await StoreService.withRunning([storage]) {
            let deadlines = module.deadlines.merging((try? settings.configuration.deadlines(context: context)) ?? [:]) { $1 }
            let consumer = ContextConsumer(
                connection: AMQPConnection(configuration: settings.connectionConfiguration, logger: logger), store: store,
                handlers: module.makeEventHandlers(ContextResources(store: store, deadlines: deadlines)),
                configuration: settings.consumerConfiguration, topology: settings.topology, logger: logger)
            do {
                let rerun = try await consumer.rerun(handler: handler, eventID: event, reason: kit.reason ?? "")
                print("\(handler) ran for \(event); recorded as rerun \(rerun.rerunID) in skipped-\(context)")
            } catch let error as HandlerRerunError {
                logger.error("\(error)")
                throw ExitCode(1)
            }
        }
    }

    /// `--list-parked-commands`, `--retry-parked-commands`.
    private func parkedCommands(_ storage: any EventStorage) async throws {
        let parked = try await storage.commandOutboxEntries(in: [.parked], limit: Int(Int32.max))
        if kit.retryParkedCommands {
            let requeued = try await storage.requeueParkedCommands(parked.map(\.command.id))
            print("\(requeued) parked command(s) due again; the running relay sends them")
            return
        }
        print("\(parked.count) parked command(s) in \(context)")
        for entry in parked {
            print(
                "\(entry.command.id)\t\(entry.command.typeName)\tto \(entry.command.target)\tattempts \(entry.attempts)\t\(entry.lastError ?? "")"
            )
        }
    }

    /// `--store-sizes`.
    private func printSizes(_ storage: any EventStorage) async throws {
        let sizes = try await storage.sizes()
        print("events\t\(sizes.events)")
        print("outbox pending\t\(sizes.outbox.pending)\noutbox parked\t\(sizes.outbox.parked)\noutbox published\t\(sizes.outbox.published)")
        print("inbox entries\t\(sizes.inboxEntries)\nheld events\t\(sizes.heldEvents)")
    }

    /// `--list-parked`, `--retry-parked`, `--skip-parked`: work on the store only.
    private func parked(_ store: EventStore, logger: Logger) async throws {
        do {
            if let retryParked = kit.retryParked, let (source, stream) = ContextServiceOptions.sequence(retryParked) {
                try await ContextAdmin.retryParked(context: context, sourceContext: source, sourceStream: stream, store: store)
                print("\(retryParked): due now; the running consumer applies it in order")
            } else if let skipParked = kit.skipParked, let (source, stream) = ContextServiceOptions.sequence(skipParked) {
                let skip = try await ContextAdmin.skipParked(
                    context: context, sourceContext: source, sourceStream: stream, reason: kit.reason ?? "", store: store)
                print(
                    "\(skipParked): skipped \(skip.eventType) \(skip.eventID) (version \(skip.streamVersion)), recorded in failures-\(context)"
                )
            } else {
                let sequences = try await ContextAdmin.parkedSequences(context: context, store: store)
                print("\(sequences.count) parked sequence(s) in \(context)")
                for entry in sequences {
                    print(
                        "\(entry.sequence)\tversion \(entry.head.streamVersion)\t\(entry.head.event.typeName)\t\(entry.head.event.id)\t"
                            + "attempts \(entry.head.attempts)\t\(entry.waitingBehind) waiting behind\t\(entry.head.lastError ?? "")")
                }
            }
        } catch let error as ParkedSequenceError {
            logger.error("\(error)")
            throw ExitCode(1)
        }
    }

    /// `--export-definitions`.
    private func export(_ configuration: ServiceConfiguration, to path: String, logger: Logger) throws(ServiceBootstrap.StartupError) {
        do {
            try ContextTopology.definitionsJSON(configuration.topologies).write(to: URL(fileURLWithPath: path))
            logger.info("RabbitMQ definitions written", metadata: ["file": "\(path)"])
        } catch {
            throw ServiceBootstrap.StartupError("Cannot write \(path): \(error)", exitCode: 73)
        }
    }
}
