import Foundation
import JSON
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Where the load goes: the sockets of every copy of each process.
public struct LoadTargets: Sendable {
  public var provisioning: [String]
  public var scim: [String]
  public var deprovisioning: [String]
  public var notifications: [String]
  /// The browser-facing listeners (`/sso/…`) of the provisioning copies.
  public var web: [String]

  public init(provisioning: [String], scim: [String], deprovisioning: [String], notifications: [String], web: [String] = []) {
    self.provisioning = provisioning
    self.scim = scim
    self.deprovisioning = deprovisioning
    self.notifications = notifications
    self.web = web
  }

  /// One copy of each in a run directory laid out as `roster` lays it out.
  public static func runDirectories(_ dirs: [String]) -> LoadTargets {
    LoadTargets(
      provisioning: dirs.map { $0 + "/provisioning.sock" }, scim: dirs.map { $0 + "/scim.sock" },
      deprovisioning: dirs.map { $0 + "/deprovisioning.sock" }, notifications: dirs.map { $0 + "/notifications.sock" },
      web: dirs.map { $0 + "/web.sock" })
  }
}

/// The workspace the load runs in, made through the public methods.
public struct LoadWorkspace: Sendable {
  public let id: String
  public let ownerId: String
  public let ownerEmail: String
  public let targetId: String
  public let token: String
  public let domain: String
  /// With SSO peers: SAML on this workspace, OIDC on a second one.
  public let sso: SSOWorkspaces?

  /// An Enterprise workspace with Directory Sync on and removal set to
  /// "delete, transfer content to a Creator" (so deactivations make jobs,
  /// transfers and summary emails). With `sso`, its domain is verified by
  /// email and it signs in through the SAML peer; a second workspace signs in
  /// through the OIDC peer.
  public static func create(_ targets: LoadTargets, tag: String, sso peers: SSOPeers? = nil) throws -> LoadWorkspace {
    let rpc = RPCClient(paths: targets.provisioning)
    let domain = "\(tag).load.test"
    let owner = "owner@\(domain)"
    let w = try rpc.call("workspace.create", ["name": .string("Load \(tag)"), "plan": "enterprise", "owner": ["email": .string(owner), "name": "Owner"]])
      .value("workspace.create")
    let wid = w["workspaceId"]!.stringValue!
    let ownerId = w["ownerMemberId"]!.stringValue!
    let actor: JSONValue = ["memberId": .string(ownerId)]
    var sso: SSOWorkspaces?
    if let peers {
      let connection = try SSOWorkspaces.configureSAML(rpc, peers, workspaceId: wid, domain: domain, actor: actor)
      let o = try SSOWorkspaces.configureOIDC(rpc, peers, tag: tag)
      sso = SSOWorkspaces(
        peers: peers, samlConnectionId: connection, oidcWorkspaceId: o.workspaceId, oidcOwnerEmail: o.owner, oidcDomain: o.domain, oidcClientSecret: o.secret)
    }
    let token = try rpc.call("directory.enable", ["workspaceId": .string(wid), "actor": actor]).value("directory.enable")["bearerToken"]!.stringValue!
    let target = try rpc.call(
      "member.add", ["workspaceId": .string(wid), "email": .string("target@\(domain)"), "name": "Target", "role": "creator", "actor": actor]
    ).value("member.add")["memberId"]!.stringValue!
    let deprov = RPCClient(paths: targets.deprovisioning)
    _ = try deprov.call(
      "deprovision.configure",
      ["workspaceId": .string(wid), "mode": "delete", "content": "transfer", "targetMemberId": .string(target), "actor": actor]
    ).value("deprovision.configure")
    return LoadWorkspace(id: wid, ownerId: ownerId, ownerEmail: owner, targetId: target, token: token, domain: domain, sso: sso)
  }
}

extension CallOutcome {
  /// The result, or an error naming what happened.
  public func value(_ what: String) throws -> JSONValue {
    switch self {
    case .ok(let v): return v
    case .refused(let code, let reason, let message): throw LoadError("\(what): \(code) \(reason): \(message)")
    case .unavailable(let why): throw LoadError("\(what): unavailable (\(why))")
    }
  }
}

public struct LoadError: Error, CustomStringConvertible {
  public let description: String
  public init(_ d: String) { description = d }
}

/// What one client knows it did to one user: the last state a write of it
/// was accepted with.
public struct UserRecord: Sendable {
  public var id: String
  public var userName: String
  public var displayName: String
  public var active: Bool
  /// Content items created for the user: at least / at most (a create whose
  /// answer was lost may or may not have happened).
  public var contentMin = 0
  public var contentMax = 0
}

/// Latencies of one operation, and how it went.
public struct OpStats: Sendable {
  public var latenciesMs: [Double] = []
  public var errors = 0
  /// Attempts that found the process or database away and were retried.
  public var unavailable = 0

  public func percentile(_ p: Double) -> Double {
    guard !latenciesMs.isEmpty else { return .nan }
    let sorted = latenciesMs.sorted()
    return sorted[min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))]
  }

  mutating func merge(_ o: OpStats) {
    latenciesMs += o.latenciesMs
    errors += o.errors
    unavailable += o.unavailable
  }
}

/// Sixteen (or any number of) closed-loop clients of mixed traffic: SCIM
/// creates, lookups, PATCHes and deactivations, `auth.signIn`, RPC reads,
/// content for the users about to leave, and emails. Each client keeps a
/// ledger of what was accepted, for `LoadVerifier`. When a process or the
/// database is away, a client retries the same operation (on the next copy)
/// for up to `patienceSeconds`, like an IdP or the app would.
public final class MixedLoad: @unchecked Sendable {
  public struct Options: Sendable {
    public var clients = 16
    public var patienceSeconds: Double = 120
    /// Emails sent through notification.enqueue go to this domain.
    public var mailDomain = "sink.load.test"
    public init() {}
  }

  public static let operations = [
    "scim.create", "scim.lookup", "scim.patch", "scim.deactivate", "auth.signIn", "sso.saml", "sso.oidc", "sso.token", "rpc.read", "content.create",
    "notification.enqueue",
  ]

  final class Client: @unchecked Sendable {
    var users: [UserRecord] = []
    var stats: [String: OpStats] = [:]
    var errorSamples: [String] = []
    var notifications: [String] = []
    /// Enqueues whose answer was lost (each may or may not have queued an email).
    var notificationsInDoubt = 0
    /// The longest a request of this client waited through unavailability (s).
    var longestOutage: Double = 0
    /// Operations finished in each minute of the run (a soak must not slow down).
    var perMinute: [Int] = []
    var rng: SystemRandomNumberGenerator = .init()
    /// What this client's SSO sign-ins came to.
    var sso = SSOTally()
  }

  public let targets: LoadTargets
  public let workspace: LoadWorkspace
  public let options: Options
  let stopping = Atomic<Bool>(false)
  let group = DispatchGroup()
  var clients: [Client] = []
  var started = 0.0
  public private(set) var elapsed = 0.0

  public init(targets: LoadTargets, workspace: LoadWorkspace, options: Options = .init()) {
    self.targets = targets
    self.workspace = workspace
    self.options = options
  }

  static func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
  }

  public func start() {
    started = Self.now()
    for i in 0..<options.clients {
      let c = Client()
      clients.append(c)
      group.enter()
      let t = Thread { [self] in
        self.loop(c, index: i)
        self.group.leave()
      }
      t.stackSize = 1 << 20
      t.start()
    }
  }

  /// Stops the clients (each finishes the operation it is in) and returns the report.
  public func finish() -> LoadReport {
    stopping.store(true, ordering: .relaxed)
    group.wait()
    elapsed = Self.now() - started
    var stats: [String: OpStats] = [:]
    var samples: [String] = []
    var perMinute: [Int] = []
    for c in clients {
      for (i, n) in c.perMinute.enumerated() {
        while perMinute.count <= i { perMinute.append(0) }
        perMinute[i] += n
      }
      for (k, v) in c.stats { stats[k, default: OpStats()].merge(v) }
      samples += c.errorSamples
    }
    return LoadReport(
      seconds: elapsed, stats: stats, errorSamples: Array(samples.prefix(20)), users: clients.flatMap(\.users),
      notifications: clients.flatMap(\.notifications), notificationsInDoubt: clients.reduce(0) { $0 + $1.notificationsInDoubt },
      longestOutage: clients.map(\.longestOutage).max() ?? 0, mailDomain: options.mailDomain, perMinute: perMinute,
      sso: clients.reduce(into: SSOTally()) { $0.merge($1.sso) })
  }

  public func run(seconds: Double) -> LoadReport {
    start()
    usleep(UInt32(seconds * 1_000_000))
    return finish()
  }

  /// Runs `attempt` until it gives a definite answer or patience runs out;
  /// records latency (of the whole, retries included) and unavailability.
  func measured<T>(_ c: Client, _ op: String, _ attempt: () -> Result<T, Unavailable>, onRetry: () -> Void = {}) -> T? {
    let t0 = Self.now()
    var outageStart: Double?
    while true {
      switch attempt() {
      case .success(let v):
        let t1 = Self.now()
        if let s = outageStart { c.longestOutage = max(c.longestOutage, t1 - s) }
        c.stats[op, default: OpStats()].latenciesMs.append((t1 - t0) * 1000)
        let minute = Int((t1 - started) / 60)
        while c.perMinute.count <= minute { c.perMinute.append(0) }
        c.perMinute[minute] += 1
        return v
      case .failure(let u):
        c.stats[op, default: OpStats()].unavailable += 1
        onRetry()
        let t = Self.now()
        if outageStart == nil { outageStart = t }
        if t - t0 > options.patienceSeconds {
          error(c, op, "still unavailable after \(Int(options.patienceSeconds)) s: \(u.why)")
          return nil
        }
        usleep(50_000)
      }
    }
  }

  struct Unavailable: Error { let why: String }

  func error(_ c: Client, _ op: String, _ text: String) {
    c.stats[op, default: OpStats()].errors += 1
    if c.errorSamples.count < 5 { c.errorSamples.append("\(op): \(text)") }
  }

  static func userBody(_ email: String, display: String, active: Bool = true) -> JSONValue {
    [
      "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": .string(email),
      "name": ["givenName": "Load", "familyName": .string(display)], "emails": [["primary": true, "value": .string(email), "type": "work"]],
      "displayName": .string(display), "active": .bool(active),
    ]
  }

  static func q(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! }

  func loop(_ c: Client, index: Int) {
    let rpc = RPCClient(paths: targets.provisioning, start: index)
    let deprov = RPCClient(paths: targets.deprovisioning, start: index)
    let mail = RPCClient(paths: targets.notifications, start: index)
    let scim = HTTPPool(paths: targets.scim, token: workspace.token, start: index)
    // With two copies every sign-in crosses them, as behind a load balancer:
    // sso.authorize and sso.token on this client's copy, the ACS or callback
    // on the next, a replay back on the first (P4 across copies).
    let web = HTTPPool(paths: targets.web, token: nil, start: index + 1)
    let replayWeb = HTTPPool(paths: targets.web, token: nil, start: index)
    let samlIdP = workspace.sso.map { PeerHTTP(port: $0.peers.samlIdPPort) }
    let oidcProvider = workspace.sso.map { PeerHTTP(port: $0.peers.oidcProviderPort) }
    var serial = 0
    while !stopping.load(ordering: .relaxed) {
      let active = c.users.indices.filter { c.users[$0].active }
      let roll = Int.random(in: 0..<100, using: &c.rng)
      if active.count < 3 || roll < 18 {
        serial += 1
        create(c, scim, email: "u\(index)-\(serial)@\(workspace.domain)")
      } else if roll < 40 {
        lookup(c, scim, c.users.randomElement(using: &c.rng)!)
      } else if roll < 58 {
        patch(c, scim, active.randomElement(using: &c.rng)!)
      } else if roll < 63 {
        deactivate(c, scim, deprov, active.randomElement(using: &c.rng)!)
      } else if roll < 83 {
        if let sso = workspace.sso, roll >= 75, let samlIdP, let oidcProvider {
          // SSO sign-ins: SAML 5%, OIDC 3% (of all operations).
          if roll < 80 {
            samlSignIn(c, rpc, web, replayWeb, samlIdP, sso: sso)
          } else {
            serial += 1
            oidcSignIn(c, rpc, web, oidcProvider, sso: sso, index: index, serial: serial)
          }
        } else {
          signIn(c, rpc, c.users[active.randomElement(using: &c.rng)!])
        }
      } else if roll < 97 {
        read(c, rpc)
      } else {
        enqueue(c, mail, serial: index * 1_000_000 + serial)
        serial += 1
      }
    }
  }

  func create(_ c: Client, _ scim: HTTPPool, email: String) {
    let display = "User \(email.prefix(while: { $0 != "@" }))"
    var sentOnce = false
    let created: String?? = measured(
      c, "scim.create",
      { () -> Result<String?, Unavailable> in
        switch scim.request("POST", "/scim/v2/Users", Self.userBody(email, display: display)) {
        case .unavailable(let why):
          sentOnce = true
          return .failure(Unavailable(why: why))
        case .answered(201, let body):
          return .success(body?["id"]?.stringValue)
        case .answered(409, _) where sentOnce:
          // An earlier attempt went through before its answer was lost: find it.
          switch scim.request("GET", "/scim/v2/Users?filter=" + Self.q("userName eq \"\(email)\"")) {
          case .answered(200, let body): return .success(body?["Resources"]?.arrayValue?.first?["id"]?.stringValue)
          case .answered(let s, _):
            error(c, "scim.create", "\(email) exists (409) but the lookup answered HTTP \(s)")
            return .success(nil)
          case .unavailable(let why): return .failure(Unavailable(why: why))
          }
        case .answered(let s, let body):
          error(c, "scim.create", "HTTP \(s) \(body?["detail"]?.stringValue ?? "")")
          return .success(nil)
        }
      })
    guard let id = created ?? nil else { return }
    c.users.append(UserRecord(id: id, userName: email, displayName: display, active: true))
  }

  func lookup(_ c: Client, _ scim: HTTPPool, _ u: UserRecord) {
    _ = measured(c, "scim.lookup") { () -> Result<Void, Unavailable> in
      switch scim.request("GET", "/scim/v2/Users?filter=" + Self.q("userName eq \"\(u.userName)\"")) {
      case .unavailable(let why): return .failure(Unavailable(why: why))
      case .answered(200, let body):
        let found = body?["Resources"]?.arrayValue?.first
        // Read-your-writes: what this client last had accepted is what is there.
        if body?["totalResults"]?.intValue != 1 || found?["id"]?.stringValue != u.id || found?["displayName"]?.stringValue != u.displayName {
          error(c, "scim.lookup", "\(u.userName): expected \(u.displayName), found \(found?["displayName"]?.stringValue ?? "nothing")")
        }
        return .success(())
      case .answered(let s, _):
        error(c, "scim.lookup", "HTTP \(s)")
        return .success(())
      }
    }
  }

  /// One replace PATCH of a user's attribute; true when it was accepted.
  func replace(_ c: Client, _ scim: HTTPPool, _ op: String, _ i: Int, path: String, value: JSONValue) -> Bool {
    let body: JSONValue = [
      "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [["op": "replace", "path": .string(path), "value": value]],
    ]
    let ok: Bool? = measured(c, op) {
      switch scim.request("PATCH", "/scim/v2/Users/\(c.users[i].id)", body) {
      case .unavailable(let why): return .failure(Unavailable(why: why))
      case .answered(let s, _) where s == 200 || s == 204: return .success(true)
      case .answered(let s, let b):
        error(c, op, "HTTP \(s) \(b?["detail"]?.stringValue ?? "")")
        return .success(false)
      }
    }
    return ok == true
  }

  func patch(_ c: Client, _ scim: HTTPPool, _ i: Int) {
    let display = "Renamed \(UInt32.random(in: 0...UInt32.max, using: &c.rng))"
    if replace(c, scim, "scim.patch", i, path: "displayName", value: .string(display)) { c.users[i].displayName = display }
  }

  /// Content for the leaver first (so the job has something to transfer), then active:false.
  func deactivate(_ c: Client, _ scim: HTTPPool, _ deprov: RPCClient, _ i: Int) {
    let items = Int.random(in: 1...3, using: &c.rng)
    for n in 0..<items {
      let params: JSONValue = [
        "workspaceId": .string(workspace.id), "ownerMemberId": .string(c.users[i].id), "title": .string("video \(n) of \(c.users[i].userName)"),
        "posted": .bool(n % 2 == 0),
      ]
      let ok: Bool? = measured(
        c, "content.create",
        {
          switch deprov.call("content.create", params) {
          case .ok: return .success(true)
          case .unavailable(let why): return .failure(Unavailable(why: why))
          case .refused(let code, let reason, let message):
            error(c, "content.create", "\(code) \(reason) \(message)")
            return .success(false)
          }
        }, onRetry: { c.users[i].contentMax += 1 })
      if ok == true {
        c.users[i].contentMin += 1
        c.users[i].contentMax += 1
      }
    }
    if replace(c, scim, "scim.deactivate", i, path: "active", value: false) { c.users[i].active = false }
  }

  func signIn(_ c: Client, _ rpc: RPCClient, _ u: UserRecord) {
    _ = measured(c, "auth.signIn") { () -> Result<Void, Unavailable> in
      switch rpc.call("auth.signIn", ["email": .string(u.userName), "method": "password"]) {
      case .unavailable(let why): return .failure(Unavailable(why: why))
      case .ok(let d):
        let ids = d["workspaces"]?.arrayValue?.compactMap { $0["workspaceId"]?.stringValue } ?? []
        if !ids.contains(workspace.id) { error(c, "auth.signIn", "\(u.userName) is active but may not enter: \(d)") }
        return .success(())
      case .refused(let code, let reason, let message):
        error(c, "auth.signIn", "\(code) \(reason) \(message)")
        return .success(())
      }
    }
  }

  func read(_ c: Client, _ rpc: RPCClient) {
    let (method, params): (String, JSONValue) =
      Bool.random(using: &c.rng)
      ? ("member.list", ["workspaceId": .string(workspace.id), "limit": 20])
      : ("events.list", ["workspaceId": .string(workspace.id), "limit": 50])
    _ = measured(c, "rpc.read") { () -> Result<Void, Unavailable> in
      switch rpc.call(method, params) {
      case .unavailable(let why): return .failure(Unavailable(why: why))
      case .ok: return .success(())
      case .refused(let code, let reason, let message):
        error(c, "rpc.read", "\(method): \(code) \(reason) \(message)")
        return .success(())
      }
    }
  }

  func enqueue(_ c: Client, _ mail: RPCClient, serial: Int) {
    let params: JSONValue = [
      "template": "deprovision_summary", "to": .string("admin\(serial)@\(options.mailDomain)"), "workspaceId": .string(workspace.id),
      "data": ["workspaceName": "Load", "memberEmail": .string("m\(serial)@\(workspace.domain)"), "mode": "delete", "content": "deleted", "count": 0],
    ]
    let id: String?? = measured(
      c, "notification.enqueue",
      { () -> Result<String?, Unavailable> in
        switch mail.call("notification.enqueue", params) {
        case .ok(let n): return .success(n["id"]?.stringValue)
        case .unavailable(let why): return .failure(Unavailable(why: why))
        case .refused(let code, let reason, let message):
          error(c, "notification.enqueue", "\(code) \(reason) \(message)")
          return .success(nil)
        }
      }, onRetry: { c.notificationsInDoubt += 1 })
    if let id = id ?? nil { c.notifications.append(id) }
  }
}

/// What the SSO sign-ins of a run came to, for `LoadVerifier`.
public struct SSOTally: Sendable {
  /// Codes redeemed by the app (SAML and OIDC).
  public var signIns = 0
  /// Sign-ins of removed users, refused as they must be.
  public var refusedRemoved = 0
  /// ACS or callback requests whose answer was lost (each may have completed).
  public var flowsInDoubt = 0
  /// Code redemptions whose answer was lost, found used on the retry.
  public var redemptionsInDoubt = 0
  /// Replayed SAMLResponses and second redemptions tried (all refused, or an error).
  public var replays = 0
  public var codesReused = 0
  /// Second redemptions answered `code_used` (each audited as sso.code_reused).
  public var reuseRefused = 0
  /// Codes that reached the app's redirect URI.
  public var codesReceived = 0
  /// People the OIDC workspace admitted, and every address tried there.
  public var oidcPeople: Set<String> = []
  public var oidcAttempted: Set<String> = []

  mutating func merge(_ o: SSOTally) {
    signIns += o.signIns
    refusedRemoved += o.refusedRemoved
    flowsInDoubt += o.flowsInDoubt
    redemptionsInDoubt += o.redemptionsInDoubt
    replays += o.replays
    codesReused += o.codesReused
    reuseRefused += o.reuseRefused
    codesReceived += o.codesReceived
    oidcPeople.formUnion(o.oidcPeople)
    oidcAttempted.formUnion(o.oidcAttempted)
  }
}

/// What a load run did, per operation.
public struct LoadReport: Sendable {
  public let seconds: Double
  public let stats: [String: OpStats]
  public let errorSamples: [String]
  public let users: [UserRecord]
  public let notifications: [String]
  public let notificationsInDoubt: Int
  public let longestOutage: Double
  /// Where the clients' own emails went (the rest are the jobs' summaries).
  public let mailDomain: String
  /// Operations per second in each minute of the run (the last may be partial).
  public let perMinute: [Int]
  public let sso: SSOTally

  public var totalErrors: Int { stats.values.reduce(0) { $0 + $1.errors } }
  public var totalOperations: Int { stats.values.reduce(0) { $0 + $1.latenciesMs.count } }

  /// A Markdown table: operation, count, per second, p50, p99, errors, retried.
  public func table() -> String {
    var out = "| operation | count | per s | p50 ms | p99 ms | errors | retried (away) |\n|---|---|---|---|---|---|---|\n"
    for op in MixedLoad.operations {
      guard let s = stats[op] else { continue }
      out +=
        "| \(op) | \(s.latenciesMs.count) | \(String(format: "%.0f", Double(s.latenciesMs.count) / seconds)) | \(String(format: "%.2f", s.percentile(50))) | \(String(format: "%.2f", s.percentile(99))) | \(s.errors) | \(s.unavailable) |\n"
    }
    out += "| **all** | \(totalOperations) | \(String(format: "%.0f", Double(totalOperations) / seconds)) | | | \(totalErrors) | \(stats.values.reduce(0) { $0 + $1.unavailable }) |\n"
    if perMinute.count > 1 {
      let full = perMinute.dropLast().map { String($0 / 60) }
      out += "\nOperations per second, minute by minute: " + full.joined(separator: ", ") + "\n"
    }
    return out
  }
}
