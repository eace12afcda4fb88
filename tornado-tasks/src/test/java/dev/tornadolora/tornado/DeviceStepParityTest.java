package dev.tornadolora.tornado;

import dev.tornadolora.bench.ModelStep;
import dev.tornadolora.device.Device;
import dev.tornadolora.finetune.DeviceStep;
import dev.tornadolora.finetune.FinetuneConfig;
import dev.tornadolora.finetune.TokenDataset;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.math.CrossEntropy;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.tornado.plan.LlamaDevicePlan;
import dev.tornadolora.train.Trainer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Twenty optimizer steps of {@code finetune}'s path on the device ({@link DeviceStep} → {@link PlanDeviceStep} →
 * one {@link LlamaDevicePlan}) against the same steps on the JVM backend ({@link Trainer#step()}), on the bench's
 * {@code small} model ({@link ModelStep#SMALL}: 2 layers, hidden 256, 8 query / 2 KV heads of 32, intermediate 512,
 * vocab 512, 2 × 32 tokens, every projection whole NF4 blocks) with its LoRA (rank 16, alpha 32), cosine schedule
 * with warm-up, clipping, weight decay: every step's loss within 1e-5 relative, gradient norms within 1e-4, every
 * adapter tensor within 1e-3 in the Frobenius norm at the end, and from the second step on the bus carries at most
 * the budget per micro-batch, fp32 and NF4 alike: 2 × (ids + labels bytes) + 4 KiB, frames included. Two cases, fp32 base with LoRA on q,v and one
 * micro-batch per step, and QLoRA (NF4 base) on all seven with two: each choice once, because compiling a plan's
 * kernels (a few hundred) takes most of the test's time on PoCL. The shapes, rank and optimizer constants are the
 * bench's on purpose: TornadoVM compiles them into the kernels, so the fp32 plan's kernels are the ones
 * {@link TornadoBenchStepTest} compiles (PoCL's kernel cache builds them once per run), and the NF4 plan is the
 * only QLoRA step plan of the module ({@link LlamaDevicePlanTest} adds fp32 on all seven with two micro-batches).
 * All four combinations of base and modules passed here with the other accumulation too when the test was written.
 */
class DeviceStepParityTest {
    static final LlamaConfig CONFIG = ModelStep.SMALL;
    static final int BATCH = 2, SEQ = 32, STEPS = 20, RANK = 16;

    @ParameterizedTest(name = "NF4 base {0}, LoRA on {1}, {2} micro-batch(es)")
    @CsvSource({"false,qv,1", "true,all,2"})
    void twentyStepsOnTheDeviceMatchTheJvmBackend(boolean nf4, String modules, int accum) {
        ModelStep shape = ModelStep.of("small", modules.equals("all"));
        assertEquals(BATCH, shape.batch());
        assertEquals(SEQ, shape.seq());
        LoraSettings lora = shape.lora(RANK, nf4);
        FinetuneConfig config = new FinetuneConfig(lora, STEPS, BATCH, accum, SEQ, 2e-3, 0.01, 0.9, 0.999, 1e-8, 3,
                FinetuneConfig.COSINE, 1.0, 7, true, 0, 0);
        TokenDataset data = data(16, 3);
        double[] want = new double[STEPS], got = new double[STEPS], wantNorm = new double[STEPS], gotNorm = new double[STEPS];
        Map<String, Tensor> wantAdapters, gotAdapters;
        try (Device jvm = Device.open("jvm")) {
            LlamaForCausalLM model = LlamaForCausalLM.random(CONFIG, lora, 11, jvm);
            Trainer t = dev.tornadolora.finetune.Finetuner.trainer(model, data, config);
            for (int s = 0; s < STEPS; s++) {
                Trainer.StepRecord r = t.step();
                want[s] = r.loss();
                wantNorm[s] = r.gradNorm();
            }
            wantAdapters = model.adapterStateDict();
        }
        try (Device tornado = Device.open("tornado:0:0")) {
            LlamaForCausalLM model = LlamaForCausalLM.random(CONFIG, lora, 11, tornado);
            Trainer t = dev.tornadolora.finetune.Finetuner.trainer(model, data, config);
            try (DeviceStep d = DeviceStep.find(t).orElseThrow()) {
                assertTrue(d instanceof PlanDeviceStep, d.describe());
                for (int s = 0; s < STEPS; s++) {
                    Trainer.StepRecord r = d.step(t);
                    got[s] = r.loss();
                    gotNorm[s] = r.gradNorm();
                    if (s > 0) {  // the weights, adapters and moments stay on the device
                        Map<String, Double> st = d.lastStepStats();
                        double moved = st.get("copy_in_bytes") + st.get("copy_out_bytes");
                        long budget = accum * (2L * (2L * BATCH * SEQ * Integer.BYTES) + 4096);
                        assertTrue(moved >= 2L * BATCH * SEQ * Integer.BYTES && moved <= budget,
                                "step " + (s + 1) + " moved " + st + ", budget " + budget);
                    }
                }
                d.toHost();
            }
            gotAdapters = model.adapterStateDict();
        }
        double worstLoss = 0;
        for (int s = 0; s < STEPS; s++) {
            double rel = Math.abs(got[s] - want[s]) / Math.abs(want[s]);
            worstLoss = Math.max(worstLoss, rel);
            assertTrue(rel <= 1e-5, "step " + (s + 1) + ": jvm " + want[s] + ", device " + got[s]);
            assertEquals(wantNorm[s], gotNorm[s], wantNorm[s] * 1e-4, "gradient norm, step " + (s + 1));
        }
        double worstAdapter = assertAdaptersClose(wantAdapters, gotAdapters);
        System.out.printf("parity nf4=%s %s accum %d: worst step loss %.2e relative, worst adapter %.2e%n", nf4,
                modules, accum, worstLoss, worstAdapter);
    }

    /** Every adapter tensor within 1e-3 of the JVM's in the Frobenius norm, ‖Δ‖/‖θ‖; returns the worst. */
    static double assertAdaptersClose(Map<String, Tensor> want, Map<String, Tensor> got) {
        assertEquals(want.keySet(), got.keySet());
        double worst = 0;
        for (String k : want.keySet()) {
            float[] a = want.get(k).data(), b = got.get(k).data();
            double diff = 0, norm = 0;
            for (int i = 0; i < a.length; i++) {
                diff += (a[i] - (double) b[i]) * (a[i] - (double) b[i]);
                norm += (double) a[i] * a[i];
            }
            double rel = Math.sqrt(diff / norm);
            worst = Math.max(worst, rel);
            assertTrue(rel <= 1e-3, k + ": ‖Δ‖/‖θ‖ = " + rel);
        }
        return worst;
    }

    /** {@code rows} random rows of {@link #SEQ} tokens, a few labels masked (-100) as a chat template would. */
    static TokenDataset data(int rows, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        int[][] ids = new int[rows][SEQ], labels = new int[rows][SEQ];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < SEQ; i++) {
                ids[r][i] = rng.nextInt(CONFIG.vocabSize());
                labels[r][i] = i < 4 ? CrossEntropy.IGNORE_INDEX : ids[r][i];
            }
        }
        return TokenDataset.of("random", ids, labels);
    }
}
