import EventSourcery
import Foundation

extension FlowTrace {
    /// The steps of `events` in causal order (see ``init(correlationID:events:contextOrder:failureEventTypes:scannedEventCount:entry:)``).
    static func causalSteps(_ events: [SourceEvent], contextOrder: [String], failureEventTypes: Set<String>) -> [Step] {
        // Deduplicate by event id: the first occurrence wins.
        var nodes: [SourceEvent] = []
        var indexByID: [UUID: Int] = [:]
        for event in events where indexByID[event.recorded.event.id] == nil {
            indexByID[event.recorded.event.id] = nodes.count
            nodes.append(event)
        }
        guard !nodes.isEmpty else { return [] }

        // The tie-break rank of every node: createdAt, then context order, then position.
        var contextRank: [String: Int] = [:]
        for (rank, context) in contextOrder.enumerated() where contextRank[context] == nil {
            contextRank[context] = rank
        }
        let byTieBreak = nodes.indices.sorted { a, b in
            let x = nodes[a], y = nodes[b]
            if x.recorded.event.createdAt != y.recorded.event.createdAt {
                return x.recorded.event.createdAt < y.recorded.event.createdAt
            }
            let rx = contextRank[x.context] ?? Int.max, ry = contextRank[y.context] ?? Int.max
            if rx != ry { return rx < ry }
            if x.context != y.context { return x.context < y.context }
            if x.recorded.position != y.recorded.position { return x.recorded.position < y.recorded.position }
            return a < b
        }
        var rank = Array(repeating: 0, count: nodes.count)
        for (position, node) in byTieBreak.enumerated() { rank[node] = position }

        // Causation links inside the trace.
        var parent: [Int?] = Array(repeating: nil, count: nodes.count)
        var children: [[Int]] = Array(repeating: [], count: nodes.count)
        for (index, node) in nodes.enumerated() {
            guard let cause = node.recorded.event.metadata.causationID, let causeIndex = indexByID[cause], causeIndex != index else {
                continue
            }
            parent[index] = causeIndex
            children[causeIndex].append(index)
        }

        // Kahn's algorithm; the ready set is a min-heap of ranks.
        var ready = MinHeap()
        for index in nodes.indices where parent[index] == nil { ready.insert(rank[index]) }
        var emitted = Array(repeating: false, count: nodes.count)
        var order: [Int] = []
        order.reserveCapacity(nodes.count)
        var nextUnemittedRank = 0
        while order.count < nodes.count {
            let node: Int
            if let next = ready.popMin() {
                node = byTieBreak[next]
            } else {
                // Only a causation cycle leaves nodes unreachable: break it at its earliest node.
                while emitted[byTieBreak[nextUnemittedRank]] { nextUnemittedRank += 1 }
                node = byTieBreak[nextUnemittedRank]
                parent[node] = nil
            }
            guard !emitted[node] else { continue }
            emitted[node] = true
            order.append(node)
            for child in children[node] where !emitted[child] && parent[child] == node {
                ready.insert(rank[child])
            }
        }

        // The steps, with depths and delays.
        var stepIndex: [Int: Int] = [:]
        var steps: [Step] = []
        steps.reserveCapacity(order.count)
        let start = nodes[order[0]].recorded.event.createdAt
        for node in order {
            let source = nodes[node]
            let event = source.recorded.event
            let cause = parent[node].flatMap { stepIndex[$0] }
            let previous = steps.last?.createdAt ?? event.createdAt
            let step = Step(
                index: steps.count,
                context: source.context,
                eventType: event.typeName,
                streamID: source.recorded.streamID.rawValue,
                streamVersion: source.recorded.streamVersion,
                position: source.recorded.position,
                eventID: event.id,
                causationID: event.metadata.causationID,
                causeIndex: cause,
                causeContext: cause.map { steps[$0].context },
                depth: cause.map { steps[$0].depth + 1 } ?? 0,
                createdAt: event.createdAt,
                sinceStart: event.createdAt.timeIntervalSince(start),
                sincePrevious: event.createdAt.timeIntervalSince(previous),
                sinceCause: cause.map { event.createdAt.timeIntervalSince(steps[$0].createdAt) },
                isFailure: failureEventTypes.contains(event.typeName),
                summary: PayloadSummary.summarize(
                    event.payload, typeName: event.typeName, isFailure: failureEventTypes.contains(event.typeName)),
                payload: String(decoding: event.payload, as: UTF8.self),
                isCommand: source.isCommand
            )
            stepIndex[node] = steps.count
            steps.append(step)
        }
        return steps
    }
}

/// A binary min-heap of integers.
struct MinHeap {
    private var storage: [Int] = []

    mutating func insert(_ value: Int) {
        storage.append(value)
        var child = storage.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard storage[child] < storage[parent] else { break }
            storage.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popMin() -> Int? {
        guard let first = storage.first else { return nil }
        let last = storage.removeLast()
        guard !storage.isEmpty else { return first }
        storage[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < storage.count, storage[left] < storage[smallest] { smallest = left }
            if right < storage.count, storage[right] < storage[smallest] { smallest = right }
            guard smallest != parent else { return first }
            storage.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
