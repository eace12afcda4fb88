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
    public static final String ARCHITECTURE = "architecture";
    private static final ObjectMapper JSON = new ObjectMapper();

    private ModelCheckpoint() {}

    public static void save(Path file, Sequential model, boolean withAdapters) throws IOException {
        SafeTensorsWriter w = new SafeTensorsWriter();
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
                throw new IllegalArgumentException("module '" + name + "' (" + m + ") cannot be saved: only LoRALinear"
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
     */
    public static Sequential load(Path file) {
        SafeTensors f = SafeTensors.open(file);
        JsonNode arch = architecture(f);
        Map<String, Module> modules = new LinkedHashMap<>();
        List<String> modelKeys = new ArrayList<>();
        Set<String> fileKeys = new LinkedHashSet<>(f.names());
        for (JsonNode n : arch) {
            String name = n.path("name").asText();
            String type = n.path("type").asText();
            if (!type.equals("lora")) {
                modules.put(name, Activation.named(type));
                continue;
            }
            LoRALinear l = layer(f, n, name, Nf4Record.present(f, name + ".weight"));
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
        try {
            JsonNode arch = JSON.readTree(text);
            if (arch != null && arch.isArray() && !arch.isEmpty()) return arch;
        } catch (IOException e) {
            // reported below
        }
        throw new SafeTensorsException(f.source() + ": metadata '" + ARCHITECTURE + "' is not a JSON list of modules");
    }

    /** The layer an architecture entry describes; its base is NF4 when the file stores it so (a merge may not). */
    private static LoRALinear layer(SafeTensors f, JsonNode n, String name, boolean nf4) {
        for (String field : List.of("in_dim", "out_dim", "rank", "alpha")) {
            if (!n.path(field).isNumber() || !field.equals("alpha") && !n.path(field).canConvertToExactIntegral()) {
                throw new SafeTensorsException(f.source() + ": architecture entry '" + name + "' lacks "
                        + (field.equals("alpha") ? "a numeric '" : "an integer '") + field + "'");
            }
        }
        // Building a layer allocates its [out, in] base; the file must be able to hold that base (as NF4 at
        // least, half a byte a parameter) before the metadata's word is taken for it.
        long params = n.get("in_dim").asLong() * n.get("out_dim").asLong();
        if (n.get("in_dim").asLong() > Integer.MAX_VALUE || n.get("out_dim").asLong() > Integer.MAX_VALUE
                || params > 2 * f.dataLength()) {
            throw new SafeTensorsException(f.source() + ": architecture entry '" + name + "' claims a base of "
                    + n.get("out_dim") + " x " + n.get("in_dim") + " parameters, more than the file's "
                    + f.dataLength() + " bytes of tensor data can hold");
        }
        LoRALinear.Builder b = LoRALinear.builder(n.get("in_dim").asInt(), n.get("out_dim").asInt())
                .rank(n.get("rank").asInt()).alpha((float) n.get("alpha").asDouble())
                .dropout((float) n.path("dropout").asDouble(0)).bias(n.path("use_bias").asBoolean(false));
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
            throw new SafeTensorsException(f.source() + ": architecture entry '" + name + "': " + e.getMessage());
        }
    }

    private static int metadataInt(SafeTensors f, String key, String text) {
        try {
            return Integer.parseInt(text.trim());
        } catch (NumberFormatException e) {
            throw new SafeTensorsException(f.source() + ": metadata '" + key + "' is not an integer: '" + text + "'");
        }
    }
}
