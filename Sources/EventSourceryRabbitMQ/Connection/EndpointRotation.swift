/// The order in which a connection tries the nodes of a cluster, and when a round of
/// attempts has failed on every node. Pure, so ``ConnectionStateMachine`` stays pure.
///
/// The endpoints are shuffled once, with the injected random source, so that the
/// connections of several replicas spread over the nodes; afterwards they are tried round
/// robin. ``failed()`` moves to the next endpoint after a failed attempt or a lost
/// connection and says whether an endpoint not yet tried since the last success remains;
/// once every endpoint failed in a row the round starts over (the caller backs off first).
struct EndpointRotation: Equatable {
    /// Indices into the configuration's endpoints, in the order they are tried.
    let order: [Int]
    private var position = 0
    private var failuresInRound = 0

    /// Shuffles `count` endpoints (Fisher–Yates) with `randomFraction`, a number in 0...1.
    init(count: Int, randomFraction: () -> Double) {
        precondition(count > 0, "a connection has at least one endpoint")
        var order = Array(0..<count)
        for index in stride(from: count - 1, to: 0, by: -1) {
            let other = min(index, Int(randomFraction() * Double(index + 1)))
            order.swapAt(index, other)
        }
        self.order = order
    }

    /// The endpoint to connect to next.
    var current: Int { order[position] }

    /// The current endpoint could not be reached, or its connection was lost: moves to the
    /// next one.
    ///
    /// - Returns: `true` while an endpoint not tried since the last success remains; `false`
    ///   once every endpoint failed in a row (the next round then starts).
    mutating func failed() -> Bool {
        position = (position + 1) % order.count
        failuresInRound += 1
        guard failuresInRound >= order.count else { return true }
        failuresInRound = 0
        return false
    }

    /// A connection to ``current`` was established: every endpoint may be tried again.
    mutating func succeeded() {
        failuresInRound = 0
    }
}
