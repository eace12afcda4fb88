package dev.tornadolora.finetune;

import dev.tornadolora.testing.Golden;
import dev.tornadolora.testing.TestDevices;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.math.CrossEntropy;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.train.Trainer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The loop's arithmetic: accumulation, data-parallel shares, resume; the loss checked against the model's own. */
class FinetunerTest {
    static final LlamaConfig CONFIG = new LlamaConfig(32, 16, 32, 2, 2, 1, 8, 1e-5, 10000.0, null, false, 64, 0, 1,
            "float32");
    static final LoraSettings LORA = new LoraSettings(Set.of("q_proj", "v_proj"), true, false, 2, 4f, 0f, false, false);

    static Map<String, Tensor> weights() {
        SplittableRandom rng = new SplittableRandom(1);
        Map<String, Tensor> w = new LinkedHashMap<>();
        int h = CONFIG.hiddenSize();
        w.put("model.embed_tokens.weight", rand(rng, 1, CONFIG.vocabSize(), h));
        for (int l = 0; l < CONFIG.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            w.put(p + "input_layernorm.weight", rand(rng, 0.1f, h));
            w.put(p + "post_attention_layernorm.weight", rand(rng, 0.1f, h));
            w.put(p + "self_attn.q_proj.weight", rand(rng, 0.25f, 16, h));
            w.put(p + "self_attn.k_proj.weight", rand(rng, 0.25f, 8, h));
            w.put(p + "self_attn.v_proj.weight", rand(rng, 0.25f, 8, h));
            w.put(p + "self_attn.o_proj.weight", rand(rng, 0.25f, h, 16));
            w.put(p + "mlp.gate_proj.weight", rand(rng, 0.25f, 32, h));
            w.put(p + "mlp.up_proj.weight", rand(rng, 0.25f, 32, h));
            w.put(p + "mlp.down_proj.weight", rand(rng, 0.18f, h, 32));
        }
        w.put("model.norm.weight", rand(rng, 0.1f, h));
        w.put("lm_head.weight", rand(rng, 0.5f, CONFIG.vocabSize(), h));
        return w;
    }

    static Tensor rand(SplittableRandom rng, float std, int... shape) {
        Tensor t = Tensor.zeros(shape);
        float[] d = t.data();
        boolean norm = shape.length == 1;
        for (int i = 0; i < d.length; i++) d[i] = (norm ? 1 : 0) + (float) rng.nextGaussian() * std;
        return t;
    }

    /** The model with random non-zero adapters (B too, so every adapter gets a gradient at once). */
    static LlamaForCausalLM model() {
        return model(LORA);
    }

    static LlamaForCausalLM model(LoraSettings lora) {
        LlamaForCausalLM m = LlamaForCausalLM.fromWeights(CONFIG, weights(), lora, TestDevices.jvm());
        SplittableRandom rng = new SplittableRandom(2);
        Map<String, Tensor> ad = new LinkedHashMap<>();
        m.adapterStateDict().forEach((k, t) -> ad.put(k, rand(rng, 0.2f, t.shape())));
        m.loadAdapters(ad);
        return m;
    }

    static TokenDataset data(int rows, int seq) {
        SplittableRandom rng = new SplittableRandom(3);
        int[][] ids = new int[rows][seq], labels = new int[rows][seq];
        for (int r = 0; r < rows; r++) {
            for (int t = 0; t < seq; t++) {
                ids[r][t] = rng.nextInt(CONFIG.vocabSize());
                labels[r][t] = (r == 1 && t < seq - 2) ? CrossEntropy.IGNORE_INDEX : ids[r][t];
            }
        }
        return TokenDataset.of("random", ids, labels);
    }

    static FinetuneConfig config(long steps, int batch, int accum, String schedule, double clip) {
        return new FinetuneConfig(LORA, steps, batch, accum, 8, 1e-2, 0.01, 0.9, 0.999, 1e-8, 2, schedule, clip, 5,
                false, 0, 0);
    }

    static float[] grads(LlamaForCausalLM m) {
        List<Parameter> ps = m.trainableParameters();
        int n = ps.stream().mapToInt(Parameter::numel).sum(), o = 0;
        float[] g = new float[n];
        for (Parameter p : ps) {
            System.arraycopy(p.grad(), 0, g, o, p.numel());
            o += p.numel();
        }
        return g;
    }

    @Test
    void accumulatedMicroBatchesGiveTheFullBatchLossAndGradient() {
        TokenDataset d = data(4, 8);
        // independent reference: the model's own transformers-style mean loss over all 4 rows as one batch
        LlamaForCausalLM ref = model();
        int[] all = {0, 1, 2, 3};
        double full = ref.loss(d.inputIds(all), d.labels(all), 4, 8);
        float[] g4 = null;
        for (int[] ba : new int[][] {{4, 1}, {2, 2}, {1, 4}}) {
            LlamaForCausalLM m = model();
            Trainer f = Finetuner.trainer(m, d, config(1, ba[0], ba[1], "constant", 0));
            m.zeroGrad();
            double loss = f.accumulate(0, 0, 4);
            assertEquals(full, loss, 1e-6 * full, "B=" + ba[0] + " A=" + ba[1]);
            if (g4 == null) g4 = grads(m);
            else assertTrue(Golden.relativeErrorAgainstNonZero(g4, grads(m)) < 1e-5, "gradient B=" + ba[0] + " A=" + ba[1] + ": " + Golden.relativeErrorAgainstNonZero(g4, grads(m)));
        }
    }

    @Test
    void dataParallelSharesSumToTheStep() {
        TokenDataset d = data(6, 8);
        LlamaForCausalLM whole = model(), w0 = model(), w1 = model();
        FinetuneConfig c = config(2, 2, 3, "constant", 0);
        Trainer fw = Finetuner.trainer(whole, d, c), f0 = Finetuner.trainer(w0, d, c), f1 = Finetuner.trainer(w1, d, c);
        whole.zeroGrad();
        w0.zeroGrad();
        w1.zeroGrad();
        double l = fw.accumulate(1, 0, 6), l0 = f0.accumulate(1, 0, 4), l1 = f1.accumulate(1, 4, 6);
        assertEquals(l, l0 + l1, 1e-6 * l);
        float[] g = grads(whole), a = grads(w0), b = grads(w1);
        for (int i = 0; i < a.length; i++) a[i] += b[i];
        assertTrue(Golden.relativeErrorAgainstNonZero(g, a) < 1e-5, "summed shares vs the whole step: " + Golden.relativeErrorAgainstNonZero(g, a));
    }

    @Test
    void stepsLowerTheLossAndFollowTheSchedule() {
        TokenDataset d = data(4, 8);
        LlamaForCausalLM m = model();
        Trainer f = Finetuner.trainer(m, d, config(30, 2, 2, "cosine", 1.0));
        double before = Finetuner.evalLoss(m, d, 4);
        var first = f.step();
        assertEquals(0.0, first.lr(), "warm-up starts at lr 0, as torchtune's LambdaLR");
        assertEquals(first.loss(), before, 1e-6 * before, "step 1 at lr 0 sees the initial adapters");
        while (!f.finished()) f.step();
        assertTrue(Finetuner.evalLoss(m, d, 4) < 0.9 * before, "training lowers the loss on its own data");
        assertThrows(IllegalStateException.class, f::step);
    }

    /** With dropout too: the resume point holds the dropout generators' positions. */
    @Test
    void resumeContinuesBitForBit(@TempDir Path tmp) throws Exception {
        TokenDataset d = data(5, 8);
        LoraSettings lora = LORA.withDropout(0.2f);
        FinetuneConfig c = new FinetuneConfig(lora, 6, 2, 1, 8, 1e-2, 0.01, 0.9, 0.999, 1e-8, 2, "cosine", 0.5, 5,
                true, 0, 0);
        LlamaForCausalLM straight = model(lora);
        Trainer a = Finetuner.trainer(straight, d, c);
        while (!a.finished()) a.step();

        LlamaForCausalLM first = model(lora);
        Trainer b = Finetuner.trainer(first, d, c);
        for (int i = 0; i < 3; i++) b.step();
        Path state = tmp.resolve("state.safetensors");
        b.save(state, Map.of());
        LlamaForCausalLM second = model(lora);  // fresh adapters: the resume point must bring them back
        Trainer r = Finetuner.trainer(second, d, c);
        r.resume(state);
        assertEquals(3, r.stepsDone());
        while (!r.finished()) r.step();
        Map<String, Tensor> x = straight.adapterStateDict(), y = second.adapterStateDict();
        assertEquals(x.keySet(), y.keySet());
        x.forEach((k, t) -> assertArrayEquals(t.data(), y.get(k).data(), k));
        a.optimizer().state().forEach((k, t) -> assertArrayEquals(t.data(), r.optimizer().state().get(k).data(), k));
        // and the dropout did act: without the saved positions the resumed run would differ (checked by not resuming them)
        LlamaForCausalLM third = model(lora);
        Trainer n = Finetuner.trainer(third, d, c);
        n.resume(state);
        third.adapterModules().values().forEach(l -> l.resumeDropout(0));
        while (!n.finished()) n.step();
        assertTrue(x.entrySet().stream().anyMatch(e -> !java.util.Arrays.equals(e.getValue().data(),
                third.adapterStateDict().get(e.getKey()).data())), "dropout masks change the result");
    }

    /** DoRA on any subset of the projections: the magnitude is trained, saved at the resume point and restored. */
    @Test
    void doraResumesBitForBit(@TempDir Path tmp) throws Exception {
        TokenDataset d = data(5, 8);
        LoraSettings lora = new LoraSettings(dev.tornadolora.io.TargetModules.of(List.of("q_proj", "down_proj")), 2, 4f,
                0f, false, true, false);
        FinetuneConfig c = new FinetuneConfig(lora, 4, 2, 1, 8, 1e-2, 0.01, 0.9, 0.999, 1e-8, 0, "constant", 0.5, 5,
                true, 0, 0);
        LlamaForCausalLM straight = model(lora);
        Map<String, Tensor> before = straight.adapterStateDict();
        String m = "base_model.model.model.layers.1.mlp.down_proj.lora_magnitude_vector";
        assertEquals(2 * 2 * 3, before.size(), before.keySet().toString());
        Trainer a = Finetuner.trainer(straight, d, c);
        while (!a.finished()) a.step();
        assertTrue(!java.util.Arrays.equals(before.get(m).data(), straight.adapterStateDict().get(m).data()),
                "AdamW updates the magnitude");
        LlamaForCausalLM first = model(lora);
        Trainer b = Finetuner.trainer(first, d, c);
        for (int i = 0; i < 2; i++) b.step();
        Path state = tmp.resolve("state.safetensors");
        b.save(state, Map.of());
        LlamaForCausalLM second = model(lora);
        Trainer r = Finetuner.trainer(second, d, c);
        r.resume(state);
        while (!r.finished()) r.step();
        Map<String, Tensor> x = straight.adapterStateDict(), y = second.adapterStateDict();
        x.forEach((k, t) -> assertArrayEquals(t.data(), y.get(k).data(), k));
    }

    @Test
    void aStepWithoutCountedTokensIsRefused() {
        int[][] ids = {{1, 2, 3}};
        int[][] labels = {{1, -100, -100}};
        Trainer f = Finetuner.trainer(model(), TokenDataset.of("masked", ids, labels),
                new FinetuneConfig(LORA, 1, 1, 1, 3, 1e-3, 0, 0.9, 0.999, 1e-8, 0, "constant", 0, 0, false, 0, 0));
        var e = assertThrows(IllegalArgumentException.class, f::step);
        assertTrue(e.getMessage().contains("no counted label tokens"), e.getMessage());
    }
}
