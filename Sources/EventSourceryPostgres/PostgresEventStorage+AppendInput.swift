import EventSourcery
import Foundation

extension PostgresEventStorage {
    /// The appends of one batch, or of several batches one after another, as the arrays
    /// `append_events` and `commit_each` take.
    struct AppendInput {
        var streams: [String] = []
        var expected: [Int64] = []
        var counts: [Int32] = []
        var eventIDs: [UUID] = []
        var typeNames: [String] = []
        var schemaVersions: [Int32] = []
        var createdAts: [Date] = []
        var correlationIDs: [String] = []
        var causationIDs: [String] = []
        var traceContexts: [String] = []
        var payloads: [String] = []
        var publishes: [Bool] = []

        /// Adds one batch's appends (``WriteBatch/writtenAppends``).
        ///
        /// - Throws: ``EventStoreError/duplicateEvent(_:stream:)`` when the batch holds an event
        ///   id twice; nothing is added then.
        mutating func add(_ appends: [WriteBatch.StreamAppend]) throws {
            var batchIDs: Set<UUID> = []
            for append in appends {
                for event in append.events where !batchIDs.insert(event.id).inserted {
                    throw EventStoreError.duplicateEvent(event.id, stream: append.streamID)
                }
            }
            for append in appends {
                streams.append(append.streamID.rawValue)
                let expectedVersion: Int64 =
                    switch append.expectedVersion {
                    case .any: -1
                    case .noStream: 0
                    case .exact(let version): version
                    }
                expected.append(expectedVersion)
                counts.append(Int32(append.events.count))
                for event in append.events {
                    eventIDs.append(event.id)
                    typeNames.append(event.typeName)
                    schemaVersions.append(Int32(clamping: event.schemaVersion))
                    createdAts.append(event.createdAt)
                    correlationIDs.append(event.metadata.correlationID?.uuidString ?? "")
                    causationIDs.append(event.metadata.causationID?.uuidString ?? "")
                    traceContexts.append(TraceContextJSON.encode(event.metadata.traceContext))
                    payloads.append(String(decoding: event.payload, as: UTF8.self))
                    publishes.append(append.publishes)
                }
            }
        }
    }

    /// The recorded events of `appends`, given the positions and stream versions
    /// `append_events` assigned to their events, in order.
    static func recordedEvents(_ appends: [WriteBatch.StreamAppend], positions: [Int64], versions: [Int64]) throws -> [RecordedEvent] {
        let eventCount = appends.reduce(0) { $0 + $1.events.count }
        guard positions.count == eventCount, versions.count == eventCount else {
            throw EventStoreError(
                .storageFailure,
                message: "append_events returned \(positions.count) positions for \(eventCount) events: the schema's function "
                    + "is not the one this library created.")
        }
        var recorded: [RecordedEvent] = []
        recorded.reserveCapacity(eventCount)
        var index = 0
        for append in appends {
            for event in append.events {
                recorded.append(
                    RecordedEvent(streamID: append.streamID, streamVersion: versions[index], position: positions[index], event: event))
                index += 1
            }
        }
        return recorded
    }
}

extension WriteBatch {
    /// The appends `append_events` gets: those with events or an expected version.
    var writtenAppends: [StreamAppend] {
        appends.filter { !$0.events.isEmpty || $0.expectedVersion != .any }
    }

    /// Holds appends and at most an inbox entry: no checkpoint, snapshot or command, so that
    /// `commit_each` can write it.
    var isInboxAndAppends: Bool {
        checkpoint == nil && snapshots.isEmpty && commands.isEmpty && cancelledCommands.isEmpty
    }
}
