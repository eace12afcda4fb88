package dev.tornadolora.io;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.tensor.BFloat16;
import dev.tornadolora.tensor.Shapes;
import dev.tornadolora.tensor.Tensor;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/** Collects tensors and string metadata, then writes one safetensors file atomically. */
public final class SafeTensorsWriter {
    private static final ObjectMapper JSON = new ObjectMapper();

    private record Pending(DType dtype, int[] shape, byte[] bytes) {}

    private final Map<String, Pending> tensors = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafeTensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public SafeTensorsWriter metadata(Map<String, String> entries) {
        metadata.putAll(entries);
        return this;
    }

    public SafeTensorsWriter f32(String name, Tensor t) {
        return f32(name, t.shape(), t.data());
    }

    public SafeTensorsWriter f32(String name, int[] shape, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return raw(name, DType.F32, shape, b.array());
    }

    /** bf16 by round-to-nearest-even of the fp32 bits (as torch's {@code .to(torch.bfloat16)}). */
    public SafeTensorsWriter bf16(String name, int[] shape, float[] values) {
        short[] bits = new short[values.length];
        for (int i = 0; i < values.length; i++) {
            bits[i] = BFloat16.fromFloat(values[i]);
        }
        return bf16(name, shape, bits);
    }

    /** IEEE fp16 by round-to-nearest-even of the fp32 values (as torch's {@code .to(torch.float16)}). */
    public SafeTensorsWriter f16(String name, int[] shape, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) b.putShort(Float.floatToFloat16(v));
        return raw(name, DType.F16, shape, b.array());
    }

    /** bf16 from raw bf16 bits (see {@link BFloat16}). */
    public SafeTensorsWriter bf16(String name, int[] shape, short[] bits) {
        ByteBuffer b = ByteBuffer.allocate(bits.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        b.asShortBuffer().put(bits);
        return raw(name, DType.BF16, shape, b.array());
    }

    /** Adds a tensor from raw little-endian bytes; the length must match dtype × shape. */
    public SafeTensorsWriter raw(String name, DType dtype, int[] shape, byte[] bytes) {
        long expected = (long) Shapes.numel(shape) * dtype.size();
        if (bytes.length != expected) {
            throw new IllegalArgumentException("tensor '" + name + "': " + bytes.length + " bytes given but "
                    + dtype + " " + Shapes.format(shape) + " needs " + expected);
        }
        if (name.equals("__metadata__") || tensors.containsKey(name)) {
            throw new IllegalArgumentException("tensor name '" + name + "' is reserved or already used");
        }
        tensors.put(name, new Pending(dtype, shape.clone(), bytes));
        return this;
    }

    /** Copies a tensor of another file unchanged. */
    public SafeTensorsWriter copy(SafeTensors from, String name) {
        SafeTensors.Entry e = from.entry(name);
        return raw(name, e.dtype(), e.shape(), from.bytes(name, e.dtype()));
    }

    /** Writes the file atomically (see {@link AtomicFiles}): readers see the old file or this one, never a part. */
    public void write(Path path) throws IOException {
        AtomicFiles.write(path, this::writeTo);
    }

    /** The whole file in memory (tests, small files). */
    public byte[] toBytes() {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        try {
            writeTo(out);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    /** The 8-byte length, the header padded with spaces to a multiple of 8 (as the reference writer), the data. */
    public void writeTo(OutputStream out) throws IOException {
        ObjectNode header = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode m = header.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long offset = 0;
        for (Map.Entry<String, Pending> e : tensors.entrySet()) {
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", e.getValue().dtype().name());
            ArrayNode shape = t.putArray("shape");
            for (int d : e.getValue().shape()) shape.add(d);
            ArrayNode off = t.putArray("data_offsets");
            off.add(offset);
            offset += e.getValue().bytes().length;
            off.add(offset);
        }
        byte[] json = JSON.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        byte[] headerBytes = Arrays.copyOf(json, padded);
        Arrays.fill(headerBytes, json.length, padded, (byte) ' ');
        out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
        out.write(headerBytes);
        for (Pending p : tensors.values()) {
            out.write(p.bytes());
        }
    }
}
