/* vl_pool: the tiny pthread pool that runs our kernels and GEMM slices (ggml's threadpool in
 * miniature). A run of fn over nth slices publishes a new generation; every worker, the calling
 * thread included, claims slices (ith = 0, 1, ..) from one atomic word that holds the generation
 * and the next slice, runs them, and counts them done; vl__pool_run returns when all nth are
 * done (that join is the barrier between kernels). Because slices are claimed rather than
 * assigned, a worker that is descheduled (a shared machine) never holds a run up: the caller
 * runs its slices. Idle workers spin briefly, then sleep on a condition variable.
 * Thread-safety: one controlling thread per pool; vl__pool_run is not re-entrant. */
#include "vl_impl.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

/* Busy-wait iterations before a worker sleeps / the caller yields; a few tens of microseconds. */
#define POOL_SPIN_ITERS 20000
#define POOL_MAX_THREADS 256
#define GEN_SHIFT 32
#define SLICE_MASK 0xffffffffull

typedef void (*pool_fn)(void *arg, int ith, int nth);

struct vl_pool {
    int n;
    pthread_t *threads;          /* [n - 1] */
    int n_started;
    _Atomic(pool_fn) fn;         /* current task; written before the generation is published */
    _Atomic(void *) arg;         /* (atomic only so a late worker's read is not a data race) */
    _Atomic uint64_t state;      /* generation << 32 | next unclaimed slice */
    atomic_int n_done;           /* slices of the current generation finished */
    atomic_bool stop;
    atomic_llong chunk;          /* vl__pool_next_chunk / vl__pool_claim counter, reset per run */
    atomic_int n_sleeping;
    pthread_mutex_t mu;
    pthread_cond_t wake;
};

static _Thread_local int in_task; /* > 0 while this thread runs a slice of some pool */

int vl__pool_in_task(void) {
    return in_task > 0;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Claims and runs slices of generation gen until none is left. fn/arg were read after gen was
 * observed; if they already belong to a later run the claim fails (generation mismatch). */
static void run_slices(struct vl_pool *p, uint64_t gen, pool_fn fn, void *arg) {
    uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
    for (;;) {
        if (s >> GEN_SHIFT != gen || (s & SLICE_MASK) >= (uint64_t)p->n)
            return;
        if (!atomic_compare_exchange_weak_explicit(&p->state, &s, s + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        in_task++;
        fn(arg, (int)(s & SLICE_MASK), p->n);
        in_task--;
        atomic_fetch_add_explicit(&p->n_done, 1, memory_order_acq_rel);
        s = atomic_load_explicit(&p->state, memory_order_acquire);
    }
}

static void *worker_main(void *p_) {
    struct vl_pool *p = p_;
    uint64_t seen = 0;
    for (;;) {
        uint64_t gen = atomic_load_explicit(&p->state, memory_order_acquire) >> GEN_SHIFT;
        int spins = 0;
        while (gen == seen && !atomic_load_explicit(&p->stop, memory_order_acquire)) {
            if (++spins < POOL_SPIN_ITERS) {
                cpu_relax();
            } else {
                pthread_mutex_lock(&p->mu);
                atomic_fetch_add(&p->n_sleeping, 1);
                while (atomic_load(&p->state) >> GEN_SHIFT == seen && !atomic_load(&p->stop))
                    pthread_cond_wait(&p->wake, &p->mu);
                atomic_fetch_sub(&p->n_sleeping, 1);
                pthread_mutex_unlock(&p->mu);
                spins = 0;
            }
            gen = atomic_load_explicit(&p->state, memory_order_acquire) >> GEN_SHIFT;
        }
        if (atomic_load_explicit(&p->stop, memory_order_acquire))
            return NULL;
        seen = gen;
        pool_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
        void *arg = atomic_load_explicit(&p->arg, memory_order_relaxed);
        run_slices(p, gen, fn, arg);
    }
}

struct vl_pool *vl__pool_new(int n_threads) {
    if (n_threads < 1 || n_threads > POOL_MAX_THREADS)
        return NULL;
    struct vl_pool *p = vl__calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n_threads;
    atomic_init(&p->state, 0);
    atomic_init(&p->n_done, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->chunk, 0);
    atomic_init(&p->n_sleeping, 0);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        vl__free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->wake, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        vl__free(p);
        return NULL;
    }
    if (n_threads > 1) {
        p->threads = vl__calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) {
            vl__pool_free(p);
            return NULL;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
                vl__pool_free(p);
                return NULL;
            }
            p->n_started++;
        }
    }
    return p;
}

void vl__pool_free(struct vl_pool *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    vl__free(p->threads);
    vl__free(p);
}

int vl__pool_size(const struct vl_pool *p) {
    return p ? p->n : 1;
}

void vl__pool_run(struct vl_pool *p, void (*fn)(void *arg, int ith, int nth), void *arg) {
    if (!p || p->n == 1 || in_task) { /* nested in a task: run inline, single slice */
        if (p && !in_task)
            atomic_store_explicit(&p->chunk, 0, memory_order_relaxed);
        in_task++;
        fn(arg, 0, 1);
        in_task--;
        return;
    }
    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&p->chunk, 0, memory_order_relaxed);
    atomic_store_explicit(&p->n_done, 0, memory_order_relaxed);
    uint64_t gen = (atomic_load(&p->state) >> GEN_SHIFT) + 1;
    /* seq_cst publish: fn/arg/chunk/n_done become visible, and it is ordered before the
     * n_sleeping load (a worker going to sleep re-checks the state under the mutex) */
    atomic_store(&p->state, gen << GEN_SHIFT);
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    run_slices(p, gen, fn, arg);
    int spins = 0;
    while (atomic_load_explicit(&p->n_done, memory_order_acquire) != p->n) {
        if (++spins < POOL_SPIN_ITERS)
            cpu_relax();
        else
            sched_yield();
    }
}

int64_t vl__pool_next_chunk(struct vl_pool *p) {
    VL_ASSERT(p);
    return (int64_t)atomic_fetch_add_explicit(&p->chunk, 1, memory_order_relaxed);
}

bool vl__pool_claim(struct vl_pool *p, int64_t total, int64_t div, int64_t min, int64_t max,
                    int64_t *r0, int64_t *r1) {
    VL_ASSERT(p && total >= 0 && div >= 1 && min >= 1 && max >= min);
    long long cur = atomic_load_explicit(&p->chunk, memory_order_relaxed);
    for (;;) {
        if (cur >= total)
            return false;
        int64_t rem = total - cur;
        int64_t len = (rem + div * p->n - 1) / (div * p->n);
        len = len < min ? min : len > max ? max : len;
        int64_t end = len < rem ? cur + len : total;
        if (atomic_compare_exchange_weak_explicit(&p->chunk, &cur, end, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *r0 = cur;
            *r1 = end;
            return true;
        }
    }
}

void vl__pool_split(int64_t n, int64_t align, int ith, int nth, int64_t *r0, int64_t *r1) {
    int64_t units = (n + align - 1) / align;
    int64_t per = (units + nth - 1) / nth;
    *r0 = per * ith * align;
    *r1 = per * (ith + 1) * align;
    if (*r0 > n)
        *r0 = n;
    if (*r1 > n)
        *r1 = n;
}
