#pragma once
// Process exit codes; documented in docs/exit-codes.md. Scripts and CI jobs
// depend on them: never renumber.
namespace millstone::cli {

enum ExitCode : int {
  kExitOk = 0,            // the run completed (request errors are results, not failures)
  kExitInternal = 1,      // a bug or an unexpected system failure
  kExitUsage = 2,         // bad command line: unknown flag, bad value, bad URL
  kExitConfig = 3,        // a configuration file is unreadable or invalid
  kExitUnreachable = 4,   // the target does not resolve or refuses connections
  kExitIncomplete = 5,    // a worker died or hung: the results printed are partial
  kExitNoResponses = 6,   // not one request (or socket step) succeeded: nothing was measured
  kExitCannotListen = 7,  // an address to listen on is in use or cannot be bound
  kExitTls = 8,           // https: the pre-flight TLS handshake failed (certificate, version...)
  kExitDegraded = 9,      // completed degraded: an agent was lost and the run went on without it
  kExitGuardAbort =
      97,  // an abort guard (slo: guard: true) stopped the run; the summary covers what ran
  kExitRegression = 98,    // `millstone compare`: worse than the baseline beyond the tolerance
  kExitThresholds = 99,    // thresholds or SLO objectives failed (scenarios; same code as k6)
  kExitInterrupted = 130,  // stopped by Ctrl-C / SIGTERM; the summary covers what ran
};

}  // namespace millstone::cli
