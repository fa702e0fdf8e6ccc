import EventSourcery
import EventSourceryTesting
import Testing

@Suite("In-memory storage conformance")
struct InMemoryConformanceTests {
    @Test(arguments: EventStorageConformance.Check.allCases)
    func conformance(_ check: EventStorageConformance.Check) async throws {
        try await EventStorageConformance { InMemoryEventStorage() }.run(check)
    }
}
