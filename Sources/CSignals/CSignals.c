#include "CSignals.h"

#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int first_signal;
static _Atomic double first_time;
static atomic_flag installed = ATOMIC_FLAG_INIT;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);  // async-signal-safe
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void record(int signal) {
    double t = now();
    int expected = 0;
    if (atomic_compare_exchange_strong(&first_signal, &expected, signal)) {
        atomic_store(&first_time, t);
        return;
    }
    // A second request: the user asked twice, so stop now (no checkpoint).
    double first = atomic_load(&first_time);
    if (first != 0 && t - first >= 1.0) {
        static const char message[] = "gantry: second stop signal: stopping at once, without a checkpoint\n";
        ssize_t ignored = write(2, message, sizeof message - 1);
        (void)ignored;
        _exit(128 + signal);
    }
}

// SIGUSR1 and SIGUSR2 are SIGINT and SIGTERM passed on by launch/train through mpirun, which
// forwards only those two to every rank (it answers SIGINT and SIGTERM itself by killing the
// job: SIGTERM, then SIGKILL a second later).
static void handler(int signal) {
    record(signal == SIGUSR1 ? SIGINT : signal == SIGUSR2 ? SIGTERM : signal);
}

void gantry_signals_install(void) {
    if (atomic_flag_test_and_set(&installed)) return;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGUSR1, &action, NULL);
    sigaction(SIGUSR2, &action, NULL);
}

void gantry_signals_uninstall(void) {
    for (int i = 0; i < 4; i++) signal((int[]){SIGINT, SIGTERM, SIGUSR1, SIGUSR2}[i], SIG_DFL);
}

int gantry_signal_received(void) { return atomic_load(&first_signal); }

double gantry_signal_time(void) { return atomic_load(&first_time); }

void gantry_signal_raise_for_testing(int signal) { record(signal); }
