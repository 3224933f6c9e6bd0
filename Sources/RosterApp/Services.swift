import RosterRuntime

/// Wires each process's methods and background work into its host. The
/// executable and the integration tests both start processes through here.
public enum Services {
  public static let processes = ["provisioning", "deprovisioning", "notifications"]

  public static func install(_ process: String, host: ProcessHost) throws {
    switch process {
    case "provisioning", "deprovisioning", "notifications": break
    default: throw StartupError("unknown process '\(process)'")
    }
  }
}
