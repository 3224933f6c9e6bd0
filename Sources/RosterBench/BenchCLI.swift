import Foundation

enum BenchCLI {
  static let usage = """
    roster-bench — benchmarks; each prints a Markdown table

      roster-bench rpc SOCKET [SECONDS]     system.health vs an echo-server baseline
      roster-bench seed-signin CONNINFO     seed 100,000 members in 1,000 workspaces
      roster-bench signin SOCKET [SECONDS]  auth.signIn decisions/s and latency
      roster-bench scim-create CONNINFO RPC_SOCKET SCIM_SOCKET SCIM2_SERVER_PORT|- [SECONDS]
      roster-bench scim-lookup CONNINFO RPC_SOCKET SCIM_SOCKET SIZE[,SIZE…] [SECONDS]
      roster-bench scim-patch CONNINFO RPC_SOCKET SCIM_SOCKET [MEMBERS]
      roster-bench deprov CONNINFO PROV_SOCKET DEPROV_SOCKET SCIM_SOCKET [ITEMS] [SAMPLES]
      roster-bench outbox CONNINFO NOTIFICATIONS_SOCKET [COUNT]
      roster-bench sso CONNINFO PROV_SOCKET WEB_SOCKET PYTHON REPO_DIR [SECONDS]
      roster-bench events PROV_SOCKET SCIM_SOCKET [SAMPLES] [SECONDS]
      roster-bench load CONNINFO RUN_DIR[,RUN_DIR…] [SECONDS] [CLIENTS] [MAIL_DIR] [SAML_IDP_PORT OIDC_PORT PUBLIC_URL]
                                            mixed traffic on every copy, then every accepted change checked
      roster-bench targets CONNINFO RUN_DIR SCIM2_SERVER_PORT|- [SECONDS]
                                            #17's targets side by side (processes write RUN_DIR/NAME.pid)
      roster-bench echo-server PATH         (internal) the baseline server
    """

  static func run(_ args: [String]) -> Int32 {
    do {
      switch args.first {
      case "rpc" where args.count >= 2:
        try RPCBench.run(socket: args[1], seconds: Double(args.count > 2 ? args[2] : "5") ?? 5)
      case "seed-signin" where args.count == 2:
        try SignInBench.seed(conninfo: args[1])
      case "signin" where args.count >= 2:
        try SignInBench.run(socket: args[1], seconds: Double(args.count > 2 ? args[2] : "5") ?? 5)
      case "scim-create" where args.count >= 5:
        try SCIMBench.create(
          conninfo: args[1], rpcSocket: args[2], scimSocket: args[3], scim2ServerPort: UInt16(args[4]),
          seconds: Double(args.count > 5 ? args[5] : "5") ?? 5)
      case "scim-lookup" where args.count >= 5:
        try SCIMBench.lookup(
          conninfo: args[1], rpcSocket: args[2], scimSocket: args[3], sizes: args[4].split(separator: ",").compactMap { Int($0) },
          seconds: Double(args.count > 5 ? args[5] : "5") ?? 5)
      case "scim-patch" where args.count >= 4:
        try SCIMBench.bigPatch(conninfo: args[1], rpcSocket: args[2], scimSocket: args[3], members: Int(args.count > 4 ? args[4] : "10000") ?? 10_000)
      case "deprov" where args.count >= 5:
        try JobBench.deprovisioning(
          conninfo: args[1], provisioning: args[2], deprovisioning: args[3], scim: args[4], items: Int(args.count > 5 ? args[5] : "100000") ?? 100_000,
          samples: Int(args.count > 6 ? args[6] : "200") ?? 200)
      case "outbox" where args.count >= 3:
        try JobBench.outbox(conninfo: args[1], notifications: args[2], count: Int(args.count > 3 ? args[3] : "2000") ?? 2000)
      case "sso" where args.count >= 6:
        try SSOBench.run(
          conninfo: args[1], provisioning: args[2], web: args[3], python: args[4], repo: args[5], seconds: Double(args.count > 6 ? args[6] : "5") ?? 5)
      case "events" where args.count >= 3:
        try EventsBench.run(
          rpcSocket: args[1], scimSocket: args[2], samples: Int(args.count > 3 ? args[3] : "200") ?? 200,
          seconds: Double(args.count > 4 ? args[4] : "5") ?? 5)
      case "load" where args.count >= 3:
        try LoadBench.run(
          conninfo: args[1], runDirs: args[2].split(separator: ",").map(String.init), seconds: Double(args.count > 3 ? args[3] : "60") ?? 60,
          clients: Int(args.count > 4 ? args[4] : "16") ?? 16, mailDir: args.count > 5 ? args[5] : nil,
          sso: args.count > 8 ? (UInt16(args[6]) ?? 0, UInt16(args[7]) ?? 0, args[8]) : nil)
      case "targets" where args.count >= 4:
        try TargetsBench.run(
          conninfo: args[1], runDir: args[2], scim2ServerPort: UInt16(args[3]), seconds: Double(args.count > 4 ? args[4] : "5") ?? 5)
      case "echo-server" where args.count == 2:
        try RPCBench.echoServer(path: args[1])
      default:
        print(usage)
        return 2
      }
      return 0
    } catch {
      FileHandle.standardError.write(Data("roster-bench: \(error)\n".utf8))
      return 1
    }
  }
}
