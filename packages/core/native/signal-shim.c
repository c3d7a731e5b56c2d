/*
 * LD_PRELOADed into a daemon that re-execs itself (exec-self.ts), to close
 * the window between execve and the first line of JS. In that window Node 20
 * dies on SIGHUP (default action) and opens its inspector on SIGUSR1.
 *
 * The old image blocks the caught signals before execve; the mask and the
 * pending set survive it. Our constructor runs before Node's main(), so by
 * the time Node unblocks them (PlatformInit) they land on a counting handler:
 * Node keeps an inherited function handler without SA_SIGINFO. Node would
 * still install its own SIGUSR1 handler (the inspector trigger) and
 * SIGINT/SIGTERM handlers later, so while "holding" our sigaction() swallows
 * any change to a caught signal. early-signals.ts releases the hold, installs
 * libuv's handlers with process.on() and takes the counts.
 *
 * Only sigaction() is interposed: Node and libuv install every handler with
 * it; Node imports signal() but makes no call to it during start-up.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static const int caught[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 };
#define N_CAUGHT (sizeof caught / sizeof caught[0])

static sigaction_fn real_sigaction;
static unsigned counts[NSIG];
static int holding;
static struct sigaction saved[NSIG]; /* what virtd_shim_forward(1) replaced */

static sigaction_fn real(void)
{
    /* Another preloaded constructor may call us before ours has run. */
    if (!real_sigaction)
        real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    return real_sigaction;
}

static int is_caught(int sig)
{
    for (unsigned i = 0; i < N_CAUGHT; i++)
        if (caught[i] == sig)
            return 1;
    return 0;
}

static void count(int sig)
{
    __atomic_fetch_add(&counts[sig], 1, __ATOMIC_SEQ_CST);
}

/*
 * The old image blocks the caught signals on the main thread only; libuv's
 * threadpool threads still take them, and whatever libuv queues there is gone
 * at execve. Re-raising at the main thread keeps them pending across execve.
 */
static void forward(int sig)
{
    pid_t pid = getpid();
    if ((pid_t)syscall(SYS_gettid) != pid)
        syscall(SYS_tgkill, pid, pid, sig);
    else
        count(sig); /* main thread: only if the caller did not block sig */
}

__attribute__((constructor)) static void shim_init(void)
{
    struct sigaction sa;
    /*
     * Loaded by dlopen() into a running Node (LD_PRELOAD was ignored, e.g.
     * under AT_SECURE): Node's handlers are already there. Install nothing
     * and do not hold, or we would replace libuv's handlers for good.
     */
    for (unsigned i = 0; i < N_CAUGHT; i++) {
        if (real()(caught[i], NULL, &sa) == 0 && sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN)
            return;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = count;
    sa.sa_flags = SA_RESTART; /* no SA_SIGINFO: Node resets SA_SIGINFO handlers */
    sigemptyset(&sa.sa_mask);
    for (unsigned i = 0; i < N_CAUGHT; i++)
        real()(caught[i], &sa, NULL);
    __atomic_store_n(&holding, 1, __ATOMIC_SEQ_CST);
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *oldact)
{
    if (act && is_caught(sig) && __atomic_load_n(&holding, __ATOMIC_SEQ_CST)) {
        /* Report the handler the caller would have replaced: ours. */
        return oldact ? real()(sig, NULL, oldact) : 0;
    }
    return real()(sig, act, oldact);
}

/* Stops swallowing sigaction(); returns 1 if the shim was preloaded and holding. */
int virtd_shim_release(void)
{
    return __atomic_exchange_n(&holding, 0, __ATOMIC_SEQ_CST);
}

/* Returns how many `sig` the counting handler caught since the last call. */
int virtd_shim_take(int sig)
{
    if (sig <= 0 || sig >= NSIG)
        return 0;
    return (int)__atomic_exchange_n(&counts[sig], 0, __ATOMIC_SEQ_CST);
}

/*
 * on=1: route the caught signals through forward() (call with them blocked
 * on the main thread, just before execve); on=0: put back what was there
 * (execve failed). Returns 0, or -1 with errno from sigaction.
 */
int virtd_shim_forward(int on)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (unsigned i = 0; i < N_CAUGHT; i++) {
        int rc = on ? real()(caught[i], &sa, &saved[caught[i]]) : real()(caught[i], &saved[caught[i]], NULL);
        if (rc != 0)
            return -1;
    }
    return 0;
}
