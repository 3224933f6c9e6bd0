import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Resident memory and open file descriptors of a process, from /proc.
public struct ProcessStats: Sendable, CustomStringConvertible {
  public let pid: Int32
  public let rssMiB: Double
  public let openFDs: Int
  public let threads: Int

  public static func read(_ pid: Int32) -> ProcessStats? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    func field(_ name: String) -> Double? {
      guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return nil }
      return Double(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "")
    }
    let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    return ProcessStats(pid: pid, rssMiB: (field("VmRSS") ?? .nan) / 1024, openFDs: fds, threads: Int(field("Threads") ?? -1))
  }

  public var description: String { String(format: "%.1f MiB, %d fds, %d threads", rssMiB, openFDs, threads) }
}
