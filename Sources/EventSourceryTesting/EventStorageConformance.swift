public import EventSourcery
import Foundation
import Testing

/// The behaviour every ``EventStorage`` backend must show, checked the same way for each.
///
/// Run every check against a fresh storage from your backend's test target:
///
/// ```swift
/// @Test(arguments: EventStorageConformance.Check.allCases)
/// func conformance(_ check: EventStorageConformance.Check) async throws {
///     try await EventStorageConformance { try MyStorage(temporary: ()) }.run(check)
/// }
/// ```
public struct EventStorageConformance: Sendable {
    /// One behaviour of the storage contract.
    public enum Check: String, CaseIterable, Sendable {
        case appendAndLoadRoundTrip
        case optimisticConcurrency
        case batchIsAtomicAcrossStreams
        case duplicateEventIDIsRejected
        case globalOrderAcrossStreams
        case flowsAreReadByCorrelationID
        case loadUpToVersion
        case loadAsOfPointInTime
        case streamExistenceAndVersion
        case concurrentWritersOneWins
        case publishAddsOutboxEntries
        case outboxLeasesShareWorkInStreamOrder
        case outboxMarkPublished
        case outboxReleaseHandsEntriesBack
        case outboxRenewExtendsLiveLeasesOnly
        case outboxRetryHoldsBackItsStreamOnly
        case outboxParkAndRequeue
        case outboxHousekeeping
        case inboxRunsOnce
        case inboxRetentionAndSizes
        case inboxFailureWritesNothing
        case inboxRaceProcessesOnce
        case inboxLookupOfSeveralEntries
        case commitEachIsAtomicPerBatch
        case heldEventsFormSequencesPerStream
        case heldEventsUpdateAndRelease
        case snapshotsReplaceOlder
        case checkpointsStoreAndReset
        case projectionCatchUpAndRebuild
        case repositoryCommands
        case repositorySnapshots
        case subscriptionsRunAfterCommit
        case upcastersApplyOnRead
        case unknownTypeIsTypedError
        case commandsCommitWithTheirBatch
        case commandsAreClaimedWhenDue
        case commandLeasesAndSentMarks
        case commandFailuresParkAtTheLimit
        case pendingCommandsCanBeCancelled
        case processManagerRunsOncePerInput
    }

    private let makeStorage: @Sendable () async throws -> any EventStorage

    /// Creates the suite; `makeStorage` returns a new, empty storage for each check.
    public init(makeStorage: @escaping @Sendable () async throws -> any EventStorage) {
        self.makeStorage = makeStorage
    }

    /// Runs every check.
    public func runAll() async throws {
        for check in Check.allCases { try await run(check) }
    }

    /// Runs one check against a fresh storage.
    public func run(_ check: Check) async throws {
        let storage = try await makeStorage()
        let checks = Checks(storage: storage, store: EventStore(storage: storage, registry: ConformanceFixtures.registry))
        switch check {
        case .appendAndLoadRoundTrip: try await checks.appendAndLoadRoundTrip()
        case .optimisticConcurrency: try await checks.optimisticConcurrency()
        case .batchIsAtomicAcrossStreams: try await checks.batchIsAtomicAcrossStreams()
        case .duplicateEventIDIsRejected: try await checks.duplicateEventIDIsRejected()
        case .globalOrderAcrossStreams: try await checks.globalOrderAcrossStreams()
        case .flowsAreReadByCorrelationID: try await checks.flowsAreReadByCorrelationID()
        case .loadUpToVersion: try await checks.loadUpToVersion()
        case .loadAsOfPointInTime: try await checks.loadAsOfPointInTime()
        case .streamExistenceAndVersion: try await checks.streamExistenceAndVersion()
        case .concurrentWritersOneWins: try await checks.concurrentWritersOneWins()
        case .publishAddsOutboxEntries: try await checks.publishAddsOutboxEntries()
        case .outboxLeasesShareWorkInStreamOrder: try await checks.outboxLeasesShareWorkInStreamOrder()
        case .outboxMarkPublished: try await checks.outboxMarkPublished()
        case .outboxReleaseHandsEntriesBack: try await checks.outboxReleaseHandsEntriesBack()
        case .outboxRenewExtendsLiveLeasesOnly: try await checks.outboxRenewExtendsLiveLeasesOnly()
        case .outboxRetryHoldsBackItsStreamOnly: try await checks.outboxRetryHoldsBackItsStreamOnly()
        case .outboxParkAndRequeue: try await checks.outboxParkAndRequeue()
        case .outboxHousekeeping: try await checks.outboxHousekeeping()
        case .inboxRunsOnce: try await checks.inboxRunsOnce()
        case .inboxFailureWritesNothing: try await checks.inboxFailureWritesNothing()
        case .inboxRaceProcessesOnce: try await checks.inboxRaceProcessesOnce()
        case .inboxLookupOfSeveralEntries: try await checks.inboxLookupOfSeveralEntries()
        case .inboxRetentionAndSizes: try await checks.inboxRetentionAndSizes()
        case .commitEachIsAtomicPerBatch: try await checks.commitEachIsAtomicPerBatch()
        case .heldEventsFormSequencesPerStream: try await checks.heldEventsFormSequencesPerStream()
        case .heldEventsUpdateAndRelease: try await checks.heldEventsUpdateAndRelease()
        case .snapshotsReplaceOlder: try await checks.snapshotsReplaceOlder()
        case .checkpointsStoreAndReset: try await checks.checkpointsStoreAndReset()
        case .projectionCatchUpAndRebuild: try await checks.projectionCatchUpAndRebuild()
        case .repositoryCommands: try await checks.repositoryCommands()
        case .repositorySnapshots: try await checks.repositorySnapshots()
        case .subscriptionsRunAfterCommit: try await checks.subscriptionsRunAfterCommit()
        case .upcastersApplyOnRead: try await checks.upcastersApplyOnRead()
        case .unknownTypeIsTypedError: try await checks.unknownTypeIsTypedError()
        case .commandsCommitWithTheirBatch: try await checks.commandsCommitWithTheirBatch()
        case .commandsAreClaimedWhenDue: try await checks.commandsAreClaimedWhenDue()
        case .commandLeasesAndSentMarks: try await checks.commandLeasesAndSentMarks()
        case .commandFailuresParkAtTheLimit: try await checks.commandFailuresParkAtTheLimit()
        case .pendingCommandsCanBeCancelled: try await checks.pendingCommandsCanBeCancelled()
        case .processManagerRunsOncePerInput: try await checks.processManagerRunsOncePerInput()
        }
    }
}
