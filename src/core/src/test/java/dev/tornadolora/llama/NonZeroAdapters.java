package dev.tornadolora.llama;

import dev.tornadolora.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/** Tests' adapters with B non-zero (B starts at zero), so that the adapters and their dropout reach the loss. */
final class NonZeroAdapters {
    private NonZeroAdapters() {}

    /** Loads the same deterministic A and B values into every model (all built with the same LoRA settings). */
    static void load(LlamaForCausalLM... models) {
        Map<String, Tensor> sd = new LinkedHashMap<>(models[0].adapterStateDict());
        sd.replaceAll((k, t) -> {
            float[] v = t.data().clone();
            for (int i = 0; i < v.length; i++) v[i] = 0.05f * (float) Math.sin(i + 3 * k.length());
            return new Tensor(t.shape(), v);
        });
        for (LlamaForCausalLM m : models) m.loadAdapters(sd);
    }
}
