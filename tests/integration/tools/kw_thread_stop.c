/*
 * kw_thread_stop TID SECONDS: stops one thread of a running process for SECONDS, the others
 * running on, then lets it go: a real stuck event loop (as a blocking call or a deadlock on the
 * loop thread would leave it) without any hook in the daemon. SIGSTOP cannot do this (it stops
 * every thread, the metrics thread too); ptrace can: PTRACE_SEIZE attaches to the one thread
 * without a signal, PTRACE_INTERRUPT stops it alone, PTRACE_DETACH resumes it. Prints "stopped"
 * once the thread is stopped and "resumed" after. Needs CAP_SYS_PTRACE or a ptrace_scope that
 * allows it; exits 77 (skip) when ptrace is refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: kw_thread_stop TID SECONDS\n");
        return 2;
    }
    char *end = NULL;
    errno = 0;
    long tid = strtol(argv[1], &end, 10);
    if (errno != 0 || *end != '\0' || tid <= 0) {
        fprintf(stderr, "kw_thread_stop: bad TID %s\n", argv[1]);
        return 2;
    }
    errno = 0;
    double secs = strtod(argv[2], &end);
    if (errno != 0 || *end != '\0' || secs < 0) {
        fprintf(stderr, "kw_thread_stop: bad SECONDS %s\n", argv[2]);
        return 2;
    }
    if (ptrace(PTRACE_SEIZE, (pid_t)tid, NULL, NULL) != 0) {
        fprintf(stderr, "kw_thread_stop: PTRACE_SEIZE %ld: %s\n", tid, strerror(errno));
        return errno == EPERM ? 77 : 1;
    }
    if (ptrace(PTRACE_INTERRUPT, (pid_t)tid, NULL, NULL) != 0) {
        fprintf(stderr, "kw_thread_stop: PTRACE_INTERRUPT %ld: %s\n", tid, strerror(errno));
        return 1;
    }
    int status = 0;
    if (waitpid((pid_t)tid, &status, __WALL) != (pid_t)tid || !WIFSTOPPED(status)) {
        fprintf(stderr, "kw_thread_stop: thread %ld did not stop\n", tid);
        return 1;
    }
    printf("stopped\n");
    fflush(stdout);
    usleep((useconds_t)(secs * 1e6));
    if (ptrace(PTRACE_DETACH, (pid_t)tid, NULL, NULL) != 0) {
        fprintf(stderr, "kw_thread_stop: PTRACE_DETACH %ld: %s\n", tid, strerror(errno));
        return 1;
    }
    printf("resumed\n");
    return 0;
}
