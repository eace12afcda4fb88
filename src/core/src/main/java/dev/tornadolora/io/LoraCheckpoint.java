package dev.tornadolora.io;

import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.Tensor;

/**
 * A single LoRA layer stored with torchtune's parameter names: {@code weight} F32 [out, in], optional
 * {@code bias} F32 [out], {@code lora_a.weight} F32 [rank, in], {@code lora_b.weight} F32 [out, rank], and
 * {@code alpha} in the metadata. Rank, in and out come from the shapes.
 *
 * <p>A QLoRA checkpoint holds the base as an NF4 record under the key {@code weight} ({@link Nf4Record}:
 * {@code weight.quantized_data} ...) instead of the F32 {@code weight}; the layer then gets
 * {@code quantize_base = true} and exactly that record as its base, with no fp32 copy of it.
 */
public final class LoraCheckpoint {
    private LoraCheckpoint() {}

    public static final String BASE_KEY = "weight";

    /**
     * Reads the layer, checking every tensor's dtype and shape before the layer is built: building allocates
     * [out, in], so nothing is allocated until the file's own bytes show those sizes are real.
     */
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
        if (rank == 0 || in == 0 || out == 0) {
            throw new SafeTensorsException(c.source() + ": lora_a.weight " + java.util.Arrays.toString(a.shape())
                    + " and lora_b.weight " + java.util.Arrays.toString(b.shape())
                    + " give rank, in and out that are not all positive");
        }
        float alpha = parseAlpha(c);
        boolean bias = c.contains("bias");
        Nf4Tensor nf4 = readNf4Base(c, out, in);
        BaseWeight base = nf4 != null ? nf4 : new DenseWeight(out, in, c.f32(BASE_KEY, out, in).data());
        Tensor biasValue = bias ? c.f32("bias", out) : null;
        Tensor loraA = c.f32("lora_a.weight", rank, in);
        Tensor loraB = c.f32("lora_b.weight", out, rank);
        LoRALinear layer = LoRALinear.builder(in, out).rank(rank).alpha(alpha).bias(bias).base(base).build();
        if (bias) {
            layer.load("bias", biasValue);
        }
        layer.load("lora_a.weight", loraA);
        layer.load("lora_b.weight", loraB);
        return layer;
    }

    /** The NF4 base [out, in] when the checkpoint holds one; null when it holds the F32 {@code weight}. */
    private static Nf4Tensor readNf4Base(SafeTensors c, int out, int in) {
        boolean dense = c.contains(BASE_KEY);
        boolean quantized = Nf4Record.present(c, BASE_KEY);
        if (dense && quantized) {
            throw new SafeTensorsException(c.source() + ": holds both tensor '" + BASE_KEY + "' and an NF4 record '"
                    + BASE_KEY + Nf4Record.QUANTIZED_DATA + "'...; a checkpoint's base must be one or the other");
        }
        if (!dense && !quantized) {
            throw new SafeTensorsException(c.source() + ": missing tensor '" + BASE_KEY + "' (or an NF4 record "
                    + String.join(", ", Nf4Record.tensorNames(BASE_KEY)) + ")");
        }
        return quantized ? Nf4Record.read(c, BASE_KEY, out, in) : null;
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
