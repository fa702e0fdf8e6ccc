import Foundation
import Testing

@testable import DemoRunner

@Suite("The demo's CPU time per process")
struct ProcessCPUTests {
    @Test("user + system time from a /proc/<pid>/stat line, whatever the command name holds")
    func statLine() {
        // Fields 14 (utime) and 15 (stime) are 250 and 50 ticks; the name has spaces and a ")".
        let line = "4242 (demo service) x) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 50 0 0 20 0 9 0 1000 1000000 500 18446744073709551615"
        #expect(ProcessCPU.cpuSeconds(statLine: line, ticksPerSecond: 100) == 3.0)
        #expect(ProcessCPU.cpuSeconds(statLine: "4242 (short) S 1 2", ticksPerSecond: 100) == nil)
        #expect(ProcessCPU.cpuSeconds(statLine: "no parenthesis", ticksPerSecond: 100) == nil)
    }

    @Test("this process's own CPU time is read and grows")
    func ownProcess() throws {
        let me = ProcessCPU.Process(name: "test", pid: getpid())
        let before = ProcessCPU([me])
        var sum = 0.0
        for index in 0..<3_000_000 { sum += sqrt(Double(index)) }
        #expect(sum > 0)
        let used = ProcessCPU([me]).used(since: before, processes: [me, ProcessCPU.Process(name: "gone", pid: Int32.max)])
        #expect(used.map(\.process) == [me])
        #expect(try #require(used.first).seconds >= 0)
    }
}
