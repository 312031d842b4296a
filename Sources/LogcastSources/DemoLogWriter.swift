import Foundation
import LogcastHub
import LogcastProtocol
import ServiceLifecycle

/// Writes a realistic, mixed-level application log into a file, rotating it
/// now and then, so that `logcast serve --demo` shows the viewer working at
/// once (and exercises the real file-following path, rotation included).
public struct DemoLogWriter: Service {
    public let path: String
    /// Lines per second, on average.
    public var rate: Double = 3
    /// Lines written before the file is rotated (renamed to `PATH.1`).
    public var rotateEvery = 400

    public init(path: String) {
        self.path = path
    }

    public func run() async throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        try await cancelWhenGracefulShutdown {
            var written = 0
            var generator = SystemRandomNumberGenerator()
            while !Task.isCancelled {
                // Cancelled while asleep is the graceful shutdown: the writer ends, it does not fail.
                let pause = Duration.milliseconds(Int(1000 / rate * Double.random(in: 0.2...1.8, using: &generator)))
                guard (try? await Task.sleep(for: pause)) != nil else { break }
                let burst = Int.random(in: 0..<20, using: &generator) == 0 ? Int.random(in: 3...12, using: &generator) : 1
                var text = ""
                for _ in 0..<burst { text += Self.line(using: &generator) + "\n" }
                append(text)
                written += burst
                if written >= rotateEvery {
                    written = 0
                    _ = rename(path, path + ".1")
                    _ = FileManager.default.createFile(atPath: path, contents: nil)
                }
            }
        }
    }

    private func append(_ text: String) {
        guard let handle = FileHandle(forWritingAtPath: path) else { return }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: Data(text.utf8))
    }

    static func line(using generator: inout some RandomNumberGenerator) -> String {
        let stamp = ISO8601DateFormatter().string(from: Date())
        let routes = ["/api/orders", "/api/users/42", "/healthz", "/api/cart", "/login", "/static/app.js"]
        let route = routes.randomElement(using: &generator)!
        let ms = Int.random(in: 2...900, using: &generator)
        switch Int.random(in: 0..<100, using: &generator) {
        case 0..<55:
            return "\(stamp) INFO  http: GET \(route) 200 \(ms)ms"
        case 55..<70:
            return "\(stamp) DEBUG db: query orders took \(ms / 10)ms rows=\(Int.random(in: 0...80, using: &generator))"
        case 70..<82:
            return "\(stamp) WARN  http: slow request GET \(route) \(ms * 5)ms"
        case 82..<90:
            return "\(stamp) NOTICE auth: user \(Int.random(in: 1...999, using: &generator)) logged in"
        case 90..<97:
            return "\(stamp) ERROR payments: upstream timeout after 3000ms (attempt \(Int.random(in: 1...3, using: &generator))/3)"
        default:
            return "\(stamp) CRIT  worker: queue consumer crashed: \u{1B}[31mconnection reset by peer\u{1B}[0m"
        }
    }
}
