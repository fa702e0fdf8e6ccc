/// An aggregate that can be saved as a snapshot, so loading it reads only the events
/// after the latest snapshot.
public protocol SnapshottingAggregate: Aggregate {
    /// The state a snapshot stores.
    associatedtype SnapshotState: Codable & Sendable

    /// The version of ``SnapshotState``'s schema; snapshots of another version are ignored.
    static var snapshotSchemaVersion: Int { get }

    /// The current state to snapshot.
    var snapshotState: SnapshotState { get }

    /// Restores the aggregate from a snapshot.
    init(id: String, snapshotState: SnapshotState)
}

extension SnapshottingAggregate {
    public static var snapshotSchemaVersion: Int { 1 }
}
