public import Foundation

/// A deadline of one flow: a name the process manager chose, such as `payment-timeout`, and
/// when it is due.
public struct Deadline: Sendable, Hashable, Codable {
    /// The deadline's id; the id of the ``DeadlineDue`` command that delivers it.
    public var id: UUID
    /// The name the process manager scheduled it under; a flow has at most one live deadline
    /// per name.
    public var name: String
    /// When it is due.
    public var dueAt: Date

    public init(id: UUID, name: String, dueAt: Date) {
        self.id = id
        self.name = name
        self.dueAt = dueAt
    }
}
