import Foundation
import HTTPTypes
import LogcastHub
import LogcastProtocol
import Testing

@testable import LogcastServer

@Suite struct AccessPolicyTests {
    let policy = AccessPolicy(tokens: TokenStore(tokens: ["s3cret-token", "second"]), allowedOrigins: ["https://Logs.Example.com:443/"])

    private func status(_ request: AccessRequest, _ policy: AccessPolicy? = nil) -> Int? {
        switch (policy ?? self.policy).check(request) {
        case .success: nil
        case .failure(let refusal): refusal.status.code
        }
    }

    @Test func crossOriginReadingIsGrantedToTheAllowedOriginsOnly() {
        // Browsers serialise origins in lower case without default ports; any spelling of the allowed one is granted as sent.
        #expect(policy.crossOriginGrant(for: "https://logs.example.com") == "https://logs.example.com")
        #expect(policy.crossOriginGrant(for: "HTTPS://LOGS.example.com:443") == "HTTPS://LOGS.example.com:443")
        for other in [
            nil, "", "null", "http://logs.example.com", "https://logs.example.com:8443", "https://logs.example.com.evil.example",
            "https://evil.example", "wss://logs.example.com", "https://user@logs.example.com",
        ] {
            #expect(policy.crossOriginGrant(for: other) == nil, "\(other ?? "no origin")")
        }
        #expect(AccessPolicy().crossOriginGrant(for: "https://logs.example.com") == nil)
        let anyone = AccessPolicy(allowedOrigins: ["*"])
        #expect(anyone.crossOriginGrant(for: "http://10.0.0.1:8000") == "http://10.0.0.1:8000")
        #expect(anyone.crossOriginGrant(for: "null") == nil)
    }

    @Test func bearerHeaderIsAccepted() {
        #expect(status(AccessRequest(authorization: "Bearer s3cret-token")) == nil)
        #expect(status(AccessRequest(authorization: "bearer second")) == nil)
    }

    @Test func missingOrWrongTokensAre401WithChallenge() throws {
        for request in [
            AccessRequest(), AccessRequest(authorization: "Bearer nope"), AccessRequest(authorization: "Bearer s3cret-toke"),
            AccessRequest(authorization: "Basic dXNlcjpwYXNz"),
        ] {
            guard case .failure(let refusal) = policy.check(request) else {
                Issue.record("accepted \(request)")
                continue
            }
            #expect(refusal.status == 401)
            #expect(refusal.headers[.wwwAuthenticate]?.hasPrefix("Bearer realm=\"logcast\"") == true)
        }
        guard case .failure(let missing) = policy.check(AccessRequest()) else { return }
        #expect(missing.error.error == "token required")
        #expect(!missing.error.hint.contains("s3cret"))
    }

    @Test func tokenInTheQueryStringIsRefusedAndSaysWhy() {
        guard case .failure(let refusal) = policy.check(AccessRequest(queryKeys: ["grep", "token"])) else {
            Issue.record("accepted a token in the URL")
            return
        }
        #expect(refusal.status == 401)
        #expect(refusal.error.error.contains("not accepted"))
    }

    @Test func tokenSubprotocolIsAcceptedAndV1Selected() {
        let carrier = AccessPolicy.tokenSubprotocolPrefix + Base64URL.encode(Array("s3cret-token".utf8))
        let request = AccessRequest(webSocketProtocols: ["logcast.v1", carrier])
        #expect(policy.check(request) == .success("logcast.v1"))
        let wrong = AccessRequest(webSocketProtocols: ["logcast.v1", AccessPolicy.tokenSubprotocolPrefix + Base64URL.encode(Array("x".utf8))])
        #expect(status(wrong) == 401)
        #expect(status(AccessRequest(webSocketProtocols: ["logcast.v1", "logcast.token.***"])) == 401)
    }

    @Test func withoutTokensEveryoneWithoutOriginPasses() {
        let open = AccessPolicy()
        #expect(open.check(AccessRequest()) == .success(nil))
        #expect(open.check(AccessRequest(webSocketProtocols: ["logcast.v1"])) == .success("logcast.v1"))
    }

    @Test func ownOriginAllowedOthersForbidden() {
        let open = AccessPolicy()
        #expect(status(AccessRequest(origin: "http://127.0.0.1:8080", host: "127.0.0.1:8080"), open) == nil)
        #expect(status(AccessRequest(origin: "https://logs.example.com", host: "logs.example.com"), open) == nil, "TLS ended at a proxy")
        #expect(status(AccessRequest(origin: "http://LOGS.example.com:80", host: "logs.example.com"), open) == nil)
        #expect(status(AccessRequest(origin: "http://evil.example", host: "127.0.0.1:8080"), open) == 403)
        #expect(status(AccessRequest(origin: "http://127.0.0.1:9999", host: "127.0.0.1:8080"), open) == 403)
        #expect(status(AccessRequest(origin: "null", host: "127.0.0.1:8080"), open) == 403)
        #expect(status(AccessRequest(origin: "http://127.0.0.1:8080"), open) == 403, "no Host to compare with")
    }

    @Test func allowedOriginsAreNormalised() {
        #expect(status(AccessRequest(authorization: "Bearer second", origin: "https://logs.example.com", host: "other:1")) == nil)
        #expect(status(AccessRequest(authorization: "Bearer second", origin: "http://logs.example.com", host: "other:1")) == 403)
        #expect(AccessPolicy(allowedOrigins: ["*"]).check(AccessRequest(origin: "http://anything", host: "x")) == .success(nil))
    }

    @Test func originIsCheckedBeforeTheToken() {
        // A cross-site page learns nothing, not even whether a token is needed.
        #expect(status(AccessRequest(origin: "http://evil.example", host: "127.0.0.1:8080")) == 403)
    }

    @Test(arguments: ["ftp://x", "http://", "http://a/b", "http://user@host", "javascript:alert(1)", "null"])
    func malformedOriginsDoNotNormalise(_ origin: String) {
        #expect(AccessPolicy.normalizedOrigin(origin) == nil)
    }

    @Test func subprotocolHeaderValuesAreSplit() {
        #expect(
            AccessRequest.protocols(fromHeaderValues: ["logcast.v1, logcast.token.YQ", " other "]) == ["logcast.v1", "logcast.token.YQ", "other"]
        )
    }
}

@Suite struct TokenStoreTests {
    static func same(_ a: [UInt8], _ b: [UInt8]) -> Bool { TokenStore.constantTimeEqual(TokenStore.slot(a), TokenStore.slot(b)) }

    @Test func constantTimeEqualityIsExact() {
        #expect(Self.same(Array("abc".utf8), Array("abc".utf8)))
        #expect(!Self.same(Array("abc".utf8), Array("abd".utf8)))
        #expect(!Self.same(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!Self.same([], Array("a".utf8)))
        // Zero bytes after a token are not padding: the lengths differ.
        for extra in [1, 255, 256, 257, 511] {
            #expect(!Self.same(Array("a".utf8), Array("a".utf8) + [UInt8](repeating: 0, count: extra)), "\(extra)")
        }
    }

    /// Every comparison covers the same bytes: a slot does not depend on
    /// the token's length in size, and a candidate past the limit matches
    /// no token, even one that is its prefix.
    @Test func slotsHaveOneSizeAndLongCandidatesMatchNothing() {
        let longest = [UInt8](repeating: UInt8(ascii: "k"), count: TokenStore.maxTokenBytes)
        for token in [[], Array("a".utf8), longest, longest + [1], longest + longest] {
            #expect(TokenStore.slot(token).count == 2 + TokenStore.maxTokenBytes)
        }
        let store = TokenStore(tokens: [String(decoding: longest, as: UTF8.self), "short"])
        #expect(store.accepts(longest))
        #expect(store.accepts(Array("short".utf8)))
        #expect(!store.accepts(longest + Array("k".utf8)))
        #expect(!store.accepts(longest + longest))
        #expect(!store.accepts(Array("shor".utf8)))
        #expect(!store.accepts([]))
    }

    @Test func aTokenOverTheLimitStopsTheLoad() throws {
        let path = NSTemporaryDirectory() + "tokens-\(UUID().uuidString)"
        try ("ok\n" + String(repeating: "x", count: TokenStore.maxTokenBytes + 1) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect {
            try TokenStore(path: path)
        } throws: { error in
            "\(error)".contains("line 2: a token is at most \(TokenStore.maxTokenBytes) bytes")
        }
    }

    @Test func fileWithCommentsBlankLinesAndCRLF() throws {
        let path = NSTemporaryDirectory() + "tokens-\(UUID().uuidString)"
        try "# ops team\n\n  alpha-token  \r\nbeta\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try TokenStore(path: path)
        #expect(store.count == 2)
        #expect(store.accepts(Array("alpha-token".utf8)))
        #expect(store.accepts(Array("beta".utf8)))
        #expect(!store.accepts(Array("# ops team".utf8)))
    }

    @Test func reloadKeepsOldTokensWhenTheNewFileIsBad() throws {
        let path = NSTemporaryDirectory() + "tokens-\(UUID().uuidString)"
        try "old\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try TokenStore(path: path)
        try "# nothing\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: TokenFileError.self) { try store.reload() }
        #expect(store.accepts(Array("old".utf8)))
        try "new\n".write(toFile: path, atomically: true, encoding: .utf8)
        try store.reload()
        #expect(store.accepts(Array("new".utf8)) && !store.accepts(Array("old".utf8)))
    }

    @Test func badFilesSayWhatIsWrong() throws {
        let missing = NSTemporaryDirectory() + "absent-\(UUID().uuidString)"
        #expect(throws: TokenFileError.self) { try TokenStore(path: missing) }
        do {
            _ = try TokenStore(path: missing)
        } catch {
            #expect(error.description.contains("does not exist"))
        }
        let spaced = NSTemporaryDirectory() + "tokens-\(UUID().uuidString)"
        try "two words\n".write(toFile: spaced, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: spaced) }
        do {
            _ = try TokenStore(path: spaced)
            Issue.record("accepted a token with a space")
        } catch {
            #expect(error.description.contains("line 1"))
        }
    }
}

@Suite struct Base64URLTests {
    @Test(arguments: ["", "a", "ab", "abc", "s3cret-token", "ÿ\u{0}binary?>"])
    func roundTrips(_ text: String) {
        let encoded = Base64URL.encode(Array(text.utf8))
        #expect(!encoded.contains("=") && !encoded.contains("+") && !encoded.contains("/"))
        if !text.isEmpty { #expect(Base64URL.decode(encoded) == Array(text.utf8)) }
    }

    @Test(arguments: ["", "a", "ab+c", "ab/c", "abc=", "***"])
    func rejectsWhatIsNotBase64URL(_ text: String) {
        #expect(Base64URL.decode(text) == nil)
    }
}

@Suite struct RateLimiterTests {
    @Test func allowsABurstThenTheRate() {
        var limiter = RateLimiter(perSecond: 2, burst: 3)
        let start = ContinuousClock.now
        func allowed(after milliseconds: Int) -> Bool {
            limiter.allow(at: start + .milliseconds(milliseconds))
        }
        #expect([allowed(after: 0), allowed(after: 0), allowed(after: 0), allowed(after: 0)] == [true, true, true, false])
        #expect(!allowed(after: 400))
        #expect(allowed(after: 500))
        #expect(!allowed(after: 600))
        // A long pause refills to the burst, never beyond.
        #expect([allowed(after: 60_000), allowed(after: 60_000), allowed(after: 60_000), allowed(after: 60_000)] == [true, true, true, false])
    }
}
