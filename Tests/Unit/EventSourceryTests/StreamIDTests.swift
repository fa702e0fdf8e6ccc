import EventSourcery
import Testing

@Suite struct StreamIDTests {
    @Test func acceptsIDsUpToTheLimit() throws {
        let id = try StreamID(String(repeating: "é", count: StreamID.maximumLength / 2))
        #expect(id.rawValue.utf8.count == 254)
        #expect(try StreamID(category: "order", id: "42").rawValue == "order-42")
    }

    @Test func rejectsEmptyID() throws {
        let empty = String()  // a literal would pick the non-throwing literal initializer
        let error = try #require(throws: EventStoreError.self) { try StreamID(empty) }
        #expect(error.code == .invalidStreamID)
    }

    @Test func rejectsTooLongIDWithAMessageThatSaysWhatToDo() throws {
        let error = try #require(throws: EventStoreError.self) { try StreamID(String(repeating: "x", count: 256)) }
        #expect(error.code == .invalidStreamID)
        #expect(error.message.contains("256 bytes"))
        #expect(error.message.contains("limit is 255"))
    }

    @Test func expectedVersionMatching() {
        #expect(ExpectedVersion.any.isSatisfied(byActualVersion: 7))
        #expect(ExpectedVersion.noStream.isSatisfied(byActualVersion: 0))
        #expect(!ExpectedVersion.noStream.isSatisfied(byActualVersion: 1))
        #expect(ExpectedVersion.exact(3).isSatisfied(byActualVersion: 3))
        #expect(!ExpectedVersion.exact(3).isSatisfied(byActualVersion: 4))
    }

    @Test func conflictErrorNamesStreamAndVersions() {
        let error = EventStoreError.conflict(stream: "order-1", expected: .exact(2), actual: 5)
        #expect(error.description.contains("order-1"))
        #expect(error.description.contains("version 2"))
        #expect(error.description.contains("version 5"))
        #expect(error.description.contains("reload"))
    }
}
