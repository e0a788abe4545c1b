"""The compiled kernels' machinery: numba's JIT wrapped (`jit`), the kernel cache and its
manifest, the kernels a strategy needs (`targets`), the compiles a run paid (`compiles`),
and the first run's Python forms while the cache is cold (`first_run`)."""
