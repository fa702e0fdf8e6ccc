@testable import EventSourceryRabbitMQ
import Testing

@Suite struct EndpointRotationTests {
    /// A random source that returns `values` in turn.
    static func sequence(_ values: [Double]) -> () -> Double {
        var remaining = values[...]
        return { remaining.popFirst() ?? 0 }
    }

    @Test func oneEndpointIsAlwaysTheCurrentOneAndEveryFailureEndsTheRound() {
        var rotation = EndpointRotation(count: 1) { 0.5 }
        #expect(rotation.order == [0])
        #expect(rotation.failed() == false)
        #expect(rotation.current == 0)
        #expect(rotation.failed() == false)
    }

    @Test(arguments: [
        (0.999, [0, 1, 2]),  // every draw keeps the element in place
        (0.0, [1, 2, 0]),  // every draw swaps with the first
        (0.5, [0, 2, 1]),
    ])
    func theOrderIsShuffledWithTheInjectedSource(fraction: Double, order: [Int]) {
        let rotation = EndpointRotation(count: 3) { fraction }
        #expect(rotation.order == order)
        #expect(rotation.current == order[0])
    }

    @Test func differentDrawsSpreadTheFirstEndpointOverTheNodes() {
        let firsts = Set(
            [[0.9, 0.9], [0.0, 0.9], [0.5, 0.9], [0.9, 0.0]].map { draws in
                EndpointRotation(count: 3, randomFraction: Self.sequence(draws)).current
            })
        #expect(firsts == [0, 1, 2])
    }

    @Test func aShuffleIsAPermutation() {
        for draw in stride(from: 0.0, through: 1.0, by: 0.05) {
            let rotation = EndpointRotation(count: 5) { draw }
            #expect(rotation.order.sorted() == [0, 1, 2, 3, 4])
        }
    }

    @Test func aFailureMovesToTheNextEndpointUntilEveryOneFailed() {
        var rotation = EndpointRotation(count: 3) { 0.999 }
        #expect(rotation.current == 0)
        #expect(rotation.failed() == true)
        #expect(rotation.current == 1)
        #expect(rotation.failed() == true)
        #expect(rotation.current == 2)
        // The third failure in a row: every endpoint failed; the next round starts at 0.
        #expect(rotation.failed() == false)
        #expect(rotation.current == 0)
        #expect(rotation.failed() == true)
        #expect(rotation.current == 1)
    }

    @Test func aSuccessStartsANewRound() {
        var rotation = EndpointRotation(count: 3) { 0.999 }
        #expect(rotation.failed() == true)
        #expect(rotation.failed() == true)
        rotation.succeeded()
        #expect(rotation.current == 2)
        #expect(rotation.failed() == true)
        #expect(rotation.failed() == true)
        #expect(rotation.failed() == false)
    }
}
