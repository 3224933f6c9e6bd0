// swift-tools-version:6.0
import PackageDescription

// No package dependencies: Foundation, Dispatch, Glibc, Synchronization,
// Swift Testing and libpq (a system library) only.
let package = Package(
  name: "Roster",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "roster", targets: ["roster"])
  ],
  targets: [
    // MARK: Ground floor: pure logic, no I/O
    .target(name: "JSON"),
    .target(name: "JSONRPC", dependencies: ["JSON"]),

    // MARK: Transports and system access
    .systemLibrary(name: "CLibpq", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
    .target(name: "Postgres", dependencies: ["CLibpq", "JSON"]),
    .target(name: "Sockets"),
    .target(name: "RPCTransport", dependencies: ["JSON", "JSONRPC", "Sockets"]),

    // MARK: Shared runtime and storage
    .target(name: "RosterRuntime", dependencies: ["JSON", "JSONRPC", "Postgres", "RPCTransport", "Sockets"]),
    .target(name: "RosterStore", dependencies: ["JSON", "Postgres"]),

    // MARK: The executable
    .executableTarget(name: "roster", dependencies: ["RosterRuntime", "RosterStore", "RPCTransport", "Postgres"]),
  ],
  swiftLanguageModes: [.v6]
)
