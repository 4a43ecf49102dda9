/* blas_core_shim: an LD_PRELOAD stand-in for an OpenBLAS older than the CPU, so the test can
 * run docproc's re-exec with OPENBLAS_CORETYPE (docproc/cli/main.c) on any machine. It replaces
 * openblas_get_corename, the only call docproc uses to see which kernels OpenBLAS picked.
 * DP_SHIM_MODE=stale: "Prescott" until OPENBLAS_CORETYPE is set, then the real name (an old
 * OpenBLAS that honours the variable); DP_SHIM_MODE=deaf: always "Prescott" (one that ignores
 * it). The GEMMs themselves still run OpenBLAS's real kernels. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#define SHIM_OLD_CORE "Prescott"

char *openblas_get_corename(void);

char *openblas_get_corename(void) {
    char *(*real)(void) = (char *(*)(void))dlsym(RTLD_NEXT, "openblas_get_corename");
    const char *mode = getenv("DP_SHIM_MODE");
    const char *set = getenv("OPENBLAS_CORETYPE");
    if (mode && !strcmp(mode, "stale") && set && *set && real)
        return real();
    return (char *)SHIM_OLD_CORE;
}
