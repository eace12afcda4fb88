package dev.tornadolora.bench;

import dev.tornadolora.kernels.Backends;
import dev.tornadolora.kernels.LoraKernels;
import dev.tornadolora.kernels.LoraParams;
import dev.tornadolora.kernels.ProfilingKernels;

/**
 * For the benchmark's tests: a one-call configuration, and devices that are the JVM backend with wrong outputs,
 * an exception, or a fake profiler.
 */
public final class BenchFixtures {
    private BenchFixtures() {}

    /** One timed call, no warm-up: the tests check what is reported, not how fast. */
    public static final BenchRunner.Config ONE_CALL = new BenchRunner.Config(1, 1, 0, 0, 3, 1e-4, 5e8);

    /** The JVM backend, then one element of y (and of dx) moved by {@code relative} × the largest |value|. */
    public static LoraKernels perturbed(String name, float yRelative, float dxRelative) {
        LoraKernels jvm = Backends.jvm();
        return new LoraKernels() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public void forward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] y) {
                jvm.forward(p, x, m, tokens, h, y);
                perturb(y, yRelative);
            }

            @Override
            public void backward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] dy, float[] dx,
                                 float[] gradA, float[] gradB) {
                jvm.backward(p, x, m, tokens, h, dy, dx, gradA, gradB);
                perturb(dx, dxRelative);
            }
        };
    }

    static void perturb(float[] a, float relative) {
        float max = 0;
        for (float v : a) max = Math.max(max, Math.abs(v));
        a[a.length / 2] += relative * max;
    }

    /** A device whose kernels throw, as a broken driver would. */
    public static LoraKernels throwing(String name) {
        return new LoraKernels() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public void forward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] y) {
                throw new IllegalStateException("device lost");
            }

            @Override
            public void backward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] dy, float[] dx,
                                 float[] gradA, float[] gradB) {
                throw new IllegalStateException("device lost");
            }
        };
    }

    /**
     * The JVM backend posing as a profiling accelerator: every call reports kernel 1 ms and transfer 0.25 ms;
     * the first call of each layer also reports 7 ms of compilation.
     */
    public static final class Profiled implements ProfilingKernels {
        private final java.util.Set<LoraParams> compiled = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        private boolean on;
        private Profile last;

        @Override
        public String name() {
            return "fake:0:0";
        }

        @Override
        public void setProfiling(boolean on) {
            this.on = on;
        }

        @Override
        public Profile lastProfile() {
            return on ? last : null;
        }

        @Override
        public void forward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] y) {
            Backends.jvm().forward(p, x, m, tokens, h, y);
            last = new Profile(1.5, compiled.add(p) ? 7 : 0, 1, 0.25);
        }

        @Override
        public void backward(LoraParams p, float[] x, float[] m, int tokens, float[] h, float[] dy, float[] dx,
                             float[] gradA, float[] gradB) {
            Backends.jvm().backward(p, x, m, tokens, h, dy, dx, gradA, gradB);
            last = new Profile(1.5, 0, 1, 0.25);
        }
    }
}
