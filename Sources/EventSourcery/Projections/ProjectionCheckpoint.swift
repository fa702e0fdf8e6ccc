public import Foundation

/// How far a projection has read the global order, and its state at that point.
public struct ProjectionCheckpoint: Sendable, Hashable {
    /// The projection's name.
    public var name: String
    /// The position of the last event applied.
    public var position: Int64
    /// The projection's encoded state.
    public var state: Data

    public init(name: String, position: Int64, state: Data) {
        self.name = name
        self.position = position
        self.state = state
    }
}
