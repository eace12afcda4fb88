package dev.tornadolora.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.nn.Activation;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Module;
import dev.tornadolora.nn.Sequential;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.HeapCheck;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A {@link Sequential} of {@link LoRALinear} and {@link Activation} modules as one safetensors state dict with
 * torchtune's keys: per LoRA module {@code <m>.weight} (F32, or the NF4 record {@code <m>.weight.quantized_data}
 * ... when the base is quantized), {@code <m>.bias}, and optionally {@code <m>.lora_a.weight} /
 * {@code <m>.lora_b.weight}. The metadata holds the architecture (JSON list of modules with their
 * hyper-parameters), {@code alpha} when every layer shares it, and {@code <m>.alpha} for each layer.
 * Such a file (with adapters) is what {@code merge} and {@code eval}-style tools consume.
 */
public final class ModelCheckpoint {
    /** The metadata key holding the model's architecture (layer names, kinds and sizes) as JSON. */
    public static final String ARCHITECTURE = "architecture";
    private static final ObjectMapper JSON = new ObjectMapper();

    private ModelCheckpoint() {}

    /**
     * Writes the model's base weights (NF4 records or F32), biases and architecture, atomically.
     *
     * @param file         the safetensors file
     * @param model        LoRA layers and activations
     * @param withAdapters also write the adapters (torchtune keys)
     * @throws IOException when the file cannot be written
     */
    public static void save(Path file, Sequential model, boolean withAdapters) throws IOException {
        save(file, model, withAdapters, Map.of());
    }

    /**
     * As {@link #save(Path, Sequential, boolean)}, with {@code metadata} added to the header.
     *
     * @param file         the safetensors file to write (atomically)
     * @param model        LoRALinear and activation modules
     * @param withAdapters whether the adapters are saved too
     * @param metadata     more header entries (a run identity, ...)
     * @throws IOException when writing fails
     */
    public static void save(Path file, Sequential model, boolean withAdapters, Map<String, String> metadata)
            throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter().metadata(metadata);
        ArrayNode arch = JSON.createArrayNode();
        Set<Float> alphas = new LinkedHashSet<>();
        Map<String, String> blockSizes = new LinkedHashMap<>();
        model.children().forEach((name, m) -> {
            ObjectNode n = arch.addObject().put("name", name);
            if (m instanceof LoRALinear l) {
                n.put("type", "lora").put("in_dim", l.inDim()).put("out_dim", l.outDim()).put("rank", l.rank())
                 .put("alpha", l.alpha()).put("dropout", l.dropout()).put("use_bias", l.useBias())
                 .put("quantize_base", l.quantizeBase());
                if (l.base() instanceof Nf4Tensor nf4) {
                    String sizes = nf4.blockSize() + "/" + nf4.scalerBlockSize();
                    if (blockSizes.putIfAbsent(sizes, name) == null && blockSizes.size() > 1) {
                        throw new IllegalArgumentException("NF4 layers " + blockSizes.values() + " use different block"
                                + " sizes " + blockSizes.keySet() + " but a file holds one block_size/scaler_block_size");
                    }
                    Nf4Record.write(w, name + ".weight", nf4);
                } else {
                    w.f32(name + ".weight", new int[] {l.outDim(), l.inDim()}, l.base().dequantize());
                }
                if (l.useBias()) w.f32(name + ".bias", new int[] {l.outDim()}, l.bias().clone());
                if (withAdapters) l.adapterStateDict().forEach((p, t) -> w.f32(name + "." + p, t));
                w.metadata(name + ".alpha", Float.toString(l.alpha()));
                alphas.add(l.alpha());
            } else if (m instanceof Activation a) {
                n.put("type", a.kind().name().toLowerCase(java.util.Locale.ROOT));
            } else {
                throw new IllegalArgumentException("module " + SafeText.quote(name) + " (" + m + ") cannot be saved: only LoRALinear"
                        + " and activations are supported");
            }
        });
        w.metadata(ARCHITECTURE, JSON.writeValueAsString(arch));
        if (alphas.size() == 1) w.metadata("alpha", Float.toString(alphas.iterator().next()));
        w.write(file);
    }

    /**
     * Rebuilds the model: base weights (and bias) from the file, adapters too when the file has them (else they
     * keep their fresh initialisation). Keys are validated as torchtune does: a missing base key, a partial set
     * of adapter keys, or any key the architecture does not have is an error naming the keys.
     *
     * @param file a file written by {@link #save}
     * @return the model it describes
     */
    public static Sequential load(Path file) {
        return load(SafeTensors.open(file));
    }

    /**
     * As {@link #load(Path)} for a file already opened (or parsed from memory).
     *
     * @param f the checkpoint
     * @return the model it describes, with its weights
     * @throws SafeTensorsException naming the file and the problem
     */
    public static Sequential load(SafeTensors f) {
        JsonNode arch = architecture(f);
        Map<String, Module> modules = new LinkedHashMap<>();
        List<String> modelKeys = new ArrayList<>();
        Set<String> fileKeys = new LinkedHashSet<>(f.names());
        long claimed = 0;  // base parameters of the layers so far: together they must fit the file
        int index = 0;
        for (JsonNode n : arch) {
            String where = f.source() + ": architecture entry " + index++;
            StrictJson.requireObject(n, where);
            String name = StrictJson.requireString(n, "name", where);
            String type = StrictJson.requireString(n, "type", where);
            where = f.source() + ": architecture entry " + SafeText.quote(name);
            if (modules.containsKey(name)) throw new SafeTensorsException(where + ": the name is used twice");
            if (!type.equals("lora")) {
                try {
                    modules.put(name, Activation.named(type));
                } catch (IllegalArgumentException e) {
                    throw new SafeTensorsException(where + ": " + SafeText.of(e.getMessage()));
                }
                continue;
            }
            boolean nf4 = Nf4Record.present(f, name + ".weight");
            if (nf4 && f.contains(name + ".weight")) {
                throw new SafeTensorsException(f.source() + ": holds both tensor " + SafeText.quote(name + ".weight")
                        + " and an NF4 record " + SafeText.quote(name + ".weight" + Nf4Record.QUANTIZED_DATA)
                        + "...; a layer's base must be one or the other");
            }
            long params = HeapCheck.product(StrictJson.requireInt(n, "in_dim", 1, Integer.MAX_VALUE, where),
                    StrictJson.requireInt(n, "out_dim", 1, Integer.MAX_VALUE, where));
            claimed += params;
            if (params < 0 || claimed > 2 * f.dataLength()) {
                // Building a layer allocates its [out, in] base; the file must be able to hold the bases (as NF4
                // at least, half a byte a parameter) before the metadata's word is taken for them.
                throw new SafeTensorsException(where + " claims a base of " + n.get("out_dim") + " x "
                        + n.get("in_dim") + " parameters: with the layers before it, more than the file's "
                        + f.dataLength() + " bytes of tensor data can hold");
            }
            LoRALinear l = layer(f, n, name, nf4, where);
            modules.put(name, l);
            modelKeys.add(name + ".weight");
            if (l.useBias()) modelKeys.add(name + ".bias");
            for (String p : l.adapterParams()) modelKeys.add(name + "." + p);
            if (l.quantizeBase()) {
                for (String part : Nf4Record.tensorNames(name + ".weight")) {
                    if (fileKeys.remove(part)) fileKeys.add(name + ".weight");
                }
            }
        }
        boolean hasAdapters = fileKeys.stream().anyMatch(LoraKeyValidation::isLoraKey);
        Set<String> missing = new LinkedHashSet<>(modelKeys);
        missing.removeAll(fileKeys);
        Set<String> unexpected = new LinkedHashSet<>(fileKeys);
        modelKeys.forEach(unexpected::remove);
        Set<String> baseMissing = new LinkedHashSet<>(missing);
        baseMissing.removeIf(LoraKeyValidation::isLoraKey);
        try {
            LoraKeyValidation.validate(modelKeys, baseMissing, unexpected, hasAdapters ? missing : null, null);
        } catch (IllegalArgumentException e) {
            throw new SafeTensorsException(f.source() + ": " + e.getMessage());
        }
        Sequential model = new Sequential(modules);
        model.loraModules().forEach((name, l) -> {
            if (l.quantizeBase()) {
                l.setBase(Nf4Record.read(f, name + ".weight", l.outDim(), l.inDim()));
            } else {
                l.setBase(new DenseWeight(l.outDim(), l.inDim(), f.f32(name + ".weight", l.outDim(), l.inDim()).data()));
            }
            if (l.useBias()) l.load("bias", f.f32(name + ".bias", l.outDim()));
            if (hasAdapters) {
                l.load("lora_a.weight", f.f32(name + ".lora_a.weight", l.rank(), l.inDim()));
                l.load("lora_b.weight", f.f32(name + ".lora_b.weight", l.outDim(), l.rank()));
            }
        });
        return model;
    }

    private static JsonNode architecture(SafeTensors f) {
        String text = f.requireMetadata(ARCHITECTURE);
        JsonNode arch = StrictJson.parse(f.source() + ": metadata " + SafeText.quote(ARCHITECTURE) + "", text);
        if (arch.isArray() && !arch.isEmpty()) return arch;
        throw new SafeTensorsException(f.source() + ": metadata " + SafeText.quote(ARCHITECTURE) + " is not a JSON list of modules");
    }

    /** The layer an architecture entry describes; its base is NF4 when the file stores it so (a merge may not). */
    private static LoRALinear layer(SafeTensors f, JsonNode n, String name, boolean nf4, String where) {
        int in = StrictJson.requireInt(n, "in_dim", 1, Integer.MAX_VALUE, where);
        int out = StrictJson.requireInt(n, "out_dim", 1, Integer.MAX_VALUE, where);
        int rank = StrictJson.requireInt(n, "rank", 1, Integer.MAX_VALUE, where);
        double alpha = StrictJson.requireDouble(n, "alpha", where);
        double dropout = StrictJson.optionalDouble(n, "dropout", 0, where);
        boolean bias = StrictJson.optionalBoolean(n, "use_bias", false, where);
        StrictJson.optionalBoolean(n, "quantize_base", nf4, where);  // a merge may store a quantized layer dense
        String aKey = name + ".lora_a.weight", bKey = name + ".lora_b.weight";
        if (f.contains(aKey) || f.contains(bKey)) {
            // The adapters' rank is the one their shapes (backed by the file's bytes) give.
            int[] a = f.contains(aKey) ? f.entry(aKey).shape() : f.entry(bKey).shape();
            int fileRank = f.contains(aKey) ? (a.length == 2 ? a[0] : -1) : (a.length == 2 ? a[1] : -1);
            if (fileRank != rank) {
                throw new SafeTensorsException(where + ": rank " + rank + " but the file's adapters have shape "
                        + dev.tornadolora.tensor.Shapes.format(a));
            }
        } else if (HeapCheck.product(rank, (long) in + out) < 0
                || HeapCheck.product(rank, (long) in + out) > HeapCheck.product(2, in, out)) {
            // Without adapters in the file the rank only sizes fresh ones: bound them by the base the file holds.
            throw new SafeTensorsException(where + ": rank " + rank + " gives adapters larger than twice the ["
                    + out + ", " + in + "] base");
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new SafeTensorsException(where + ": 'dropout' must be in [0, 1), got " + dropout);
        }
        LoRALinear.Builder b = LoRALinear.builder(in, out).rank(rank).alpha((float) alpha)
                .dropout((float) dropout).bias(bias);
        if (nf4) {
            // The layer is built quantized so that it keeps no fp32 base; its random base is replaced at once.
            b.quantizeBase(true);
            String bs = f.metadata().get("block_size"), sbs = f.metadata().get("scaler_block_size");
            if (bs != null) b.quantizationKwarg("block_size", metadataInt(f, "block_size", bs));
            if (sbs != null) b.quantizationKwarg("scaler_block_size", metadataInt(f, "scaler_block_size", sbs));
        }
        try {
            return b.build();
        } catch (IllegalArgumentException e) {
            throw new SafeTensorsException(where + ": " + SafeText.of(e.getMessage()));
        }
    }

    private static int metadataInt(SafeTensors f, String key, String text) {
        try {
            return Integer.parseInt(text.trim());
        } catch (NumberFormatException e) {
            throw new SafeTensorsException(f.source() + ": metadata " + SafeText.quote(key) + " is not an integer: " + SafeText.quote(text) + "");
        }
    }
}
