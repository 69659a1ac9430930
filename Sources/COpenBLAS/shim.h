#ifndef DIT_COPENBLAS_SHIM_H
#define DIT_COPENBLAS_SHIM_H
// OpenBLAS's CBLAS (Debian: libopenblas-dev) and LAPACKE (liblapacke-dev).
#include <cblas.h>
#include <lapacke.h>
// Declared by OpenBLAS's own cblas.h; repeated here in case the cblas.h
// alternative points at another implementation's header.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
#endif
