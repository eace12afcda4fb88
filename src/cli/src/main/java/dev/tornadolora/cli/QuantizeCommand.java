package dev.tornadolora.cli;

import dev.tornadolora.io.DType;
import dev.tornadolora.io.Nf4Record;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsException;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/** Quantizes one F32 weight of a safetensors file to NF4, keeping everything else: LoRA becomes QLoRA. */
@Command(name = "quantize", description = {
        "Quantize the F32 2-D tensor KEY of W to NF4 (torchao's to_nf4 layout).",
        "Q gets, with n = rows*cols: KEY.quantized_data U8 [n/2],",
        "KEY.quantized_scalers I8 [n/block_size],",
        "KEY.quantization_factor F32 [n/block_size/scaler_block_size],",
        "KEY.scaler_mean F32 [], and metadata block_size, scaler_block_size, KEY.shape.",
        "Every other tensor and metadata entry of W is copied unchanged."})
final class QuantizeCommand implements Callable<Integer> {

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--input", required = true, paramLabel = "W.safetensors")
    Path input;

    @Option(names = "--output", required = true, paramLabel = "Q.safetensors")
    Path output;

    @Option(names = "--key", paramLabel = "KEY", defaultValue = "weight", description = "tensor to quantize (default: ${DEFAULT-VALUE})")
    String key;

    @Option(names = "--block-size", paramLabel = "N", defaultValue = "" + Nf4Tensor.DEFAULT_BLOCK_SIZE,
            description = "elements per absmax scaler (default: ${DEFAULT-VALUE})")
    int blockSize;

    @Option(names = "--scaler-block-size", paramLabel = "N", defaultValue = "" + Nf4Tensor.DEFAULT_SCALER_BLOCK_SIZE,
            description = "scalers per quantization factor (default: ${DEFAULT-VALUE})")
    int scalerBlockSize;

    @Override
    public Integer call() throws Exception {
        SafeTensors w = SafeTensors.open(input);
        SafeTensors.Entry entry = w.requireDType(key, DType.F32);
        if (entry.shape().length != 2) {
            throw new SafeTensorsException(input + ": tensor '" + key + "': expected a 2-D shape [rows, cols] but got "
                    + Arrays.toString(entry.shape()));
        }
        for (String name : Nf4Record.tensorNames(key)) {
            if (w.contains(name)) {
                throw new SafeTensorsException(input + ": already holds tensor '" + name + "' of an NF4 record '"
                        + key + "'");
            }
        }
        requireSameMetadata(w, Nf4Record.BLOCK_SIZE, blockSize, "--block-size");
        requireSameMetadata(w, Nf4Record.SCALER_BLOCK_SIZE, scalerBlockSize, "--scaler-block-size");
        int rows = entry.shape()[0], cols = entry.shape()[1];
        Tensor weight = w.floats(key);
        Nf4Tensor nf4;
        try {
            nf4 = Nf4Tensor.quantize(weight.data(), rows, cols, blockSize, scalerBlockSize);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(input + ": tensor '" + key + "': " + e.getMessage(), e);
        }

        SafeTensorsWriter out = new SafeTensorsWriter();
        for (String name : w.names()) {
            if (!name.equals(key)) {
                out.copy(w, name);
            }
        }
        for (Map.Entry<String, String> m : w.metadata().entrySet()) {
            if (!m.getKey().equals(key + Nf4Record.SHAPE)) {
                out.metadata(m.getKey(), m.getValue());
            }
        }
        Nf4Record.write(out, key, nf4);  // after the copy: its metadata wins
        out.write(output);
        spec.commandLine().getOut().printf(Locale.ROOT, "%s: '%s' %s -> NF4 (block_size %d, scaler_block_size %d), "
                        + "%.4f bits per parameter%n", output, key, Arrays.toString(entry.shape()), blockSize,
                scalerBlockSize, 8 * nf4.bytesPerParameter());
        return 0;
    }

    /**
     * The block sizes are file-wide metadata: overwriting a different value would break the NF4 records already in
     * the file, so a conflict is refused.
     */
    private void requireSameMetadata(SafeTensors w, String metadataKey, int value, String option) {
        String existing = w.metadata().get(metadataKey);
        if (existing != null && !existing.trim().equals(Integer.toString(value))) {
            throw new IllegalArgumentException(input + ": metadata '" + metadataKey + "' is " + existing
                    + " but " + option + " is " + value + "; the file's NF4 records share one " + metadataKey);
        }
    }
}
