import Foundation

/// Parses AMQP URIs (`amqp://user:pass@host:port/vhost?query`) and comma-separated lists of
/// them for a cluster. Pure, so it is unit-tested without a broker.
struct AMQPURLParser {
    struct Result: Equatable {
        var isTLS: Bool
        var user: String?
        var password: String?
        var host: String
        var port: Int
        var vhost: String
        var query: [(String, String)]

        static func == (lhs: Result, rhs: Result) -> Bool {
            lhs.isTLS == rhs.isTLS && lhs.user == rhs.user && lhs.password == rhs.password && lhs.host == rhs.host
                && lhs.port == rhs.port && lhs.vhost == rhs.vhost
                && lhs.query.map(\.0) == rhs.query.map(\.0) && lhs.query.map(\.1) == rhs.query.map(\.1)
        }
    }

    /// Parses one URI or a comma-separated list of endpoints, one ``Result`` per endpoint.
    ///
    /// An entry that starts with `amqp://` or `amqps://` is a whole URI. An entry without a
    /// scheme is a further `host[:port]` of the URI before it, sharing its scheme and
    /// credentials; the last entry of such a run may carry the vhost and query they all share
    /// (`amqp://u:p@h1,h2:5673/vhost?heartbeat=5`). Every endpoint must name the same vhost.
    ///
    /// - Throws: ``AMQPError/Code/invalidURL``; in a list the message names the entry.
    static func parseList(_ text: String) throws(AMQPError) -> [Result] {
        let pieces = text.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard pieces.count > 1 else { return [try parse(text)] }
        // Runs of pieces: a URI with a scheme followed by the bare hosts that share it.
        var runs: [[(index: Int, text: String)]] = []
        for (index, piece) in pieces.enumerated() {
            guard !piece.isEmpty else { throw entryError(index, "is empty") }
            if scheme(of: piece) != nil {
                runs.append([(index, piece)])
            } else if runs.isEmpty || piece.contains("://") {
                throw entryError(index, "\"\(piece)\" must start with amqp:// or amqps://")
            } else {
                runs[runs.count - 1].append((index, piece))
            }
        }
        var results: [Result] = []
        for run in runs {
            results += try expand(run)
        }
        for (index, result) in results.enumerated() where result.vhost != results[0].vhost {
            throw entryError(
                index, "\"\(pieces[index])\" names the vhost \"\(result.vhost)\", but the first entry names \"\(results[0].vhost)\"")
        }
        return results
    }

    /// An ``AMQPError/Code/invalidURL`` error about entry `index` (0-based) of an endpoint list.
    static func entryError(_ index: Int, _ problem: String) -> AMQPError {
        AMQPError(.invalidURL, "endpoint \(index + 1) of the AMQP URL list: \(problem)")
    }

    /// Parses a URI and the bare hosts after it, which take its scheme and credentials and
    /// the vhost and query of the last of them.
    private static func expand(_ run: [(index: Int, text: String)]) throws(AMQPError) -> [Result] {
        let first = run[0]
        func parseEntry(_ index: Int, _ url: String) throws(AMQPError) -> Result {
            do {
                return try parse(url)
            } catch {
                throw entryError(index, "\"\(run.first { $0.index == index }?.text ?? url)\": \(error.message)")
            }
        }
        guard run.count > 1, let scheme = scheme(of: first.text) else { return [try parseEntry(first.index, first.text)] }
        let authority = first.text.dropFirst(scheme.count)
        if authority.contains(where: { $0 == "/" || $0 == "?" }) {
            throw entryError(first.index, "\"\(first.text)\": only the last host of a list may carry the vhost and query")
        }
        let credentials = authority.lastIndex(of: "@").map { authority[...$0] } ?? ""
        let last = run[run.count - 1].text
        let tail = last.firstIndex(where: { $0 == "/" || $0 == "?" }).map { last[$0...] } ?? ""
        var results = [try parseEntry(first.index, first.text + tail)]
        for (offset, entry) in run.enumerated().dropFirst() {
            let isLast = offset == run.count - 1
            let host = isLast ? String(entry.text.dropLast(tail.count)) : entry.text
            if !isLast, host.contains(where: { $0 == "/" || $0 == "?" }) {
                throw entryError(entry.index, "\"\(entry.text)\": only the last host of a list may carry the vhost and query")
            }
            if host.contains("@") {
                throw entryError(entry.index, "\"\(entry.text)\": a host without a scheme takes the credentials of the URI before it")
            }
            results.append(try parseEntry(entry.index, scheme + credentials + host + tail))
        }
        return results
    }

    /// `amqp://` or `amqps://` as written, if `text` starts with one.
    private static func scheme(of text: String) -> String? {
        let lowered = text.lowercased()
        if lowered.hasPrefix("amqps://") { return String(text.prefix(8)) }
        if lowered.hasPrefix("amqp://") { return String(text.prefix(7)) }
        return nil
    }

    static func parse(_ url: String) throws(AMQPError) -> Result {
        var rest = Substring(url)
        let isTLS: Bool
        if rest.lowercased().hasPrefix("amqps://") {
            isTLS = true
            rest = rest.dropFirst(8)
        } else if rest.lowercased().hasPrefix("amqp://") {
            isTLS = false
            rest = rest.dropFirst(7)
        } else {
            throw AMQPError(.invalidURL, "the URL must start with amqp:// or amqps://")
        }

        var queryPart: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            queryPart = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var path: Substring?
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }

        var user: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = try percentDecode(credentials[..<colon])
                password = try percentDecode(credentials[credentials.index(after: colon)...])
            } else {
                user = try percentDecode(credentials)
            }
        }

        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw AMQPError(.invalidURL, "unterminated IPv6 address in the AMQP URL")
            }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw AMQPError(.invalidURL, "unexpected \"\(after)\" after the IPv6 address")
            }
        } else if let colon = rest.firstIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        var port = isTLS ? 5671 : 5672
        if let portText, !portText.isEmpty {
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw AMQPError(.invalidURL, "invalid port \"\(portText)\" in the AMQP URL")
            }
            port = number
        }
        let decodedHost = try percentDecode(host)
        let vhost: String
        if let path, !path.isEmpty {
            vhost = try percentDecode(path)
        } else {
            vhost = "/"
        }

        var query: [(String, String)] = []
        for pair in queryPart.split(separator: "&") where !pair.isEmpty {
            if let equals = pair.firstIndex(of: "=") {
                query.append((try percentDecode(pair[..<equals]), try percentDecode(pair[pair.index(after: equals)...])))
            } else {
                query.append((try percentDecode(pair), ""))
            }
        }
        return Result(
            isTLS: isTLS, user: user, password: password,
            host: decodedHost.isEmpty ? "127.0.0.1" : decodedHost, port: port, vhost: vhost, query: query
        )
    }

    static func percentDecode(_ text: Substring) throws(AMQPError) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    throw AMQPError(.invalidURL, "invalid percent escape in \"\(text)\"")
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
