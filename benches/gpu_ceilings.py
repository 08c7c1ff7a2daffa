"""Measures the device ceilings the kernel benchmarks are compared with (the device tool's
METHOD.md): memory bandwidth by a large device-to-device copy (bytes read + written), and the
rates of cuBLAS DSYRK / DGEMM (the gram kernel's ceiling) and SGEMM (kNN distance tiles), through
cupy. Prints one line per ceiling; medians of 20 timed runs after warm-up, timed with events.

    python3 benches/gpu_ceilings.py
"""

import cupy as cp


def timed(fn, reps=20):
    fn()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(reps):
        a, b = cp.cuda.Event(), cp.cuda.Event()
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(cp.cuda.get_elapsed_time(a, b) / 1e3)
    times.sort()
    return times[len(times) // 2]


def main():
    dev = cp.cuda.Device()
    props = cp.cuda.runtime.getDeviceProperties(dev.id)
    print(f"device {dev.id}: {props['name'].decode()}")
    n = 1 << 28  # 1 GiB of f32
    src = cp.random.random(n, dtype=cp.float32)
    dst = cp.empty_like(src)
    t = timed(lambda: cp.copyto(dst, src))
    print(f"copy       {2 * src.nbytes / t / 1e9:8.0f} GB/s   (device-to-device, read + write)")

    rows, dim = 65536, 2000
    x = cp.random.random((rows, dim), dtype=cp.float64)
    out = cp.empty((dim, dim), dtype=cp.float64)
    t = timed(lambda: cp.cublas.syrk("T", x, out=out))
    print(f"dsyrk      {rows * dim * (dim + 1) / t / 1e12:8.2f} TFLOP/s ({rows} x {dim}, XᵀX upper)")
    t = timed(lambda: cp.matmul(x.T, x, out=out))
    print(f"dgemm      {2 * rows * dim * dim / t / 1e12:8.2f} TFLOP/s ({rows} x {dim}, XᵀX full)")

    q, p, d = 8192, 65536, 64
    a = cp.random.random((q, d), dtype=cp.float32)
    b = cp.random.random((d, p), dtype=cp.float32)
    c = cp.empty((q, p), dtype=cp.float32)
    t = timed(lambda: cp.matmul(a, b, out=c))
    print(f"sgemm      {2 * q * p * d / t / 1e12:8.2f} TFLOP/s ({q} x {d} by {d} x {p})")


if __name__ == "__main__":
    main()
