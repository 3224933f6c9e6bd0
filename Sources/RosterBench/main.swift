// roster-bench: benchmarks that print a table (numbers go to docs/benchmarks.md).
import Foundation
import RosterRuntime

Signals.blockTermination()
exit(BenchCLI.run(Array(CommandLine.arguments.dropFirst())))
