package dev.tornadolora.io;

import dev.tornadolora.nn.LoRALinear;

import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.tensor.HeapCheck;
import dev.tornadolora.tensor.Shapes;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Folds LoRA adapters into their base weights, with the semantics of torchtune's {@code get_merged_lora_ckpt}:
 * for every module m that has {@code m.lora_a.weight} A [r, in] and {@code m.lora_b.weight} B [out, r],
 * <pre>
 *   m.weight ← m.weight + (alpha / r) · B · A          and the two adapter keys are removed;
 * </pre>
 * every other tensor is copied unchanged. r comes from the shapes; alpha from the metadata {@code m.alpha},
 * else {@code alpha} (of the adapter file, then of the base file).
 * <p>A base stored as an NF4 record ({@code m.weight.quantized_data} ...) is dequantized first and the merged
 * weight written as F32, or re-quantized to NF4 with the record's block sizes on request: re-quantization rounds
 * the merged weight again, so the merged model's outputs differ from base + adapter (PEFT warns the same when
 * merging into a 4-bit base), and a warning says so. With {@code safe}, a merged weight holding NaN or ±Inf is
 * refused (naming the module and the element) and nothing is written, like PEFT's {@code safe_merge}.
 */
public final class LoraMerge {
    /** What {@code --requantize} warns, as PEFT warns about merging into a quantized base. */
    public static final String REQUANTIZE_WARNING = "re-quantizing the merged weights to NF4 rounds them again:"
            + " the merged model's outputs will differ from base + adapter (as PEFT warns for 4-bit merges)";

    private LoraMerge() {}

    /**
     * How to merge.
     *
     * @param requantize write NF4 bases back as NF4 after merging (rounds again)
     * @param safe       refuse a merged weight with NaN or Inf, as PEFT's {@code safe_merge}
     */
    public record Options(boolean requantize, boolean safe) {}

    /**
     * What a merge produced.
     *
     * @param writer        the merged state dict's tensors and metadata, ready to write
     * @param mergedModules the modules merged, with their rank and alpha
     */
    public record Result(SafeTensorsWriter writer, List<String> mergedModules) {}

    /**
     * Merges the adapters found in {@code base} (and in {@code adapter}, when not null) into the base weights.
     * {@code warnings} receives the re-quantization warning.
     *
     * @param base     the checkpoint with base weights (F32 or NF4 records) and possibly adapters
     * @param adapter  adapters in a separate file (torchtune keys), or null
     * @param options  how to merge
     * @param warnings receives warnings for the user
     * @return the merged state dict and the merged modules
     */
    public static Result merge(SafeTensors base, SafeTensors adapter, Options options, Consumer<String> warnings) {
        Map<String, SafeTensors> source = new LinkedHashMap<>();
        for (String k : base.names()) source.put(k, base);
        if (adapter != null) {
            for (String k : adapter.names()) {
                if (source.put(k, adapter) != null) {
                    throw new IllegalArgumentException("tensor " + SafeText.quote(k) + " is in both " + base.source() + " and " + adapter.source());
                }
            }
        }
        Set<String> modules = loraModules(source.keySet());
        if (modules.isEmpty()) {
            throw new IllegalArgumentException("no LoRA adapters (keys <module>.lora_a.weight / <module>.lora_b.weight) in "
                    + base.source() + (adapter == null ? "" : " or " + adapter.source()));
        }
        requireHeap(base, adapter, source, modules);
        SafeTensorsWriter out = new SafeTensorsWriter();
        Map<String, String> metadata = new LinkedHashMap<>(base.metadata());
        metadata.keySet().removeIf(k -> k.equals("alpha") || k.endsWith(".alpha"));
        Set<String> done = new LinkedHashSet<>();
        boolean requantized = false;
        for (String module : modules) {
            String wKey = AdapterCheckpoints.key(module, "weight");
            SafeTensors aFile = source.get(AdapterCheckpoints.key(module, "lora_a.weight"));
            SafeTensors bFile = source.get(AdapterCheckpoints.key(module, "lora_b.weight"));
            if (aFile == null || bFile == null) {
                throw new IllegalArgumentException("module " + SafeText.quote(module) + " has only one of "
                        + AdapterCheckpoints.key(module, "lora_a.weight") + " and " + AdapterCheckpoints.key(module, "lora_b.weight"));
            }
            float[] a = aFile.floats(AdapterCheckpoints.key(module, "lora_a.weight")).data();
            int[] aShape = aFile.entry(AdapterCheckpoints.key(module, "lora_a.weight")).shape();
            int[] bShape = bFile.entry(AdapterCheckpoints.key(module, "lora_b.weight")).shape();
            if (aShape.length != 2 || bShape.length != 2 || bShape[1] != aShape[0]) {
                throw new IllegalArgumentException("module " + SafeText.quote(module) + ": lora_a.weight " + Shapes.format(aShape)
                        + " and lora_b.weight " + Shapes.format(bShape) + " are not [r, in] and [out, r]");
            }
            int rank = aShape[0], in = aShape[1], outDim = bShape[0];
            if (rank == 0) {
                // alpha / 0 times an empty product would write NaN into every weight.
                throw new IllegalArgumentException("module " + SafeText.quote(module) + ": adapters of rank 0 ("
                        + "lora_a.weight " + Shapes.format(aShape) + "); nothing to merge and alpha/r is undefined");
            }
            float[] b = bFile.floats(AdapterCheckpoints.key(module, "lora_b.weight")).data();
            float alpha = alpha(module, adapter, base);
            float[] w;
            Nf4Tensor nf4 = null;
            SafeTensors wFile = source.get(wKey);
            if (wFile != null && Nf4Record.present(base, wKey)) {
                throw new IllegalArgumentException(base.source() + ": holds both tensor " + SafeText.quote(wKey)
                        + " and an NF4 record " + SafeText.quote(wKey + Nf4Record.QUANTIZED_DATA)
                        + "...; a module's base must be one or the other");
            }
            if (wFile != null) {
                Shapes.requireEqual(wFile.source() + ": tensor " + SafeText.quote(wKey) + "", wFile.entry(wKey).shape(), outDim, in);
                w = wFile.floats(wKey).data();
                done.add(wKey);
            } else if (Nf4Record.present(base, wKey)) {
                nf4 = Nf4Record.read(base, wKey, outDim, in);
                w = nf4.dequantize();
                done.addAll(Nf4Record.tensorNames(wKey));
            } else {
                throw new IllegalArgumentException("module " + SafeText.quote(module) + " has adapters but no base weight '" + wKey
                        + "' (F32) or NF4 record '" + wKey + ".quantized_data' in " + base.source());
            }
            LoRALinear.addScaledProduct(w, b, a, outDim, rank, in, alpha / rank);
            if (options.safe()) requireFinite(w, wKey, in);
            if (nf4 != null && options.requantize()) {
                Nf4Record.write(out, wKey, Nf4Tensor.quantize(w, outDim, in, nf4.blockSize(), nf4.scalerBlockSize()));
                requantized = true;
            } else {
                out.f32(wKey, new int[] {outDim, in}, w);
                metadata.remove(wKey + ".shape");
            }
            done.add(AdapterCheckpoints.key(module, "lora_a.weight"));
            done.add(AdapterCheckpoints.key(module, "lora_b.weight"));
        }
        for (String k : base.names()) {
            if (!done.contains(k)) out.copy(base, k);
        }
        if (adapter != null) {
            for (String k : adapter.names()) {
                if (!done.contains(k)) out.copy(adapter, k);
            }
        }
        out.metadata(metadata);
        if (requantized) warnings.accept(REQUANTIZE_WARNING);
        return new Result(out, new ArrayList<>(modules));
    }

    /**
     * The merged file is built in memory: every tensor copied (the files' data) and, per module, its fp32 weight
     * twice (merged, then as bytes); checked against the heap before anything is read.
     */
    private static void requireHeap(SafeTensors base, SafeTensors adapter, Map<String, SafeTensors> source,
                                    Set<String> modules) {
        long need = HeapCheck.sum(base.dataLength(), adapter == null ? 0 : adapter.dataLength());
        for (String module : modules) {
            SafeTensors aFile = source.get(AdapterCheckpoints.key(module, "lora_a.weight"));
            SafeTensors bFile = source.get(AdapterCheckpoints.key(module, "lora_b.weight"));
            if (aFile == null || bFile == null) continue;
            int[] a = aFile.entry(AdapterCheckpoints.key(module, "lora_a.weight")).shape();
            int[] b = bFile.entry(AdapterCheckpoints.key(module, "lora_b.weight")).shape();
            if (a.length == 2 && b.length == 2) need = HeapCheck.sum(need, HeapCheck.product(b[0], a[1], 8));
        }
        HeapCheck.require(need, "merging " + modules.size() + " module(s)");
    }

    /** Modules with a {@code lora_a.weight} or {@code lora_b.weight} key, in key order. */
    static Set<String> loraModules(Set<String> keys) {
        Set<String> modules = new LinkedHashSet<>();
        for (String k : keys) {
            for (String p : List.of("lora_a.weight", "lora_b.weight")) {
                if (k.equals(p)) modules.add("");
                else if (k.endsWith("." + p)) modules.add(k.substring(0, k.length() - p.length() - 1));
            }
        }
        return modules;
    }

    private static float alpha(String module, SafeTensors adapter, SafeTensors base) {
        String key = module.isEmpty() ? "alpha" : module + ".alpha";
        for (SafeTensors f : adapter == null ? List.of(base) : List.of(adapter, base)) {
            for (String k : List.of(key, "alpha")) {
                String v = f.metadata().get(k);
                if (v == null) continue;
                try {
                    float alpha = (float) StrictJson.decimal(v);
                    if (Float.isFinite(alpha)) return alpha;
                } catch (NumberFormatException e) {
                    // reported below
                }
                throw new IllegalArgumentException(f.source() + ": metadata " + SafeText.quote(k) + " is not a finite number: " + SafeText.quote(v) + "");
            }
        }
        throw new IllegalArgumentException("missing metadata 'alpha' (or " + SafeText.quote(key) + ") for module '" + module
                + "' in " + (adapter == null ? "" : adapter.source() + " or ") + base.source());
    }

    private static void requireFinite(float[] w, String key, int cols) {
        for (int i = 0; i < w.length; i++) {
            if (!Float.isFinite(w[i])) {
                throw new IllegalArgumentException("merged weight " + SafeText.quote(key) + " has " + w[i] + " at [" + i / cols + ", "
                        + i % cols + "]: the adapter seems broken; nothing was written (safe merge)");
            }
        }
    }
}
