package dev.tornadolora.bench;

import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.testing.DelegatingKernels;

/**
 * For the benchmark's tests: a one-call configuration, and devices that are the JVM backend with wrong outputs,
 * an exception, or a fake profiler.
 */
public final class BenchFixtures {
    private BenchFixtures() {}

    /** One timed call, no warm-up: the tests check what is reported, not how fast. */
    public static final BenchRunner.Config ONE_CALL = new BenchRunner.Config(1, 1, 0, 0, 3, 1e-4, 5e8);

    /** The JVM backend, then one element of y (and of dx) moved by {@code relative} × the largest |value|. */
    public static LoraBackend perturbed(String name, float yRelative, float dxRelative) {
        return new LoraBackend() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public LayerKernels bind(BaseWeight base, float[] bias, int rank, float scale) {
                return new DelegatingKernels(TestDevices.jvm().backend().bind(base, bias, rank, scale)) {
                    @Override
                    public Activations forward(float[] x, float[] mask, int tokens, Adapters adapters, float[] y) {
                        Activations a = super.forward(x, mask, tokens, adapters, y);
                        perturb(y, yRelative);
                        return a;
                    }

                    @Override
                    public void backward(Activations saved, float[] dy, float[] dx, Adapters adapters, Adapters grads) {
                        super.backward(saved, dy, dx, adapters, grads);
                        perturb(dx, dxRelative);
                    }
                };
            }
        };
    }

    static void perturb(float[] a, float relative) {
        float max = 0;
        for (float v : a) max = Math.max(max, Math.abs(v));
        a[a.length / 2] += relative * max;
    }

    /** A device whose kernels throw, as a broken driver would. */
    public static LoraBackend throwing(String name) {
        return new LoraBackend() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public LayerKernels bind(BaseWeight base, float[] bias, int rank, float scale) {
                return new DelegatingKernels(TestDevices.jvm().backend().bind(base, bias, rank, scale)) {
                    @Override
                    public Activations forward(float[] x, float[] mask, int tokens, Adapters adapters, float[] y) {
                        throw new IllegalStateException("device lost");
                    }
                };
            }
        };
    }

    /**
     * The JVM backend posing as a profiling accelerator: every call reports kernel 1 ms and transfer 0.25 ms;
     * the first call of each binding also reports 7 ms of compilation; it holds 1 MiB "on the device".
     */
    public static final class Profiled implements LoraBackend {
        @Override
        public String name() {
            return "fake:0:0";
        }

        @Override
        public LayerKernels bind(BaseWeight base, float[] bias, int rank, float scale) {
            return new Fake(TestDevices.jvm().backend().bind(base, bias, rank, scale));
        }

        private static final class Fake extends DelegatingKernels implements LayerKernels.Profiling {
            private boolean on;
            private boolean compiled;
            private Profile last;

            Fake(LayerKernels inner) {
                super(inner);
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
            public long deviceBytes() {
                return 1 << 20;
            }

            @Override
            public Activations forward(float[] x, float[] mask, int tokens, Adapters adapters, float[] y) {
                Activations a = super.forward(x, mask, tokens, adapters, y);
                last = new Profile(1.5, compiled ? 0 : 7, 1, 0.25);
                compiled = true;
                return a;
            }

            @Override
            public void backward(Activations saved, float[] dy, float[] dx, Adapters adapters, Adapters grads) {
                super.backward(saved, dy, dx, adapters, grads);
                last = new Profile(1.5, 0, 1, 0.25);
            }
        }
    }
}
