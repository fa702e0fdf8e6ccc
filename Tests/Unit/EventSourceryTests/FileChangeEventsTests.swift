import EventSourcery
import Testing

@Suite struct FileChangeEventsTests {
    /// The watch descriptors of the directory and of the file in these tests.
    private let directory: Int32 = 1
    private let file: Int32 = 2

    /// One `struct inotify_event` record as the kernel writes it: the name NUL-padded to a
    /// multiple of `padding` bytes.
    private func record(watch: Int32, mask: UInt32, name: String = "", padding: Int = 16) -> [UInt8] {
        var bytes: [UInt8] = []
        let length = name.isEmpty ? 0 : (name.utf8.count / padding + 1) * padding
        for word in [UInt32(bitPattern: watch), mask, 0, UInt32(length)] {
            withUnsafeBytes(of: word) { bytes.append(contentsOf: $0) }
        }
        var nameBytes = Array(name.utf8)
        nameBytes += Array(repeating: 0, count: length - nameBytes.count)
        return bytes + nameBytes
    }

    private func decision(_ events: [UInt8], fileWatch: Int32? = 2) -> FileChangeEvents.Decision {
        FileChangeEvents.decision(of: events, for: "events.sqlite-wal", directoryWatch: directory, fileWatch: fileWatch)
    }

    @Test func aWriteToTheFileIsAChange() {
        #expect(decision(record(watch: file, mask: FileChangeEvents.modified)) == .changed)
        #expect(
            decision(record(watch: file, mask: FileChangeEvents.modified) + record(watch: file, mask: FileChangeEvents.modified))
                == .changed)
    }

    @Test func creatingOrMovingTheFileIntoPlaceReplacesIt() {
        #expect(decision(record(watch: directory, mask: FileChangeEvents.created, name: "events.sqlite-wal")) == .replaced)
        #expect(decision(record(watch: directory, mask: FileChangeEvents.movedTo, name: "events.sqlite-wal"), fileWatch: nil) == .replaced)
        let writeThenCreate =
            record(watch: file, mask: FileChangeEvents.modified)
            + record(watch: directory, mask: FileChangeEvents.created, name: "events.sqlite-wal")
        #expect(decision(writeThenCreate) == .replaced)
        let createThenWrite =
            record(watch: directory, mask: FileChangeEvents.created, name: "events.sqlite-wal")
            + record(watch: file, mask: FileChangeEvents.modified)
        #expect(decision(createThenWrite) == .replaced)
    }

    @Test func removingTheFileReplacesIt() {
        #expect(decision(record(watch: file, mask: FileChangeEvents.ignored)) == .replaced)
    }

    @Test func otherFilesOfTheDirectoryAndEarlierWatchesOfTheFileAreNotChanges() {
        let events =
            record(watch: directory, mask: FileChangeEvents.created, name: "events.sqlite")
            + record(watch: directory, mask: FileChangeEvents.movedTo, name: "events.sqlite-wal2")
            + record(watch: directory, mask: FileChangeEvents.created, name: "other.sqlite-wal")
            + record(watch: 7, mask: FileChangeEvents.modified)
            + record(watch: 7, mask: FileChangeEvents.ignored)
        #expect(decision(events) == .unchanged)
        #expect(decision(record(watch: file, mask: FileChangeEvents.modified), fileWatch: nil) == .unchanged)
    }

    @Test func aChangeAmongOtherRecordsIsFound() {
        let events =
            record(watch: directory, mask: FileChangeEvents.created, name: "events.sqlite-shm", padding: 32)
            + record(watch: file, mask: FileChangeEvents.modified)
            + record(watch: directory, mask: FileChangeEvents.created, name: "events.sqlite")
        #expect(decision(events) == .changed)
    }

    @Test func droppedEventsReplaceTheFile() {
        #expect(decision(record(watch: -1, mask: FileChangeEvents.overflowed)) == .replaced)
    }

    @Test func theEndOfTheDirectoryWinsOverAChange() {
        let events = record(watch: file, mask: FileChangeEvents.modified) + record(watch: directory, mask: FileChangeEvents.ignored)
        #expect(decision(events) == .watchEnded)
        #expect(decision(record(watch: directory, mask: FileChangeEvents.deletedSelf)) == .watchEnded)
        #expect(decision(record(watch: directory, mask: FileChangeEvents.movedSelf)) == .watchEnded)
        #expect(decision(record(watch: directory, mask: FileChangeEvents.unmounted)) == .watchEnded)
    }

    @Test func aTruncatedRecordEndsTheParse() {
        let change = record(watch: file, mask: FileChangeEvents.modified)
        #expect(decision(Array(change.dropLast(4))) == .unchanged)
        #expect(decision(change + change.prefix(10)) == .changed)
        #expect(
            decision(Array(record(watch: directory, mask: FileChangeEvents.created, name: "events.sqlite-wal").dropLast(4))) == .unchanged)
        #expect(decision([]) == .unchanged)
    }
}
