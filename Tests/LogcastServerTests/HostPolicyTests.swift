import HTTPTypes
import LogcastHub
import LogcastProtocol
import Testing

@testable import LogcastServer

@Suite struct HostPolicyTests {
    let policy = HostPolicy(listenHost: "127.0.0.1", hostName: "Web1.Example.COM.", allowed: ["logs.example.com"])

    @Test func ownNamesAddressesAndLoopbackNamesAreAccepted() {
        for host in [
            "127.0.0.1:8080", "127.0.0.1", "10.0.0.7:80", "[::1]:8080", "[::1]", "[fe80::1]:9", "localhost:8080", "LOCALHOST",
            "localhost.", "app.localhost:8080", "web1.example.com", "WEB1.example.com.:8443", "logs.example.com:443",
        ] {
            #expect(policy.accepts(host), "\(host)")
        }
        #expect(policy.accepts(nil))
    }

    @Test func otherNamesAndMalformedHostsAreRefused() {
        for host in [
            "evil.example:8080", "evil.example", "127.0.0.1.evil.example", "localhost.evil.example", "logs.example.com.evil",
            "", ":8080", "[::1", "[::1]x", "a b", "evil.example:port", "user@127.0.0.1", "web1.example.com/x",
        ] {
            #expect(!policy.accepts(host), "\(host)")
        }
    }

    @Test func starAcceptsAnyName() {
        let any = HostPolicy(listenHost: "127.0.0.1", hostName: nil, allowed: ["*"])
        #expect(any.accepts("evil.example:8080"))
        #expect(HostPolicy.any.accepts("whatever"))
    }

    @Test func theListenNameIsAccepted() {
        let bound = HostPolicy(listenHost: "logs.internal", hostName: "h")
        #expect(bound.accepts("logs.internal:8080"))
        #expect(!bound.accepts("logs.external:8080"))
    }

    @Test func refusalIs421AndNamesTheFlag() {
        let refusal = policy.refusal(for: "Evil.Example:8080")
        #expect(refusal.status == 421)
        #expect(refusal.error.error.contains("Evil.Example:8080"))
        #expect(refusal.error.hint.contains("--allow-host evil.example"))
        let garbage = policy.refusal(for: "a\u{1b}]0;x\u{07}b")
        #expect(!garbage.error.error.contains("\u{1b}"))
        #expect(garbage.error.hint.contains("--allow-host NAME"))
    }

    @Test func hostHeaderNames() {
        #expect(HostPolicy.name(ofHostHeader: "Example.COM:80") == "example.com")
        #expect(HostPolicy.name(ofHostHeader: "[::1]:8080") == "::1")
        #expect(HostPolicy.name(ofHostHeader: "example.com..") == "example.com")
        #expect(HostPolicy.name(ofHostHeader: "http://example.com") == nil)
    }
}
