// Kept tiny on purpose: top-level code is main-actor code in Swift 6.
import Foundation
import RosterRuntime

#if canImport(CMalloc)
  import CMalloc
  // Two malloc arenas, not one per thread (glibc's default is up to eight
  // per core): every connection is a thread, and freed memory stays in the
  // arena of the thread that used it. Measured: provisioning's RSS after the
  // SCIM benchmark (see docs/benchmarks.md). Set before any thread starts.
  _ = mallopt(M_ARENA_MAX, 2)
  // And hand memory freed after a burst (a 10,000-member PATCH parses half a
  // megabyte of JSON into many small objects) back to the system: glibc
  // only returns what sits at the top of the heap on its own.
  Thread.detachNewThread {
    while true {
      sleep(10)
      _ = malloc_trim(0)
    }
  }
#endif

Signals.blockTermination()
exit(CLI.run(Array(CommandLine.arguments.dropFirst())))
