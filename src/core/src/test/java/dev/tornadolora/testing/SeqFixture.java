package dev.tornadolora.testing;

import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.nn.Activation;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Module;
import dev.tornadolora.nn.Sequential;
import dev.tornadolora.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.Map;

/** The model of scripts/golden_train.py's seq_* and trainloop fixtures: fc1 (LoRA, bias) → act → fc2 (LoRA). */
public final class SeqFixture {
    private SeqFixture() {}

    public static Sequential build(SafeTensors f, String activation, boolean withAdapters) {
        Map<String, Module> m = new LinkedHashMap<>();
        m.put("fc1", layer(f, "fc1", withAdapters));
        m.put("act", Activation.named(activation));
        m.put("fc2", layer(f, "fc2", withAdapters));
        return new Sequential(m);
    }

    private static LoRALinear layer(SafeTensors f, String name, boolean withAdapters) {
        Tensor w = f.f32(name + ".weight");
        Tensor a = f.f32(name + ".lora_a.weight");
        boolean bias = f.contains(name + ".bias");
        LoRALinear l = LoRALinear.builder(w.dim(1), w.dim(0)).rank(a.dim(0))
                .alpha(Float.parseFloat(f.metadata().get(name + ".alpha"))).bias(bias).build();
        l.load("weight", w);
        if (bias) l.load("bias", f.f32(name + ".bias"));
        if (withAdapters) {
            l.load("lora_a.weight", a);
            l.load("lora_b.weight", f.f32(name + ".lora_b.weight"));
        }
        return l;
    }
}
