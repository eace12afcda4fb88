package dev.tornadolora.tornado;

import dev.tornadolora.device.Device;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.llama.RopeScaling;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tornado.plan.LlamaDevicePlan;
import dev.tornadolora.train.AdamW;
import dev.tornadolora.train.GradClip;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The device plan's own API ({@link LlamaDevicePlan#forwardBackward}, {@link LlamaDevicePlan#step},
 * {@link LlamaDevicePlan#loss}) against the JVM backend on a tiny Llama (GQA, llama3 rope, two layers, LoRA on all
 * seven projections, two micro-batches per step) with rows of 256 tokens, the benchmark configuration's
 * (twenty steps of every shape and base against {@code Trainer}: {@link DeviceStepParityTest}). Losses within 1e-5
 * relative, gradient norms within 1e-4, every adapter within 1e-3 in the Frobenius norm; an evaluation between
 * micro-batches (one row, padded on the device) equals the JVM's loss and changes nothing; and from the second step
 * on the bus carries at most 2 × (ids + labels bytes) + 4 KiB per step, as TornadoVM's profiler counts it: the
 * step's ids, targets and scalars in, the loss and the norm out, and TornadoVM's 24-byte frame per kernel launch.
 */
class LlamaDevicePlanTest {
    static final LlamaConfig CONFIG = new LlamaConfig(48, 32, 64, 2, 4, 2, 8, 1e-5, 10000.0,
            new RopeScaling(8, 1, 4, 16), false, 256, 0, 1, "float32");

    @Test
    void stepsOnTheDeviceMatchTheJvmBackend() {
        LoraSettings lora = new LoraSettings(Set.copyOf(LoraSettings.ATTN_MODULES), true, false, 4, 8f, 0f, false,
                false);
        try (Device host = Device.open("jvm")) {
            run(CONFIG, lora, 2, host);
        }
    }

    private void run(LlamaConfig config, LoraSettings lora, int micro, Device host) {
        int batch = 2, seq = 256, steps = 3;
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
                    if (step == 2 && mb == 0) {  // an evaluation of one row amid the accumulation
                        int[] row = java.util.Arrays.copyOf(ids, seq), rowLabels = java.util.Arrays.copyOf(labels, seq);
                        double wantEval = jvm.loss(row, rowLabels, 1, seq), gotEval = plan.loss(row, rowLabels);
                        assertEquals(wantEval, gotEval, Math.abs(wantEval) * 1e-5, "evaluation loss, step " + step);
                        plan.takeProfile();  // the evaluation's bytes are not the step's
                    }
                }
                double wantNorm = GradClip.clipGradNorm(params, maxNorm);
                adam.step();
                double gotNorm = plan.step(lr);
                assertEquals(wantNorm, gotNorm, wantNorm * 1e-4, "grad norm, step " + step);
                LlamaDevicePlan.StepProfile p = plan.takeProfile();
                if (step > 1) {  // the weights and adapters stay: ids, targets, scalars in; loss and norm out
                    long frames = (long) LlamaDevicePlan.FRAME_BYTES * p.launches();
                    long budget = 2L * micro * (2L * batch * seq * Integer.BYTES) + 4096;
                    String moved = "step " + step + " moved " + p.copyInBytes() + " B in (" + frames + " B of them the "
                            + p.launches() + " launch frames) and " + p.copyOutBytes() + " B out; budget " + budget;
                    System.out.println(moved);
                    assertTrue(p.copyInBytes() + p.copyOutBytes() <= budget, moved);
                }
            }
            plan.adaptersToHost();
        }
        DeviceStepParityTest.assertAdaptersClose(jvm.adapterStateDict(), dev.adapterStateDict());
    }
}
