// swift-tools-version:6.0
import PackageDescription

// No package dependencies: Foundation, Dispatch, Glibc, Synchronization,
// Swift Testing and system C libraries (libpq; for SSO libxml2, OpenSSL's
// libcrypto and zlib) only.
let package = Package(
  name: "Roster",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "roster", targets: ["roster"]),
    .executable(name: "roster-bench", targets: ["RosterBench"]),
  ],
  targets: [
    // MARK: Ground floor: pure logic, no I/O
    .target(name: "JSON"),
    // The stored words (statuses, roles, kinds, templates) every process shares.
    .target(name: "Vocabulary"),
    // Ids and email addresses: what is valid, and S10's comparison key. Pure.
    .target(name: "Addresses"),
    .target(name: "JSONRPC", dependencies: ["Addresses", "JSON"]),
    .target(name: "Crypto", dependencies: ["CCrypto"]),
    .target(name: "Policy", dependencies: ["Addresses", "JSON", "Vocabulary"], resources: [.copy("Resources")]),
    .target(name: "SCIM", dependencies: ["JSON"]),
    // Pure over bytes: parse hostile XML safely, exclusive C14N, verify an enveloped signature (no SAML knowledge).
    .target(name: "XMLSignature", dependencies: ["CLibxml2", "Crypto"]),
    // Pure: AuthnRequests, metadata, and the P2–P6 checks of a Response as a function of bytes, connection and clock.
    .target(name: "SAML", dependencies: ["CZlib", "Crypto", "XMLSignature"]),
    // Pure: ID-token (JWS) validation against a JWKS, discovery documents, PKCE.
    .target(name: "OIDC", dependencies: ["Crypto", "JSON"]),

    // MARK: Transports and system access
    .systemLibrary(name: "CLibpq", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
    .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
    .systemLibrary(name: "CLibxml2", pkgConfig: "libxml-2.0", providers: [.apt(["libxml2-dev"])]),
    .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
    // glibc's mallopt, to bound malloc arenas (Sources/roster/main.swift).
    .systemLibrary(name: "CMalloc"),
    .target(name: "Postgres", dependencies: ["CLibpq", "JSON"]),
    .target(name: "Sockets"),
    .target(name: "DNS"),
    .target(name: "HTTP1", dependencies: ["Sockets"]),
    .target(name: "Mail", dependencies: ["JSON", "Sockets", "Vocabulary"]),
    .target(name: "RPCTransport", dependencies: ["JSON", "JSONRPC", "Sockets"]),

    // MARK: Shared runtime and storage
    .target(name: "RosterRuntime", dependencies: ["CMalloc", "HTTP1", "JSON", "JSONRPC", "Postgres", "RPCTransport", "Sockets"]),
    .target(name: "RosterStore", dependencies: ["Addresses", "JSON", "Policy", "Postgres", "Vocabulary"]),
    // The browser-facing listener and server-rendered pages: HTML escaped by default, forms, strict headers.
    .target(name: "WebPages", dependencies: ["Crypto", "HTTP1", "JSON", "RosterRuntime", "Sockets"]),

    // MARK: Processes
    .target(name: "ServiceKit", dependencies: ["JSON", "JSONRPC", "Postgres", "RosterRuntime", "RosterStore", "Vocabulary"]),
    .target(
      name: "Provisioning", dependencies: ["Crypto", "DNS", "JSON", "JSONRPC", "Policy", "Postgres", "RosterRuntime", "RosterStore", "ServiceKit", "Sockets", "Vocabulary"]),
    .target(
      name: "DirectorySync",
      dependencies: ["Crypto", "HTTP1", "JSON", "JSONRPC", "Policy", "Postgres", "RosterRuntime", "RosterStore", "SCIM", "ServiceKit", "Sockets", "Vocabulary"]),
    .target(
      name: "SSO",
      dependencies: [
        "Crypto", "HTTP1", "JSON", "JSONRPC", "OIDC", "Policy", "Postgres", "Provisioning", "RosterRuntime", "RosterStore", "SAML", "ServiceKit",
        "Sockets", "Vocabulary", "WebPages", "XMLSignature",
      ]),
    // The guided setup (G1–G3): pages for a customer's IT admin, reached by a setup link.
    .target(
      name: "SetupPortal",
      dependencies: [
        "Crypto", "DirectorySync", "HTTP1", "JSON", "JSONRPC", "Postgres", "Provisioning", "RosterRuntime", "RosterStore", "SSO", "ServiceKit",
        "Vocabulary", "WebPages",
      ]),
    .target(name: "Deprovisioning", dependencies: ["JSON", "JSONRPC", "Postgres", "RosterRuntime", "RosterStore", "Vocabulary", "ServiceKit"]),
    .target(name: "Notifications", dependencies: ["JSON", "JSONRPC", "Mail", "Postgres", "RosterRuntime", "RosterStore", "Vocabulary", "ServiceKit"]),
    .target(
      name: "RosterApp",
      dependencies: [
        "Deprovisioning", "DirectorySync", "Notifications", "Policy", "Provisioning", "RosterRuntime", "RosterStore", "SSO", "SetupPortal", "WebPages",
      ]),

    // MARK: The executable
    .executableTarget(name: "roster", dependencies: ["CMalloc", "JSON", "JSONRPC", "Postgres", "RosterApp", "RosterRuntime", "RosterStore", "RPCTransport", "Sockets"]),

    // posix_spawn for the benchmarks and the test fixtures (not the product).
    .target(name: "ProcessSpawn"),
    // Mixed traffic and its after-the-fact checks (roster-bench load, the fault tests).
    .target(name: "LoadDriver", dependencies: ["Crypto", "JSON", "Postgres", "Sockets"]),
    .executableTarget(name: "RosterBench", dependencies: ["Crypto", "JSON", "LoadDriver", "ProcessSpawn", "Postgres", "RosterRuntime", "SAML", "Sockets"]),

    // MARK: Tests
    .target(name: "RosterTestSupport", dependencies: ["JSON", "JSONRPC", "Postgres", "ProcessSpawn", "RosterStore", "Vocabulary", "Sockets", "RosterRuntime", "RosterApp", "Provisioning", "SCIM"], path: "Tests/Support", exclude: ["peers"]),
    .testTarget(name: "JSONTests", dependencies: ["Vocabulary", "JSON"]),
    .testTarget(name: "JSONRPCTests", dependencies: ["Vocabulary", "JSON", "JSONRPC"]),
    .testTarget(name: "PlatformTests", dependencies: ["Vocabulary", "JSON", "JSONRPC", "Postgres", "RosterRuntime", "RosterStore", "RosterTestSupport", "Sockets", "roster"]),
    .testTarget(name: "ReliabilityTests", dependencies: ["Vocabulary", "JSON", "LoadDriver", "Postgres", "RosterTestSupport", "roster"]),
    .testTarget(name: "PolicyTests", dependencies: ["Addresses", "Vocabulary", "Policy", "JSON", "RosterTestSupport"]),
    .testTarget(name: "DNSTests", dependencies: ["Vocabulary", "DNS", "RosterTestSupport"]),
    .testTarget(name: "SCIMTests", dependencies: ["Vocabulary", "SCIM", "JSON"]),
    .testTarget(name: "SSOTests", dependencies: ["Vocabulary", "SSO", "JSON", "RosterTestSupport"]),
    .testTarget(name: "OIDCTests", dependencies: ["Vocabulary", "OIDC", "Crypto", "JSON", "RosterTestSupport"]),
    .testTarget(name: "SAMLTests", dependencies: ["Vocabulary", "SAML", "XMLSignature", "Crypto", "JSON", "RosterTestSupport"]),
    .testTarget(name: "MailTests", dependencies: ["Vocabulary", "Mail", "JSON", "RosterTestSupport", "Sockets"]),
    // The deprovisioning process: policies, jobs, content transfer, kill -9 mid-job.
    .testTarget(
      name: "DeprovisioningServiceTests",
      dependencies: ["JSON", "JSONRPC", "Postgres", "RosterApp", "RosterStore", "RosterTestSupport", "SCIM"]),
    // The notifications process: the outbox, SMTP delivery, templates.
    .testTarget(name: "NotificationServiceTests", dependencies: ["JSON", "JSONRPC", "Mail", "Postgres", "RosterApp", "RosterTestSupport"]),
    .testTarget(
      name: "ProvisioningTests",
      dependencies: [
        "Provisioning", "RosterApp", "JSON", "JSONRPC", "Mail", "Postgres", "RosterStore", "RosterTestSupport", "SCIM", "SetupPortal", "Crypto",
      ]),
  ],
  swiftLanguageModes: [.v6]
)
