import EventSourcery
import EventSourcerySQLite
import EventSourceryTesting
import Foundation
import Testing

@Suite("SQLite storage conformance")
struct SQLiteConformanceTests {
    @Test(arguments: EventStorageConformance.Check.allCases)
    func conformance(_ check: EventStorageConformance.Check) async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.database()
            // The default, durable configuration: what users get.
            try await EventStorageConformance { try SQLiteEventStorage(path: path) }.run(check)
        }
    }
}
