import Deprovisioning
import DirectorySync
import Notifications
import Policy
import Provisioning
import RosterRuntime
import SSO
import SetupPortal
import WebPages

/// What the provisioning process runs.
public struct ProvisioningParts: Sendable {
  public let provisioning: ProvisioningService
  public let directory: DirectoryService
  public let sso: SSOService
  /// The browser-facing listener (`/sso/…`, `/setup/…`).
  public let web: WebServer
  public let setup: SetupPortal
}

/// Wires each process's methods and background work into its host. The
/// executable and the integration tests both start processes through here.
public enum Services {
  public static let processes = ["provisioning", "deprovisioning", "notifications"]

  public struct Options: Sendable {
    /// Seconds between background passes (0 disables them, for tests that drive them by hand).
    public var domainRecheckInterval: Double = 5
    public var deprovisioning = DeprovisioningService.Options()
    public var notifications = NotificationsService.Options()
    public init() {}
  }

  /// Which process serves which methods (besides rpc.* and system.*, which
  /// all do) — for a method_not_found that names the right socket. A test
  /// checks this against what each process registers.
  public static let methodsByProcess: [String: Set<String>] = [
    "provisioning": [
      "audit.list", "auth.signIn", "directory.disable", "directory.enable", "directory.get", "directory.rotateToken", "domain.add", "domain.check",
      "domain.confirm", "domain.list", "domain.listPending", "domain.remove", "events.list", "events.subscribe", "group.list", "group.mapRole", "group.mapRoles",
      "member.add", "member.get", "member.list", "member.setRole", "scim.request", "setup.createLink", "setup.listLinks", "setup.revokeLinks",
      "sso.authorize", "sso.configure", "sso.get", "sso.token", "sso.traces", "sso.update", "workspace.create", "workspace.find",
      "workspace.get", "workspace.setPlan",
    ],
    "deprovisioning": [
      "content.create", "content.list", "content.moveToWorkspace", "deprovision.configure", "deprovision.get", "deprovision.member", "folder.list",
      "job.get", "job.list", "job.retry",
    ],
    "notifications": [
      "notification.cancel", "notification.enqueue", "notification.get", "notification.list", "notification.preview", "notification.retry",
    ],
  ]

  public static func process(serving method: String) -> String? {
    methodsByProcess.first { $0.value.contains(method) }?.key
  }

  @discardableResult
  public static func install(_ process: String, host: ProcessHost, options: Options = Options()) throws -> (any Sendable)? {
    // Before anything binds a socket in it (SCIM binds before the RPC socket).
    try host.config.prepareRunDir()
    host.dispatcher.setMethodLocator { [config = host.config] method in
      guard let home = Services.process(serving: method), home != process else { return nil }
      return "\(home).sock (\(config.socketPath(home)))"
    }
    switch process {
    case "provisioning":
      guard let dir = DomainLists.locate() else {
        throw StartupError("cannot find the domain lists (Roster_Policy.resources); set ROSTER_DATA_DIR")
      }
      let lists = try DomainLists.load(from: dir)
      let service = ProvisioningService(host: host, lists: lists)
      service.install(recheckInterval: options.domainRecheckInterval)
      let directory = DirectoryService(host: host)
      try directory.install()
      try directory.serveHTTP()
      let sso = SSOService(host: host, provisioning: service)
      sso.install()
      let web = WebServer(logger: host.logger)
      sso.addRoutes(to: web)
      let setup = SetupPortal(host: host, sso: sso)
      setup.install(web: web)
      let server = try web.serve(host.config.webListen, maxConnections: host.config.maxConnections, requestTimeoutSeconds: host.config.requestTimeoutSeconds)
      host.onStop("web listener") { server.stop() }
      return ProvisioningParts(provisioning: service, directory: directory, sso: sso, web: web, setup: setup)
    case "deprovisioning":
      let service = DeprovisioningService(host: host, options: options.deprovisioning)
      service.install()
      return service
    case "notifications":
      let service = NotificationsService(host: host, options: options.notifications)
      service.install()
      return service
    default:
      throw StartupError("unknown process '\(process)'")
    }
  }
}
