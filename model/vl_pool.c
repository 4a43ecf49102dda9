/* vl_pool: the tiny pthread pool that runs our own kernels (ggml's threadpool in miniature).
 * The calling thread is worker 0; workers 1..n-1 wait for a new "generation", run the task,
 * and count themselves done; vl__pool_run returns when every worker has finished (that join is
 * the barrier between kernels). Idle workers spin briefly (a forward pass dispatches thousands
 * of short tasks) and then sleep on a condition variable, so an idle pool costs no CPU.
 * Thread-safety: one controlling thread per pool; vl__pool_run is not re-entrant. */
#include "vl_impl.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

/* Busy-wait iterations before a worker sleeps / the caller yields; a few tens of microseconds. */
#define POOL_SPIN_ITERS 20000
#define POOL_MAX_THREADS 256

typedef void (*pool_fn)(void *arg, int ith, int nth);

struct pool_worker {
    struct vl_pool *pool;
    int ith;
};

struct vl_pool {
    int n;
    pthread_t *threads;          /* [n - 1] */
    struct pool_worker *workers; /* [n - 1] */
    int n_started;
    pool_fn fn;                  /* current task; written before generation is bumped */
    void *arg;
    atomic_uint generation;      /* bumped once per run */
    atomic_int n_done;           /* workers 1..n-1 that finished the current generation */
    atomic_bool stop;
    atomic_llong chunk;          /* vl__pool_next_chunk counter, reset per run */
    atomic_int n_sleeping;
    pthread_mutex_t mu;
    pthread_cond_t wake;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *p_) {
    struct pool_worker *w = p_;
    struct vl_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned gen = atomic_load_explicit(&p->generation, memory_order_acquire);
        int spins = 0;
        while (gen == seen && !atomic_load_explicit(&p->stop, memory_order_acquire)) {
            if (++spins < POOL_SPIN_ITERS) {
                cpu_relax();
            } else {
                pthread_mutex_lock(&p->mu);
                atomic_fetch_add(&p->n_sleeping, 1);
                while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                    pthread_cond_wait(&p->wake, &p->mu);
                atomic_fetch_sub(&p->n_sleeping, 1);
                pthread_mutex_unlock(&p->mu);
                spins = 0;
            }
            gen = atomic_load_explicit(&p->generation, memory_order_acquire);
        }
        if (atomic_load_explicit(&p->stop, memory_order_acquire))
            return NULL;
        seen = gen;
        p->fn(p->arg, w->ith, p->n);
        atomic_fetch_add_explicit(&p->n_done, 1, memory_order_acq_rel);
    }
}

struct vl_pool *vl__pool_new(int n_threads) {
    if (n_threads < 1 || n_threads > POOL_MAX_THREADS)
        return NULL;
    struct vl_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n_threads;
    atomic_init(&p->generation, 0);
    atomic_init(&p->n_done, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->chunk, 0);
    atomic_init(&p->n_sleeping, 0);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->wake, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    if (n_threads > 1) {
        size_t nw = (size_t)n_threads - 1;
        p->threads = calloc(nw, sizeof *p->threads);
        p->workers = calloc(nw, sizeof *p->workers);
        if (!p->threads || !p->workers) {
            vl__pool_free(p);
            return NULL;
        }
        for (size_t i = 0; i < nw; i++) {
            p->workers[i].pool = p;
            p->workers[i].ith = (int)i + 1;
            if (pthread_create(&p->threads[i], NULL, worker_main, &p->workers[i]) != 0) {
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
    free(p->threads);
    free(p->workers);
    free(p);
}

int vl__pool_size(const struct vl_pool *p) {
    return p ? p->n : 1;
}

void vl__pool_run(struct vl_pool *p, void (*fn)(void *arg, int ith, int nth), void *arg) {
    if (!p || p->n == 1) {
        if (p)
            atomic_store_explicit(&p->chunk, 0, memory_order_relaxed);
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->chunk, 0, memory_order_relaxed);
    atomic_store_explicit(&p->n_done, 0, memory_order_relaxed);
    /* Publishing the generation releases fn/arg/chunk/n_done to the workers. */
    atomic_fetch_add(&p->generation, 1); /* seq_cst: ordered before the n_sleeping load */
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, p->n);
    int spins = 0;
    while (atomic_load_explicit(&p->n_done, memory_order_acquire) != p->n - 1) {
        if (++spins < POOL_SPIN_ITERS) {
            cpu_relax();
        } else {
            sched_yield();
        }
    }
}

int64_t vl__pool_next_chunk(struct vl_pool *p) {
    VL_ASSERT(p);
    return (int64_t)atomic_fetch_add_explicit(&p->chunk, 1, memory_order_relaxed);
}
