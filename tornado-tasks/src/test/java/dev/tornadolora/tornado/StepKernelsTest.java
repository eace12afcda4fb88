package dev.tornadolora.tornado;

import dev.tornadolora.kernels.Parallel;
import dev.tornadolora.llama.RopeScaling;
import dev.tornadolora.llama.ops.CausalAttention;
import dev.tornadolora.llama.ops.CausalLmLoss;
import dev.tornadolora.llama.ops.RmsNorm;
import dev.tornadolora.llama.ops.Rope;
import dev.tornadolora.llama.ops.SwiGlu;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tensor.BFloat16;
import dev.tornadolora.tensor.HalfWeight;
import dev.tornadolora.tornado.kernels.AttentionKernels;
import dev.tornadolora.tornado.kernels.CausalLmLossKernels;
import dev.tornadolora.tornado.kernels.EmbeddingKernels;
import dev.tornadolora.tornado.kernels.HalfDecode;
import dev.tornadolora.tornado.kernels.OptimizerKernels;
import dev.tornadolora.tornado.kernels.RmsNormKernels;
import dev.tornadolora.tornado.kernels.RopeKernels;
import dev.tornadolora.tornado.kernels.SwiGluKernels;
import dev.tornadolora.train.AdamW;
import dev.tornadolora.train.GradClip;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;
import uk.ac.manchester.tornado.api.types.collections.VectorFloat16;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every op of the training step as a TornadoVM kernel against its JVM twin (the code the JVM backend runs, in
 * {@code dev.tornadolora.llama.ops} and {@code dev.tornadolora.train}) on the same inputs, bailouts disabled. The
 * twins themselves are tested against PyTorch and their scalar references in the core module.
 */
class StepKernelsTest {
    /** The JVM twins' executor (two threads, as on this machine). */
    static final Parallel PAR = new Parallel(2);

    /** Largest |expected − actual| over the largest |expected|: fp32 sums in another order, exp within 2 ulp. */
    static final double TOL = 1e-5;

    static float[] random(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (r.nextDouble() * 2 - 1);
        return v;
    }

    static void assertClose(float[] expected, float[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < expected.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs((double) expected[i] - actual[i]));
            maxRef = Math.max(maxRef, Math.abs(expected[i]));
        }
        double rel = maxDiff / Math.max(maxRef, 1e-30);
        assertTrue(rel <= tol && !Double.isNaN(rel), what + ": relative error " + rel + " (max |expected| " + maxRef + ")");
    }

    /** Runs a graph once (its inputs already named by the caller) and brings {@code outputs} back. */
    static void runOnce(TaskGraph g, Object... outputs) throws Exception {
        g.transferToHost(DataTransferMode.EVERY_EXECUTION, outputs);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            plan.execute();
        }
    }

    @Test
    void embeddingGatherAndCopy() throws Exception {
        int vocab = 11, hidden = 6, tokens = 9;
        float[] table = random(vocab * hidden, 1);
        int[] ids = {3, 0, 10, 3, 7, 1, 2, 9, 5};
        FloatArray tableD = FloatArray.fromArray(table), x = new FloatArray(tokens * hidden);
        FloatArray copied = new FloatArray(tokens * hidden);
        IntArray idsD = IntArray.fromArray(ids);
        TaskGraph g = new TaskGraph("emb").transferToDevice(DataTransferMode.FIRST_EXECUTION, idsD, tableD, copied)
                .task("gather", EmbeddingKernels::gather, idsD, tableD, x, tokens, hidden)
                .task("copy", EmbeddingKernels::copy, x, copied, tokens * hidden);
        runOnce(g, x, copied);
        float[] expected = new float[tokens * hidden];
        for (int t = 0; t < tokens; t++) System.arraycopy(table, ids[t] * hidden, expected, t * hidden, hidden);
        assertArrayEquals(expected, x.toHeapArray(), "gather");
        assertArrayEquals(expected, copied.toHeapArray(), "copy");
    }

    /**
     * Forward and backward, and the fused residual adds the device plan uses (the forward's x + residual written
     * back into x, the backward's dy + dy2) against the JVM's add then norm: bit for bit, as the plan's parity needs.
     */
    @ParameterizedTest(name = "rows={0} d={1}")
    @CsvSource({"5,24", "3,64"})
    void rmsNormMatchesTheJvmOp(int rows, int d) throws Exception {
        float eps = 1e-5f;
        float[] x = random(rows * d, 3), w = random(d, 4), dy = random(rows * d, 5), res = random(rows * d, 6);
        float[] y = new float[rows * d], inv = new float[rows], dx = res.clone();
        RmsNorm.forward(PAR, x, w, rows, d, eps, y, inv);
        RmsNorm.backward(PAR, dy, x, w, inv, rows, d, dx, true);
        float[] dxFresh = new float[rows * d];
        RmsNorm.backward(PAR, dy, x, w, inv, rows, d, dxFresh, false);
        float[] branch = random(rows * d, 7), dy2 = random(rows * d, 8);
        float[] h = branch.clone(), yRes = new float[rows * d], invRes = new float[rows], dySum = dy.clone();
        float[] dxSum = res.clone();
        for (int i = 0; i < h.length; i++) h[i] += x[i];
        RmsNorm.forward(PAR, h, w, rows, d, eps, yRes, invRes);
        for (int i = 0; i < dySum.length; i++) dySum[i] += dy2[i];
        RmsNorm.backward(PAR, dySum, x, w, inv, rows, d, dxSum, true);

        FloatArray xD = FloatArray.fromArray(x), wD = FloatArray.fromArray(w), dyD = FloatArray.fromArray(dy);
        FloatArray yD = new FloatArray(rows * d), invD = new FloatArray(rows), none = new FloatArray(1);
        FloatArray dxD = FloatArray.fromArray(res), dxFreshD = new FloatArray(rows * d);
        FloatArray hD = FloatArray.fromArray(branch), yResD = new FloatArray(rows * d), invResD = new FloatArray(rows);
        FloatArray dy2D = FloatArray.fromArray(dy2), dxSumD = FloatArray.fromArray(res);
        TaskGraph g = new TaskGraph("norm").transferToDevice(DataTransferMode.FIRST_EXECUTION, xD, wD, dyD, dxD, none,
                        hD, dy2D, dxSumD)
                .task("fwd", RmsNormKernels::forward, xD, none, wD, yD, invD, rows, d, eps, 0)
                .task("bwd", RmsNormKernels::backward, dyD, none, xD, wD, invD, dxD, rows, d, 1, 0)
                .task("bwdFresh", RmsNormKernels::backward, dyD, none, xD, wD, invD, dxFreshD, rows, d, 0, 0)
                .task("fwdResidual", RmsNormKernels::forward, hD, xD, wD, yResD, invResD, rows, d, eps, 1)
                .task("bwdSum", RmsNormKernels::backward, dyD, dy2D, xD, wD, invD, dxSumD, rows, d, 1, 1);
        runOnce(g, yD, invD, dxD, dxFreshD, hD, yResD, invResD, dxSumD);
        assertClose(y, yD.toHeapArray(), TOL, "y");
        assertClose(inv, invD.toHeapArray(), TOL, "1/rms");
        assertClose(dx, dxD.toHeapArray(), TOL, "dx accumulated");
        assertClose(dxFresh, dxFreshD.toHeapArray(), TOL, "dx");
        assertArrayEquals(h, hD.toHeapArray(), "x + residual, stored back");
        assertClose(yRes, yResD.toHeapArray(), TOL, "y of x + residual");
        assertClose(invRes, invResD.toHeapArray(), TOL, "1/rms of x + residual");
        assertClose(dxSum, dxSumD.toHeapArray(), TOL, "dx of dy + dy2");
    }

    @Test
    void ropeWithLlama3ScalingMatchesTheJvmOp() throws Exception {
        int batch = 2, seq = 7, heads = 3, headDim = 16, half = headDim / 2;
        Rope rope = new Rope(headDim, 500000.0, new RopeScaling(8, 1, 4, 4));
        Rope.Tables tables = rope.tables(seq);
        float[] x = random(batch * seq * heads * headDim, 7), dy = random(x.length, 8);
        float[] y = x.clone(), dx = dy.clone();
        rope.apply(PAR, y, batch * seq, heads, tables, false);
        rope.apply(PAR, dx, batch * seq, heads, tables, true);

        FloatArray yD = FloatArray.fromArray(x), dxD = FloatArray.fromArray(dy);
        FloatArray cos = FloatArray.fromArray(tables.cos()), sin = FloatArray.fromArray(tables.sin());
        TaskGraph g = new TaskGraph("rope").transferToDevice(DataTransferMode.FIRST_EXECUTION, yD, dxD, cos, sin)
                .task("fwd", RopeKernels::rotateHalves, yD, cos, sin, seq, batch, heads, headDim, half, 1f)
                .task("bwd", RopeKernels::rotateHalves, dxD, cos, sin, seq, batch, heads, headDim, half, -1f);
        runOnce(g, yD, dxD);
        assertClose(y, yD.toHeapArray(), TOL, "rope");
        assertClose(dx, dxD.toHeapArray(), TOL, "rope backward");
    }

    @Test
    void swiGluMatchesTheJvmOp() throws Exception {
        int n = 333;
        float[] gate = random(n, 9), up = random(n, 10), da = random(n, 11);
        for (int i = 0; i < n; i++) gate[i] *= 6;  // both tails of the sigmoid
        float[] a = new float[n], dg = new float[n], du = new float[n];
        SwiGlu.forward(PAR, gate, up, a);
        SwiGlu.backward(PAR, da, gate, up, dg, du);

        FloatArray gD = FloatArray.fromArray(gate), uD = FloatArray.fromArray(up), daD = FloatArray.fromArray(da);
        FloatArray aD = new FloatArray(n), dgD = new FloatArray(n), duD = new FloatArray(n);
        TaskGraph g = new TaskGraph("swiglu").transferToDevice(DataTransferMode.FIRST_EXECUTION, gD, uD, daD)
                .task("fwd", SwiGluKernels::forward, gD, uD, aD, n)
                .task("bwd", SwiGluKernels::backward, daD, gD, uD, dgD, duD, n);
        runOnce(g, aD, dgD, duD);
        assertClose(a, aD.toHeapArray(), TOL, "a");
        assertClose(dg, dgD.toHeapArray(), TOL, "dg");
        assertClose(du, duD.toHeapArray(), TOL, "du");
    }

    @ParameterizedTest(name = "B={0} S={1} H={2} KV={3} d={4}")
    // the third: S past two blocks of 16, d past one; the last: head_dim not a multiple of 4, below one block
    @CsvSource({"2,7,4,2,8", "1,5,3,3,4", "1,37,4,1,20", "1,9,2,1,6"})
    void causalAttentionMatchesTheJvmOp(int batch, int seq, int heads, int kvHeads, int headDim) throws Exception {
        int t = batch * seq, qw = heads * headDim, kw = kvHeads * headDim, rep = heads / kvHeads;
        float scale = (float) (1.0 / Math.sqrt(headDim));
        float[] q = random(t * qw, 12), k = random(t * kw, 13), v = random(t * kw, 14), dOut = random(t * qw, 15);
        for (int i = 0; i < q.length; i++) q[i] *= 3;  // peaked rows, so the softmax's max matters
        CausalAttention jvm = new CausalAttention(PAR, batch, seq, heads, kvHeads, headDim);
        float[] out = new float[t * qw], lse = new float[batch * heads * seq];
        float[] dq = new float[q.length], dk = new float[k.length], dv = new float[v.length];
        jvm.forward(q, k, v, out, lse);
        jvm.backward(dOut, q, k, v, out, lse, dq, dk, dv);

        FloatArray qD = FloatArray.fromArray(q), kD = FloatArray.fromArray(k), vD = FloatArray.fromArray(v);
        FloatArray dOutD = FloatArray.fromArray(dOut), outD = new FloatArray(t * qw);
        FloatArray lseD = new FloatArray(batch * heads * seq), p = new FloatArray(batch * heads * seq * seq);
        FloatArray ds = new FloatArray(batch * heads * seq * seq);
        FloatArray dqD = new FloatArray(q.length), dkD = new FloatArray(k.length), dvD = new FloatArray(v.length);
        int blocks = (seq + 15) / 16, dBlocks = (headDim + 15) / 16;
        VectorFloat16 kb = new VectorFloat16(batch * kvHeads * headDim * blocks);
        VectorFloat16 vb = new VectorFloat16(t * kvHeads * dBlocks);
        VectorFloat16 vCols = new VectorFloat16(batch * kvHeads * headDim * blocks);
        VectorFloat16 kRows = new VectorFloat16(t * kvHeads * dBlocks), qRows = new VectorFloat16(t * heads * dBlocks);
        VectorFloat16 dOutRows = new VectorFloat16(t * heads * dBlocks);
        TaskGraph g = new TaskGraph("attn")
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, qD, kD, vD, dOutD, kb, vb, vCols, kRows, qRows,
                        dOutRows)
                // as the device plan: the forward's k blocks kept for the backward, two layouts a launch
                .task("keyValueBlocks", AttentionKernels::keyValueBlocks, kD, vD, kb, vb, seq, kvHeads, batch,
                        headDim, blocks, dBlocks)
                .task("forward", AttentionKernels::forward, qD, kb, vb, p, outD, lseD, seq, kvHeads, batch, rep,
                        headDim, scale, blocks, dBlocks)
                .task("valueKeyBlocks", AttentionKernels::keyValueBlocks, vD, kD, vCols, kRows, seq, kvHeads, batch,
                        headDim, blocks, dBlocks)
                .task("queryOutRows", AttentionKernels::rowBlocks, qD, dOutD, qRows, dOutRows, t, heads, headDim,
                        dBlocks)
                .task("scoreGradients", AttentionKernels::scoreGradients, qD, kb, vCols, outD, dOutD, lseD, p, ds,
                        seq, kvHeads, batch, rep, headDim, scale, blocks)
                .task("queryGradients", AttentionKernels::queryGradients, ds, kRows, dqD, seq, kvHeads, batch, rep,
                        headDim, dBlocks)
                .task("keyValueGradients", AttentionKernels::keyValueGradients, ds, p, qRows, dOutRows, dkD, dvD,
                        seq, kvHeads, batch, rep, headDim, dBlocks);
        runOnce(g, outD, lseD, dqD, dkD, dvD);
        assertClose(out, outD.toHeapArray(), TOL, "O");
        assertClose(lse, lseD.toHeapArray(), TOL, "lse");
        assertClose(dq, dqD.toHeapArray(), TOL, "dq");
        assertClose(dk, dkD.toHeapArray(), TOL, "dk");
        assertClose(dv, dvD.toHeapArray(), TOL, "dv");
    }

    /**
     * lm_head + loss in chunks of 4 rows (the last one partial) against the full logits on the JVM, W in fp32 or as
     * BF16/F16 values decoded in the kernels' loops (the JVM then computing on them widened).
     */
    @ParameterizedTest(name = "W {0}")
    @CsvSource({"fp32", "BF16", "F16"})
    void chunkedHeadAndLossMatchTheJvmOp(String storage) throws Exception {
        int batch = 2, seq = 5, vocab = 37, hidden = 12, tokens = batch * seq, chunkRows = 4;
        float[] n = random(tokens * hidden, 16), w = random(vocab * hidden, 17);
        HalfWeight.Format format = storage.equals("fp32") ? null : HalfWeight.Format.valueOf(storage);
        short[] bits = new short[w.length];
        for (int i = 0; i < w.length && format != null; i++) {
            bits[i] = format == HalfWeight.Format.BF16 ? BFloat16.fromFloat(w[i]) : Float.floatToFloat16(w[i]);
        }
        if (format != null) w = new HalfWeight(vocab, hidden, bits, format).dequantize();
        for (int i = 0; i < n.length; i++) n[i] *= 4;
        int[] labels = {5, 3, -100, 36, 0, 7, 7, 2, -100, 1};
        double gradScale = 0.5;
        float[] z = new float[tokens * vocab];
        for (int t = 0; t < tokens; t++) {
            for (int v = 0; v < vocab; v++) {
                float acc = 0f;
                for (int k = 0; k < hidden; k++) acc += n[t * hidden + k] * w[v * hidden + k];
                z[t * vocab + v] = acc;
            }
        }
        float[] dz = new float[z.length];
        double loss = CausalLmLoss.forward(PAR, z, labels, batch, seq, vocab, dz, gradScale);
        float[] dn = new float[tokens * hidden];
        for (int t = 0; t < tokens; t++) {
            for (int k = 0; k < hidden; k++) {
                float acc = 0f;
                for (int v = 0; v < vocab; v++) acc += dz[t * vocab + v] * w[v * hidden + k];
                dn[t * hidden + k] = acc;
            }
        }
        long counted = CausalLmLoss.counted(labels, batch, seq);
        int[] targets = new int[tokens];
        for (int t = 0; t < tokens; t++) targets[t] = CausalLmLoss.target(labels, seq, t);

        FloatArray nD = FloatArray.fromArray(n), wD = FloatArray.fromArray(w), zD = new FloatArray(chunkRows * vocab);
        FloatArray scalars = FloatArray.fromArray(new float[] {(float) (gradScale / counted)});
        FloatArray rowLoss = new FloatArray(tokens), dnD = new FloatArray(tokens * hidden), total = new FloatArray(1);
        IntArray targetsD = IntArray.fromArray(targets), chunk = new IntArray(1);
        ShortArray halves = format == null ? new ShortArray(1) : ShortArray.fromArray(bits);
        FloatArray powers = format == null ? new FloatArray(1) : FloatArray.fromArray(HalfDecode.powers(format));
        int mBits = format == null ? 0 : HalfDecode.mantissaBits(format);
        TaskGraph head = new TaskGraph("head")
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, nD, wD, halves, powers, scalars, targetsD, chunk,
                        zD, dnD)
                .task("logits", CausalLmLossKernels::logits, nD, wD, halves, powers, zD, chunk, vocab, chunkRows,
                        hidden, tokens, mBits)
                .task("rows", CausalLmLossKernels::rows, zD, targetsD, scalars, rowLoss, chunk, chunkRows, vocab,
                        tokens, 1)
                .task("dn", CausalLmLossKernels::inputGradients, zD, wD, halves, powers, dnD, chunk, hidden, chunkRows,
                        vocab, tokens, mBits)
                .task("advance", CausalLmLossKernels::advance, chunk, chunkRows)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, dnD)
                .persistOnDevice(rowLoss, chunk, targetsD, scalars);
        TaskGraph sum = new TaskGraph("sum").consumeFromDevice("head", rowLoss, chunk, targetsD, scalars)
                .task("total", CausalLmLossKernels::total, rowLoss, total, tokens)
                .task("restart", CausalLmLossKernels::restart, chunk, targetsD, scalars)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, total);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(head.snapshot(), sum.snapshot())) {
            for (int step = 0; step < 2; step++) {  // twice: the restart puts the chunk back to row 0
                for (int c = 0; c < tokens; c += chunkRows) plan.withGraph(0).execute();
                plan.withGraph(1).execute();
                assertEquals(loss, total.get(0) / counted, Math.abs(loss) * TOL, "loss, step " + step);
                assertClose(dn, dnD.toHeapArray(), TOL, "dn, step " + step);
            }
        }
    }

    /** clip_grad_norm_ and three AdamW steps over two tensors end to end, against GradClip and AdamW. */
    @ParameterizedTest(name = "maxNorm={0}")
    @CsvSource({"0.5", "0"})
    void clippingAndAdamWMatchTheJvmOptimizer(double maxNorm) throws Exception {
        int[] sizes = {24, 40};
        double lr = 2e-3, wd = 0.01;
        List<Parameter> params = new ArrayList<>();
        int total = 0;
        for (int i = 0; i < sizes.length; i++) {
            params.add(new Parameter("p" + i, new int[] {sizes[i]}, random(sizes[i], 20 + i), new float[sizes[i]]));
            total += sizes[i];
        }
        float[] theta0 = new float[total];
        int[] offsets = new int[sizes.length + 1];
        for (int i = 0; i < sizes.length; i++) {
            offsets[i + 1] = offsets[i] + sizes[i];
            System.arraycopy(params.get(i).data(), 0, theta0, offsets[i], sizes[i]);
        }
        AdamW adam = new AdamW(params, lr, AdamW.DEFAULT_BETA1, AdamW.DEFAULT_BETA2, AdamW.DEFAULT_EPS, wd);

        FloatArray theta = FloatArray.fromArray(theta0), grads = new FloatArray(total);
        FloatArray m = new FloatArray(total), v = new FloatArray(total), hyper = new FloatArray(3);
        FloatArray norms = new FloatArray(sizes.length), stats = new FloatArray(2);
        IntArray offsetsD = IntArray.fromArray(offsets);
        int clip = maxNorm > 0 ? 1 : 0;
        float b1 = (float) AdamW.DEFAULT_BETA1, b2 = (float) AdamW.DEFAULT_BETA2;
        TaskGraph g = new TaskGraph("opt")
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, theta, m, v, offsetsD)
                .transferToDevice(DataTransferMode.EVERY_EXECUTION, grads, hyper)
                .task("norms", OptimizerKernels::tensorNorms, grads, offsetsD, norms, sizes.length)
                .task("factor", OptimizerKernels::clipFactor, norms, stats, sizes.length, (float) maxNorm, clip)
                .task("scale", OptimizerKernels::scale, grads, stats, total)
                .task("adamw", OptimizerKernels::adamW, theta, grads, m, v, hyper, total, b1, b2,
                        (float) (1 - AdamW.DEFAULT_BETA1), (float) (1 - AdamW.DEFAULT_BETA2),
                        (float) AdamW.DEFAULT_EPS)
                .transferToHost(DataTransferMode.EVERY_EXECUTION, theta, stats);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            for (int step = 1; step <= 3; step++) {
                for (int i = 0; i < sizes.length; i++) {
                    float[] gr = random(sizes[i], 100 * step + i);
                    for (int e = 0; e < sizes[i]; e++) gr[e] *= 0.3f * step;
                    System.arraycopy(gr, 0, params.get(i).grad(), 0, sizes[i]);
                    for (int e = 0; e < sizes[i]; e++) grads.set(offsets[i] + e, gr[e]);
                }
                double norm = maxNorm > 0 ? GradClip.clipGradNorm(params, maxNorm) : GradClip.globalNorm(params);
                adam.step();
                OptimizerKernels.hyper(lr, AdamW.DEFAULT_BETA1, AdamW.DEFAULT_BETA2, wd, step, hyper);
                plan.execute();
                assertEquals(norm, stats.get(0), norm * TOL, "grad norm, step " + step);
                float[] expected = new float[total];
                for (int i = 0; i < sizes.length; i++) {
                    System.arraycopy(params.get(i).data(), 0, expected, offsets[i], sizes[i]);
                }
                assertClose(expected, theta.toHeapArray(), TOL, "θ after step " + step);
            }
        }
    }
}
