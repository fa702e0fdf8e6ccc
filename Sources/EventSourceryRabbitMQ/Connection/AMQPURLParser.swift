/// Parses AMQP URIs (`amqp://user:pass@host:port/vhost?query`). Pure, so it is unit-tested
/// without a broker.
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
