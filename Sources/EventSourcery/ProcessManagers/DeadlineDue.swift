/// The command that delivers a deadline: sent by a flow to its own context, due at the
/// deadline's time, and cancelled in the command outbox when the flow cancels the deadline.
///
/// Its command id is the deadline's id, so the receiving inbox fires a deadline at most once;
/// a ``DeadlineDue`` that arrives for a deadline the flow cancelled (it was already sent when
/// the cancel committed) finds no live deadline and changes nothing.
public struct DeadlineDue: Command, Equatable {
    /// The process manager's stream category.
    public var processManager: String
    /// The flow's id.
    public var flowID: String
    /// The deadline.
    public var deadline: Deadline

    public init(processManager: String, flowID: String, deadline: Deadline) {
        self.processManager = processManager
        self.flowID = flowID
        self.deadline = deadline
    }
}
