package dev.tornadolora.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.tensor.Shapes;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;

/**
 * An {@link Nf4Tensor} stored in a safetensors file under a key, the way torchao's {@code NF4Tensor} names its
 * parts. For a weight [rows, cols] with n = rows·cols:
 * <pre>
 *   KEY.quantized_data        U8   [n / 2]                              codes, even element in the high nibble
 *   KEY.quantized_scalers     I8   [n / block_size]
 *   KEY.quantization_factor   F32  [n / block_size / scaler_block_size]
 *   KEY.scaler_mean           F32  []
 *   metadata block_size, scaler_block_size                          decimal integers
 *   metadata KEY.shape        "[rows, cols]"                        written always, read when present
 * </pre>
 * The four tensors are flat, so they do not tell [rows, cols] apart from [cols, rows]: the shape comes from the
 * caller when it knows it (a LoRA checkpoint has lora_b [out, rank] and lora_a [rank, in]) or else from
 * {@code KEY.shape}; when both exist they must agree. The block sizes are global metadata, as in the issue's
 * file format; several records in one file may still use different ones, because every length is checked
 * against them (n / block_size fixes block_size), so a mismatch fails rather than decoding wrongly.
 */
public final class Nf4Record {
    private Nf4Record() {}

    public static final String QUANTIZED_DATA = ".quantized_data";
    public static final String QUANTIZED_SCALERS = ".quantized_scalers";
    public static final String QUANTIZATION_FACTOR = ".quantization_factor";
    public static final String SCALER_MEAN = ".scaler_mean";
    public static final String SHAPE = ".shape";
    public static final String BLOCK_SIZE = "block_size";
    public static final String SCALER_BLOCK_SIZE = "scaler_block_size";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The four tensor names of the record under {@code key}. */
    public static List<String> tensorNames(String key) {
        return List.of(key + QUANTIZED_DATA, key + QUANTIZED_SCALERS, key + QUANTIZATION_FACTOR, key + SCALER_MEAN);
    }

    /** Whether the file holds any part of a record under {@code key} (reading then reports a missing part). */
    public static boolean present(SafeTensors file, String key) {
        return tensorNames(key).stream().anyMatch(file::contains);
    }

    /** Reads the record under {@code key}, its shape taken from the metadata {@code KEY.shape}. */
    public static Nf4Tensor read(SafeTensors file, String key) {
        int[] shape = metadataShape(file, key);
        if (shape == null) {
            throw new SafeTensorsException(file.source() + ": NF4 record '" + key + "': missing metadata '" + key
                    + SHAPE + "' (the weight's shape, e.g. \"[128, 512]\")");
        }
        return read(file, key, shape[0], shape[1]);
    }

    /** Reads the record under {@code key} as a weight [rows, cols], checking every part against that shape. */
    public static Nf4Tensor read(SafeTensors file, String key, int rows, int cols) {
        String where = file.source() + ": NF4 record '" + key + "'";
        int[] stored = metadataShape(file, key);
        if (stored != null && (stored[0] != rows || stored[1] != cols)) {
            throw new SafeTensorsException(where + ": expected shape " + Shapes.format(rows, cols)
                    + " but metadata '" + key + SHAPE + "' says " + Shapes.format(stored));
        }
        for (String name : tensorNames(key)) {
            if (!file.contains(name)) {
                throw new SafeTensorsException(where + " is incomplete: missing tensor '" + name + "'");
            }
        }
        int blockSize = positiveInt(file, BLOCK_SIZE);
        int scalerBlockSize = positiveInt(file, SCALER_BLOCK_SIZE);
        long numel;
        try {
            numel = Nf4Tensor.checkSizes(rows, cols, blockSize, scalerBlockSize);
        } catch (IllegalArgumentException e) {
            throw new SafeTensorsException(where + ": " + e.getMessage());
        }
        String shape = Shapes.format(rows, cols);
        long nBlocks = numel / blockSize;
        byte[] codes = bytes(file, key + QUANTIZED_DATA, DType.U8, numel / 2, "numel " + numel + " of " + shape + " / 2");
        byte[] scalers = bytes(file, key + QUANTIZED_SCALERS, DType.I8, nBlocks,
                "numel " + numel + " of " + shape + " / block_size " + blockSize);
        long nScalerBlocks = nBlocks / scalerBlockSize;
        float[] factors = floats(bytes(file, key + QUANTIZATION_FACTOR, DType.F32, nScalerBlocks,
                nBlocks + " blocks / scaler_block_size " + scalerBlockSize));
        SafeTensors.Entry mean = file.requireDType(key + SCALER_MEAN, DType.F32);
        if (mean.shape().length != 0) {
            throw new SafeTensorsException(file.source() + ": tensor '" + key + SCALER_MEAN
                    + "': expected shape [] but got " + Shapes.format(mean.shape()));
        }
        float mu = file.buffer(key + SCALER_MEAN).getFloat(0);
        try {
            return new Nf4Tensor(rows, cols, blockSize, scalerBlockSize, codes, scalers, factors, mu);
        } catch (IllegalArgumentException e) {
            throw new SafeTensorsException(where + ": " + key + "." + e.getMessage());
        }
    }

    /** Adds the record's four tensors and its metadata (block sizes and {@code KEY.shape}) under {@code key}. */
    public static SafeTensorsWriter write(SafeTensorsWriter out, String key, Nf4Tensor t) {
        ByteBuffer factors = ByteBuffer.allocate(4 * t.quantizationFactor().length).order(ByteOrder.LITTLE_ENDIAN);
        factors.asFloatBuffer().put(t.quantizationFactor());
        return out.raw(key + QUANTIZED_DATA, DType.U8, new int[] {t.packedCodes().length}, t.packedCodes())
                .raw(key + QUANTIZED_SCALERS, DType.I8, new int[] {t.quantizedScalers().length}, t.quantizedScalers())
                .raw(key + QUANTIZATION_FACTOR, DType.F32, new int[] {t.quantizationFactor().length}, factors.array())
                .f32(key + SCALER_MEAN, new int[0], new float[] {t.scalerMean()})
                .metadata(BLOCK_SIZE, Integer.toString(t.blockSize()))
                .metadata(SCALER_BLOCK_SIZE, Integer.toString(t.scalerBlockSize()))
                .metadata(key + SHAPE, Shapes.format(t.rows(), t.cols()));
    }

    /** The metadata {@code KEY.shape} as [rows, cols], or null when absent. */
    private static int[] metadataShape(SafeTensors file, String key) {
        String text = file.metadata().get(key + SHAPE);
        if (text == null) {
            return null;
        }
        int[] shape = null;
        try {
            JsonNode node = JSON.readTree(text);
            if (node != null && node.isArray() && node.size() == 2 && node.get(0).isInt() && node.get(1).isInt()) {
                shape = new int[] {node.get(0).asInt(), node.get(1).asInt()};
            }
        } catch (IOException e) {
            // reported below with the text
        }
        if (shape == null || shape[0] <= 0 || shape[1] <= 0) {
            throw new SafeTensorsException(file.source() + ": metadata '" + key + SHAPE
                    + "' is not a shape [rows, cols] of two positive integers: '" + text + "'");
        }
        return shape;
    }

    private static int positiveInt(SafeTensors file, String key) {
        String text = file.metadata().get(key);
        if (text == null) {
            throw new SafeTensorsException(file.source() + ": missing metadata '" + key + "' (needed by an NF4 record)");
        }
        try {
            int v = Integer.parseInt(text.trim());
            if (v > 0) {
                return v;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new SafeTensorsException(file.source() + ": metadata '" + key + "' is not a positive integer: '" + text + "'");
    }

    /** A 1-D tensor's bytes after checking its dtype and its length against the record's shape. */
    private static byte[] bytes(SafeTensors file, String name, DType dtype, long length, String why) {
        SafeTensors.Entry e = file.requireDType(name, dtype);
        if (e.shape().length != 1 || e.shape()[0] != length) {
            throw new SafeTensorsException(file.source() + ": tensor '" + name + "': expected shape [" + length
                    + "] (" + why + ") but got " + Arrays.toString(e.shape()));
        }
        return file.bytes(name, dtype);
    }

    private static float[] floats(byte[] littleEndian) {
        float[] out = new float[littleEndian.length / 4];
        ByteBuffer.wrap(littleEndian).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }
}
