package dev.tornadolora.io;

import dev.tornadolora.nn.LoRALinear;

/**
 * A single LoRA layer stored with torchtune's parameter names: {@code weight} F32 [out, in], optional
 * {@code bias} F32 [out], {@code lora_a.weight} F32 [rank, in], {@code lora_b.weight} F32 [out, rank], and
 * {@code alpha} in the metadata. Rank, in and out come from the shapes.
 */
public final class LoraCheckpoint {
    private LoraCheckpoint() {}

    public static LoRALinear read(SafeTensors c) {
        SafeTensors.Entry a = c.requireDType("lora_a.weight", DType.F32);
        if (a.shape().length != 2) {
            throw new SafeTensorsException(c.source() + ": tensor 'lora_a.weight': expected shape [rank, in] but got "
                    + java.util.Arrays.toString(a.shape()));
        }
        int rank = a.shape()[0], in = a.shape()[1];
        SafeTensors.Entry b = c.requireDType("lora_b.weight", DType.F32);
        if (b.shape().length != 2 || b.shape()[1] != rank) {
            throw new SafeTensorsException(c.source() + ": tensor 'lora_b.weight': expected shape [out, " + rank
                    + "] but got " + java.util.Arrays.toString(b.shape()));
        }
        int out = b.shape()[0];
        float alpha = parseAlpha(c);
        boolean bias = c.contains("bias");
        LoRALinear layer = LoRALinear.builder(in, out).rank(rank).alpha(alpha).bias(bias).build();
        layer.load("weight", c.f32("weight", out, in));
        if (bias) {
            layer.load("bias", c.f32("bias", out));
        }
        layer.load("lora_a.weight", c.f32("lora_a.weight", rank, in));
        layer.load("lora_b.weight", c.f32("lora_b.weight", out, rank));
        return layer;
    }

    private static float parseAlpha(SafeTensors c) {
        String s = c.requireMetadata("alpha");
        try {
            float alpha = Float.parseFloat(s.trim());
            if (!Float.isFinite(alpha)) throw new NumberFormatException();
            return alpha;
        } catch (NumberFormatException e) {
            throw new SafeTensorsException(c.source() + ": metadata 'alpha' is not a finite number: '" + s + "'");
        }
    }
}
