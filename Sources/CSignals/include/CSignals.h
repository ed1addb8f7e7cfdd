// Stop requests by signal (Ctrl-C, `kill`, Slurm's preemption, mpirun passing them on).
// The handler only records the first signal and its time; the run loop asks at the end of each
// step. A second signal at least a second after the first ends the process at once (duplicates
// of one request, as when both Slurm and mpirun pass a SIGTERM on, arrive within milliseconds).
#ifndef GANTRY_CSIGNALS_H
#define GANTRY_CSIGNALS_H

/// Installs the handler for SIGINT and SIGTERM, and for SIGUSR1 and SIGUSR2, which stand for
/// them where mpirun passes them on (launch/train). Later calls do nothing.
void gantry_signals_install(void);
/// Puts back the default actions of the four signals.
void gantry_signals_uninstall(void);
/// The first stop signal received (SIGINT, SIGTERM; SIGUSR1 reads as SIGINT, SIGUSR2 as SIGTERM), or 0.
int gantry_signal_received(void);
/// Seconds on CLOCK_MONOTONIC at which the first signal arrived; 0 before one has (or for an
/// instant after, while the handler stores it).
double gantry_signal_time(void);
/// Records `signal` as if it had arrived (tests).
void gantry_signal_raise_for_testing(int signal);

#endif
