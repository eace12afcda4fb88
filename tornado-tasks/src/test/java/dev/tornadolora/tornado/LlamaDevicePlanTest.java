package dev.tornadolora.tornado;

import dev.tornadolora.device.Device;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.llama.RopeScaling;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.tornado.plan.LlamaDevicePlan;
import dev.tornadolora.train.AdamW;
import dev.tornadolora.train.GradClip;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole training step on the device (one {@link LlamaDevicePlan}) against the JVM backend on a tiny Llama
 * (GQA, llama3 rope, two layers; fp32 and NF4 bases): the same weights and batches, several steps of forward, loss, backward, clipping
 * and AdamW, with and without gradient accumulation. Losses within 1e-5 relative, every adapter within 1e-3 in the
 * Frobenius norm, and from the second step on the bus carries only the step's ids, targets and scalars in and the
 * loss and the norm out (besides TornadoVM's kernel-launch frames, which its profiler counts as bytes in).
 */
class LlamaDevicePlanTest {
    static final LlamaConfig CONFIG = new LlamaConfig(48, 32, 64, 2, 4, 2, 8, 1e-5, 10000.0,
            new RopeScaling(8, 1, 4, 16), false, 64, 0, 1, "float32");
    /** Large enough for NF4's blocks (64) and scaler blocks (256) in every projection. */
    static final LlamaConfig CONFIG_NF4 = new LlamaConfig(48, 128, 256, 2, 4, 4, 32, 1e-5, 10000.0,
            new RopeScaling(8, 1, 4, 16), false, 64, 0, 1, "float32");

    @ParameterizedTest(name = "{0}, accumulation {1}, NF4 base {2}")
    @CsvSource({"qv,1,false", "all,2,false", "qv,1,true"})
    void stepsOnTheDeviceMatchTheJvmBackend(String modules, int micro, boolean nf4) {
        boolean all = modules.equals("all");
        LoraSettings lora = new LoraSettings(all ? Set.copyOf(LoraSettings.ATTN_MODULES) : Set.of("q_proj", "v_proj"),
                all, false, 4, 8f, 0f, false, nf4);
        LlamaConfig config = nf4 ? CONFIG_NF4 : CONFIG;
        try (Device host = Device.open("jvm")) {
            run(config, lora, micro, host);
        }
    }

    private void run(LlamaConfig config, LoraSettings lora, int micro, Device host) {
        int batch = 2, seq = 6, steps = 3;
        double lr = 5e-3, maxNorm = 1.0, wd = 0.01;
        LlamaForCausalLM jvm = LlamaForCausalLM.random(config, lora, 11, host);
        LlamaForCausalLM dev = LlamaForCausalLM.random(config, lora, 11, host);
        List<Parameter> params = jvm.trainableParameters();
        AdamW adam = new AdamW(params, lr, AdamW.DEFAULT_BETA1, AdamW.DEFAULT_BETA2, AdamW.DEFAULT_EPS, wd);
        var opt = new LlamaDevicePlan.Optimizer(AdamW.DEFAULT_BETA1, AdamW.DEFAULT_BETA2, AdamW.DEFAULT_EPS, wd, maxNorm);
        SplittableRandom rng = new SplittableRandom(5);
        try (LlamaDevicePlan plan = new LlamaDevicePlan(dev, batch, seq, opt, null, true)) {
            for (int step = 1; step <= steps; step++) {
                jvm.zeroGrad();
                for (int mb = 0; mb < micro; mb++) {
                    int[] ids = new int[batch * seq], labels = new int[batch * seq];
                    for (int i = 0; i < ids.length; i++) {
                        ids[i] = rng.nextInt(config.vocabSize());
                        labels[i] = rng.nextInt(5) == 0 ? -100 : rng.nextInt(config.vocabSize());
                    }
                    double want = jvm.forwardBackward(ids, labels, batch, seq, 1.0 / micro);
                    double got = plan.forwardBackward(ids, labels, 1.0 / micro);
                    assertEquals(want, got, Math.abs(want) * 1e-5, "loss, step " + step + " micro-batch " + mb);
                }
                double wantNorm = GradClip.clipGradNorm(params, maxNorm);
                adam.step();
                double gotNorm = plan.step(lr);
                assertEquals(wantNorm, gotNorm, wantNorm * 1e-4, "grad norm, step " + step);
                LlamaDevicePlan.StepProfile p = plan.takeProfile();
                if (step > 1) {  // the weights and adapters stay: ids, targets, scalars in; loss and norm out
                    long frames = (long) LlamaDevicePlan.FRAME_BYTES * p.launches();
                    long budget = 2L * micro * (2L * batch * seq * Integer.BYTES) + 4096;
                    assertTrue(p.copyInBytes() - frames + p.copyOutBytes() <= budget, "step " + step + " moved "
                            + p.copyInBytes() + " B in (" + frames + " B of launch frames) and " + p.copyOutBytes()
                            + " B out, over " + budget);
                }
            }
            plan.adaptersToHost();
        }
        Map<String, Tensor> want = jvm.adapterStateDict(), got = dev.adapterStateDict();
        assertEquals(want.keySet(), got.keySet());
        for (String k : want.keySet()) {
            float[] a = want.get(k).data(), b = got.get(k).data();
            double diff = 0, norm = 0;
            for (int i = 0; i < a.length; i++) {
                diff += (a[i] - (double) b[i]) * (a[i] - (double) b[i]);
                norm += (double) a[i] * a[i];
            }
            assertTrue(Math.sqrt(diff) <= 1e-3 * Math.sqrt(norm), k + ": ‖Δ‖/‖θ‖ = " + Math.sqrt(diff / norm));
        }
    }
}
