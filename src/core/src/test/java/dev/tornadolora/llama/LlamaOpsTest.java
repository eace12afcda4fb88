package dev.tornadolora.llama;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.llama.ops.CausalAttention;
import dev.tornadolora.llama.ops.GeGlu;
import dev.tornadolora.llama.ops.CausalLmLoss;
import dev.tornadolora.llama.ops.RmsNorm;
import dev.tornadolora.llama.ops.Rope;
import dev.tornadolora.llama.ops.SwiGlu;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each op's fast path against its scalar reference (forward), and its hand-written backward against central
 * finite differences of the reference forward in double (an independent statement of the gradient).
 */
class LlamaOpsTest {
    /** The ops run on a device's executor; these sizes split over its threads. */
    private static final Parallel PAR = TestDevices.jvm().executor();

    final SplittableRandom rng = new SplittableRandom(7);

    double[] random(int n) {
        double[] a = new double[n];
        for (int i = 0; i < n; i++) a[i] = rng.nextDouble() * 2 - 1;
        return a;
    }

    static float[] f(double[] a) {
        float[] o = new float[a.length];
        for (int i = 0; i < a.length; i++) o[i] = (float) a[i];
        return o;
    }

    static double[] d(float[] a) {
        double[] o = new double[a.length];
        for (int i = 0; i < a.length; i++) o[i] = a[i];
        return o;
    }

    /** Rounds to fp32 so that the fast path and the reference see the same inputs. */
    static double[] asFloat(double[] a) {
        return d(f(a));
    }

    static void assertClose(String what, double[] expected, float[] actual, double tol) {
        assertEquals(expected.length, actual.length, what);
        double diff = 0, ref = 0;
        for (int i = 0; i < expected.length; i++) {
            diff = Math.max(diff, Math.abs(expected[i] - actual[i]));
            ref = Math.max(ref, Math.abs(expected[i]));
        }
        assertTrue(ref > 0, what + ": reference is all zeros (the test would not test anything)");
        assertTrue(diff / ref <= tol, what + ": max relative difference " + diff / ref + " > " + tol);
    }

    /** d(Σ dy·f(x))/dx by central differences. */
    static double[] numericGradient(Function<double[], double[]> f, double[] x, double[] dy) {
        double[] g = new double[x.length];
        double h = 1e-6;
        for (int i = 0; i < x.length; i++) {
            double keep = x[i];
            x[i] = keep + h;
            double[] plus = f.apply(x);
            x[i] = keep - h;
            double[] minus = f.apply(x);
            x[i] = keep;
            double s = 0;
            for (int j = 0; j < dy.length; j++) s += dy[j] * (plus[j] - minus[j]);
            g[i] = s / (2 * h);
        }
        return g;
    }

    @Test
    void rmsNorm() {
        int rows = 5, dim = 37;
        double[] x = asFloat(random(rows * dim)), w = asFloat(random(dim)), dy = asFloat(random(rows * dim));
        float eps = 1e-5f;
        float[] y = new float[x.length], inv = new float[rows], dx = new float[x.length];
        RmsNorm.forward(PAR, f(x), f(w), rows, dim, eps, y, inv);
        assertClose("rmsnorm y", RmsNorm.forwardReference(x, w, rows, dim, eps), y, 1e-6);
        RmsNorm.backward(PAR, f(dy), f(x), f(w), inv, rows, dim, dx, false);
        double[] numeric = numericGradient(v -> RmsNorm.forwardReference(v, w, rows, dim, eps), x.clone(), dy);
        assertClose("rmsnorm dx vs finite differences", numeric, dx, 1e-5);
        assertClose("rmsnorm dx vs reference", RmsNorm.backwardReference(dy, x, w, rows, dim, eps), dx, 1e-5);
    }

    @Test
    void ropeIsHfRotateHalfAndItsBackwardIsTheTranspose() {
        int seq = 6, heads = 3, hd = 8, tokens = 2 * seq;
        for (RopeScaling scaling : new RopeScaling[] {null, new RopeScaling(8, 1, 4, 8)}) {
            Rope rope = new Rope(hd, 10000, scaling);
            double[] x = asFloat(random(tokens * heads * hd)), dy = asFloat(random(x.length));
            float[] y = f(x);
            Rope.Tables t = rope.tables(seq);
            rope.apply(PAR, y, tokens, heads, t, false);
            assertClose("rope y", rope.applyReference(x, tokens, heads, seq), y, 1e-6);
            float[] dx = f(dy);
            rope.apply(PAR, dx, tokens, heads, t, true);
            double[] numeric = numericGradient(v -> rope.applyReference(v, tokens, heads, seq), x.clone(), dy);
            assertClose("rope dx", numeric, dx, 1e-5);
        }
    }

    @Test
    void llama3ScalingFollowsHf() {
        // transformers' _compute_llama3_parameters with factor 8, low 1, high 4, original 8192, head_dim 128,
        // theta 500000 (Llama 3.1): the first frequencies are kept, the last divided by 8.
        float[] base = new Rope(128, 500000, null).inverseFrequencies();
        float[] scaled = new Rope(128, 500000, new RopeScaling(8, 1, 4, 8192)).inverseFrequencies();
        assertEquals(base[0], scaled[0]);
        assertEquals(base[63] / 8f, scaled[63], 1e-12);
        boolean smoothed = false;
        for (int i = 0; i < 64; i++) {
            double wavelen = 2 * Math.PI / base[i];
            if (wavelen > 8192 / 4.0 && wavelen < 8192) {
                smoothed = true;
                assertTrue(scaled[i] < base[i] && scaled[i] > base[i] / 8, "smoothed frequency " + i);
            }
        }
        assertTrue(smoothed);
    }

    @Test
    void attentionWithGroupedHeads() {
        int batch = 2, seq = 5, d = 4;
        for (int[] hk : new int[][] {{2, 2}, {4, 2}, {4, 1}, {3, 1}}) {
            int heads = hk[0], kv = hk[1];
            CausalAttention a = new CausalAttention(PAR, batch, seq, heads, kv, d);
            double[] q = asFloat(random(batch * seq * heads * d)), k = asFloat(random(batch * seq * kv * d)),
                    v = asFloat(random(batch * seq * kv * d)), dOut = asFloat(random(q.length));
            float[] out = new float[q.length], lse = new float[batch * heads * seq];
            a.forward(f(q), f(k), f(v), out, lse);
            assertClose("attention out " + heads + ":" + kv, a.forwardReference(q, k, v), out, 1e-5);
            float[] dq = new float[q.length], dk = new float[k.length], dv = new float[v.length];
            a.backward(f(dOut), f(q), f(k), f(v), out, lse, dq, dk, dv);
            assertClose("dq", numericGradient(x -> a.forwardReference(x, k, v), q.clone(), dOut), dq, 1e-5);
            assertClose("dk", numericGradient(x -> a.forwardReference(q, x, v), k.clone(), dOut), dk, 1e-5);
            assertClose("dv", numericGradient(x -> a.forwardReference(q, k, x), v.clone(), dOut), dv, 1e-5);
            double[][] ref = a.backwardReference(dOut, q, k, v);
            assertClose("dk vs reference", ref[1], dk, 1e-5);
        }
    }

    @Test
    void swiGlu() {
        int n = 50;
        double[] g = asFloat(random(n)), u = asFloat(random(n)), da = asFloat(random(n));
        float[] a = new float[n], dg = new float[n], du = new float[n];
        SwiGlu.forward(PAR, f(g), f(u), a);
        assertClose("swiglu", SwiGlu.forwardReference(g, u), a, 1e-6);
        SwiGlu.backward(PAR, f(da), f(g), f(u), dg, du);
        assertClose("dg", numericGradient(x -> SwiGlu.forwardReference(x, u), g.clone(), da), dg, 1e-5);
        assertClose("du", numericGradient(x -> SwiGlu.forwardReference(g, x), u.clone(), da), du, 1e-5);
    }

    /** GeGLU against PyTorch's tanh form of gelu_pytorch_tanh in double, and its backward by finite differences. */
    @Test
    void geGlu() {
        int n = 60;
        double[] g = asFloat(random(n)), u = asFloat(random(n)), da = asFloat(random(n));
        for (int i = 0; i < n; i++) g[i] = (float) (g[i] * 4);  // into both tails of the tanh
        float[] a = new float[n], dg = new float[n], du = new float[n];
        GeGlu.forward(PAR, f(g), f(u), a);
        assertClose("geglu", GeGlu.forwardReference(g, u), a, 1e-6);
        GeGlu.backward(PAR, f(da), f(g), f(u), dg, du);
        assertClose("dg", numericGradient(x -> GeGlu.forwardReference(x, u), g.clone(), da), dg, 1e-5);
        assertClose("du", numericGradient(x -> GeGlu.forwardReference(g, x), u.clone(), da), du, 1e-5);
        // gelu_tanh(1) = 0.8411919906082768 (torch.nn.functional.gelu(torch.tensor(1.0, dtype=float64), approximate="tanh"))
        assertEquals(0.8411919906082768, dev.tornadolora.math.GeluTanh.gelu(1f), 1e-7);
    }

    /**
     * A sliding window of W: query i sees keys i − W + 1 … i (transformers' kv_idx > q_idx − W), within its packed
     * example; forward against the reference, which states the mask, backward by finite differences; and a key
     * outside every window changes nothing.
     */
    @Test
    void attentionWithASlidingWindow() {
        int batch = 2, seq = 9, d = 4, heads = 4, kv = 2, window = 3;
        int[] positions = {0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 0, 1, 2, 3};  // row 1 packs two examples
        CausalAttention a = new CausalAttention(PAR, batch, seq, heads, kv, d,
                CausalAttention.segmentStarts(positions, batch, seq), window);
        double[] q = asFloat(random(batch * seq * heads * d)), k = asFloat(random(batch * seq * kv * d)),
                v = asFloat(random(k.length)), dOut = asFloat(random(q.length));
        float[] out = new float[q.length], lse = new float[batch * heads * seq];
        a.forward(f(q), f(k), f(v), out, lse);
        double[] ref = a.forwardReference(q, k, v);
        assertClose("windowed attention", ref, out, 1e-5);
        float[] dq = new float[q.length], dk = new float[k.length], dv = new float[v.length];
        a.backward(f(dOut), f(q), f(k), f(v), out, lse, dq, dk, dv);
        assertClose("dq", numericGradient(x -> a.forwardReference(x, k, v), q.clone(), dOut), dq, 1e-5);
        assertClose("dk", numericGradient(x -> a.forwardReference(q, x, v), k.clone(), dOut), dk, 1e-5);
        assertClose("dv", numericGradient(x -> a.forwardReference(q, k, x), v.clone(), dOut), dv, 1e-5);
        // Row 0's key 0 lies outside the window of queries 3…8: their outputs ignore it.
        double[] v2 = v.clone();
        for (int c = 0; c < kv * d; c++) v2[c] += 10;
        double[] moved = a.forwardReference(q, k, v2);
        for (int i = 3 * heads * d; i < seq * heads * d; i++) assertEquals(ref[i], moved[i], 1e-12, "row 0 element " + i);
        boolean changed = false;
        for (int i = 0; i < heads * d; i++) changed |= Math.abs(ref[i] - moved[i]) > 1e-3;
        assertTrue(changed, "query 0 sees key 0");
        // Without the window query 8 sees key 0.
        double[] full = new CausalAttention(PAR, batch, seq, heads, kv, d, null, 0).forwardReference(q, k, v2);
        assertTrue(Math.abs(full[8 * heads * d] - new CausalAttention(PAR, batch, seq, heads, kv, d, null, 0)
                .forwardReference(q, k, v)[8 * heads * d]) > 1e-6);
    }

    @Test
    void causalLmLossShiftsAndIgnores() {
        int batch = 2, seq = 4, vocab = 7;
        double[] z = asFloat(random(batch * seq * vocab));
        int[] labels = {3, -100, 5, 1, -100, 2, 6, 0};
        // Counted: (b0: s0→-100 no, s1→5, s2→1), (b1: s0→2, s1→6, s2→0); last positions never.
        assertEquals(5, CausalLmLoss.counted(labels, batch, seq));
        float[] dz = new float[z.length];
        double loss = CausalLmLoss.forward(PAR, f(z), labels, batch, seq, vocab, dz, 1.0);
        assertEquals(CausalLmLoss.forwardReference(z, labels, batch, seq, vocab), loss, 1e-6);
        double[] one = {1.0};
        double[] numeric = numericGradient(x -> new double[] {CausalLmLoss.forwardReference(x, labels, batch, seq, vocab)},
                z.clone(), one);
        assertClose("dloss/dlogits", numeric, dz, 1e-5);
        int[] none = {-100, -100, -100, -100, 1, -100, -100, -100};
        assertTrue(Double.isNaN(CausalLmLoss.forward(PAR, f(z), none, batch, seq, vocab, null, 1.0)), "0/0 as torch");
    }
}
