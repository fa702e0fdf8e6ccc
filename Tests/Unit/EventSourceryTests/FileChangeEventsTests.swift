import EventSourcery
import Testing

@Suite struct FileChangeEventsTests {
    /// One `struct inotify_event` record as the kernel writes it: the name NUL-padded to a
    /// multiple of `padding` bytes.
    private func record(mask: UInt32, name: String = "", padding: Int = 16) -> [UInt8] {
        var bytes: [UInt8] = []
        let length = name.isEmpty ? 0 : (name.utf8.count / padding + 1) * padding
        for word in [UInt32(1), mask, 0, UInt32(length)] {
            withUnsafeBytes(of: word) { bytes.append(contentsOf: $0) }
        }
        var nameBytes = Array(name.utf8)
        nameBytes += Array(repeating: 0, count: length - nameBytes.count)
        return bytes + nameBytes
    }

    @Test func aWriteToTheFileIsAChange() {
        let events = record(mask: FileChangeEvents.modified, name: "events.sqlite-wal")
        #expect(FileChangeEvents.decision(of: events, for: "events.sqlite-wal") == .changed)
    }

    @Test func creatingOrMovingTheFileIntoPlaceIsAChange() {
        #expect(FileChangeEvents.decision(of: record(mask: FileChangeEvents.created, name: "a-wal"), for: "a-wal") == .changed)
        #expect(FileChangeEvents.decision(of: record(mask: FileChangeEvents.movedTo, name: "a-wal"), for: "a-wal") == .changed)
    }

    @Test func writesToOtherFilesOfTheDirectoryAreNot() {
        let events =
            record(mask: FileChangeEvents.modified, name: "events.sqlite")
            + record(mask: FileChangeEvents.modified, name: "events.sqlite-wal2")
            + record(mask: FileChangeEvents.modified, name: "other.sqlite-wal")
        #expect(FileChangeEvents.decision(of: events, for: "events.sqlite-wal") == .unchanged)
    }

    @Test func aChangeAmongOtherRecordsIsFound() {
        let events =
            record(mask: FileChangeEvents.modified, name: "events.sqlite-shm", padding: 32)
            + record(mask: FileChangeEvents.modified, name: "events.sqlite-wal")
            + record(mask: FileChangeEvents.modified, name: "events.sqlite")
        #expect(FileChangeEvents.decision(of: events, for: "events.sqlite-wal") == .changed)
    }

    @Test func droppedEventsCountAsAChange() {
        #expect(FileChangeEvents.decision(of: record(mask: FileChangeEvents.overflowed), for: "a-wal") == .changed)
    }

    @Test func theEndOfTheWatchWinsOverAChange() {
        let events = record(mask: FileChangeEvents.modified, name: "a-wal") + record(mask: FileChangeEvents.ignored)
        #expect(FileChangeEvents.decision(of: events, for: "a-wal") == .watchEnded)
        #expect(FileChangeEvents.decision(of: record(mask: FileChangeEvents.deletedSelf), for: "a-wal") == .watchEnded)
        #expect(FileChangeEvents.decision(of: record(mask: FileChangeEvents.movedSelf), for: "a-wal") == .watchEnded)
    }

    @Test func aTruncatedRecordEndsTheParse() {
        let change = record(mask: FileChangeEvents.modified, name: "a-wal")
        #expect(FileChangeEvents.decision(of: change.dropLast(4), for: "a-wal") == .unchanged)
        #expect(FileChangeEvents.decision(of: change + change.prefix(10), for: "a-wal") == .changed)
        #expect(FileChangeEvents.decision(of: [UInt8](), for: "a-wal") == .unchanged)
    }
}
