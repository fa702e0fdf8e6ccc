import ArgumentParser

struct StoreBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "store", abstract: "SQLite event store benchmarks.")
    func run() async throws {}
}
