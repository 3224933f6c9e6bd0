// Kept tiny on purpose: top-level code is main-actor code in Swift 6.
import Foundation
import RosterRuntime

Signals.blockTermination()
exit(CLI.run(Array(CommandLine.arguments.dropFirst())))
