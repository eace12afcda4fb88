package dev.tornadolora.kernels.jvm;

import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.device.Device;
import dev.tornadolora.device.DeviceOptions;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.kernels.ScalarLoraKernels;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The library on a plain class path, without {@code --add-modules jdk.incubator.vector}: a child JVM runs
 * {@link #main} (a LoRA layer's forward and backward, fp32 and NF4, on the default backend) and checks the
 * results against the scalar reference, and the one log line says how to enable the fast path.
 */
class NoVectorApiTest {

    @Test
    void aPlainClassPathRunsTheScalarFallbackWithOneHint() throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String classPath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        Process p = new ProcessBuilder(List.of(java, "-cp", classPath, NoVectorApiTest.class.getName()))
                .redirectErrorStream(true).start();
        p.getOutputStream().close();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the child JVM did not finish");
        assertEquals(0, p.exitValue(), output);
        assertTrue(output.contains("backend jvm (scalar"), output);
        assertTrue(output.contains("fp32 ok") && output.contains("nf4 ok"), output);
        String hint = "add --add-modules jdk.incubator.vector";
        assertEquals(1, output.split(Pattern.quote(hint), -1).length - 1,
                "the hint is logged once: " + output);
    }

    /** Run in the child JVM: prints the backend and "fp32 ok"/"nf4 ok", or fails with exit status 1. */
    public static void main(String[] args) {
        if (JvmBackends.vectorApiReadable()) {
            System.out.println("the Vector API is readable: this child JVM was meant to run without it");
            System.exit(2);
        }
        Device device = Device.open("jvm", DeviceOptions.defaults());
        LoraBackend jvm = device.backend();
        System.out.println("backend " + jvm);
        for (boolean nf4 : new boolean[] {false, true}) {
            for (int tokens : new int[] {1, 9}) {
                compare(jvm, nf4, tokens);
            }
            // and through the public layer API
            LoRALinear layer = LoRALinear.builder(256, 64).rank(4).quantizeBase(nf4).seed(3).device(device).build().eval();
            Tensor y = layer.forward(new Tensor(new int[] {2, 256}, random(5, 512)));
            layer.backward(new Tensor(y.shape(), random(6, y.numel())));
            layer.close();
            System.out.println((nf4 ? "nf4" : "fp32") + " ok");
        }
        device.close();
        Device.open("jvm", DeviceOptions.defaults().withThreads(1)).close();  // a second device logs nothing more
    }

    private static void compare(LoraBackend jvm, boolean nf4, int tokens) {
        int in = 256, out = 64, r = 4;
        float[] w = random(1, in * out);
        var base = nf4 ? Nf4Tensor.quantize(w, out, in) : new dev.tornadolora.tensor.DenseWeight(out, in, w);
        Adapters ad = new Adapters(random(2, r * in), random(3, out * r));
        float[] x = random(4, tokens * in), dy = random(5, tokens * out);
        float[][] got = run(jvm, base, ad, x, dy, tokens), want = run(ScalarLoraKernels.INSTANCE, base, ad, x, dy, tokens);
        for (int i = 0; i < got.length; i++) {
            if (!java.util.Arrays.equals(got[i], want[i])) {
                System.out.println("output " + i + " differs from the reference (" + (nf4 ? "nf4" : "fp32") + ", "
                        + tokens + " tokens)");
                System.exit(1);
            }
        }
    }

    private static float[][] run(LoraBackend b, dev.tornadolora.tensor.BaseWeight base, Adapters ad, float[] x,
                                 float[] dy, int tokens) {
        int in = base.cols(), out = base.rows(), r = ad.a().length / in;
        float[] y = new float[tokens * out], dx = new float[tokens * in];
        Adapters g = new Adapters(new float[r * in], new float[out * r]);
        try (LayerKernels k = b.bind(base, null, r, 2f)) {
            k.backward(k.forward(x, null, tokens, ad, y), dy, dx, ad, g);
        }
        return new float[][] {y, dx, g.a(), g.b()};
    }

    private static float[] random(long seed, int n) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) rnd.nextDouble(-1, 1);
        return a;
    }
}
