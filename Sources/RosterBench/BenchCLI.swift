import Foundation

enum BenchCLI {
  static let usage = """
    roster-bench — benchmarks; each prints a Markdown table

      roster-bench rpc SOCKET [SECONDS]     system.health vs an echo-server baseline
      roster-bench seed-signin CONNINFO     seed 100,000 members in 1,000 workspaces
      roster-bench signin SOCKET [SECONDS]  auth.signIn decisions/s and latency
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
