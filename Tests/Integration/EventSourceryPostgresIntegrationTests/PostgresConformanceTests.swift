import TestSupport
import EventSourcery
import EventSourceryPostgres
import EventSourceryTesting
import Testing

@Suite("PostgreSQL storage conformance", .timeLimit(.minutes(2)), .requiresPostgres)
struct PostgresConformanceTests {
    @Test(arguments: EventStorageConformance.Check.allCases)
    func conformance(_ check: EventStorageConformance.Check) async throws {
        try await TestDatabase.withStorage { storage in
            try await EventStorageConformance { storage }.run(check)
        }
    }
}
