public import Foundation

/// The encoded state of a stream's aggregate at a version.
public struct Snapshot: Sendable, Hashable {
    /// The stream the snapshot belongs to.
    public var streamID: StreamID
    /// The stream version the state reflects.
    public var version: Int64
    /// The aggregate's encoded state.
    public var state: Data
    /// The version of the state's schema; a snapshot with another version is ignored.
    public var schemaVersion: Int

    public init(streamID: StreamID, version: Int64, state: Data, schemaVersion: Int) {
        self.streamID = streamID
        self.version = version
        self.state = state
        self.schemaVersion = schemaVersion
    }
}
