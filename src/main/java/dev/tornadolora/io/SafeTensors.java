package dev.tornadolora.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tornadolora.tensor.BFloat16;
import dev.tornadolora.tensor.Shapes;
import dev.tornadolora.tensor.Tensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A read-only view of a <a href="https://github.com/huggingface/safetensors">safetensors</a> file: an 8-byte
 * little-endian header length N, N bytes of JSON naming each tensor's dtype, shape and byte range, then the data.
 * The data section is memory-mapped, not read whole. Everything the header claims is checked against the file
 * before any tensor is touched; a bad file gives a {@link SafeTensorsException} naming the problem.
 */
public final class SafeTensors {
    /** Headers larger than this are refused rather than read (real ones are kilobytes). */
    public static final long MAX_HEADER_BYTES = 100L << 20;
    private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .enable(com.fasterxml.jackson.core.StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(16).build())
            .build());

    /** One tensor's header entry; {@code begin}/{@code end} are offsets into the data section. */
    public record Entry(String name, DType dtype, int[] shape, long begin, long end) {
        public int numel() {
            return Shapes.numel(shape);
        }
    }

    private final String source;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;
    private final ByteBuffer data;

    private SafeTensors(String source, Map<String, Entry> entries, Map<String, String> metadata, ByteBuffer data) {
        this.source = source;
        this.entries = entries;
        this.metadata = metadata;
        this.data = data;
    }

    public static SafeTensors open(Path path) {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size > Integer.MAX_VALUE) {
                throw new SafeTensorsException(path + ": files over 2 GiB are not supported yet (" + size + " bytes)");
            }
            return parse(path.toString(), ch.map(FileChannel.MapMode.READ_ONLY, 0, size));
        } catch (NoSuchFileException e) {
            throw new SafeTensorsException(path + ": no such file");
        } catch (IOException e) {
            throw new SafeTensorsException(path + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** Parses a whole file held in {@code buf}; {@code source} names it in messages. */
    public static SafeTensors parse(String source, ByteBuffer buf) {
        buf = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        long size = buf.remaining();
        if (size < 8) {
            throw new SafeTensorsException(source + ": not a safetensors file (" + size + " bytes, shorter than the 8-byte header length)");
        }
        long n = buf.getLong(0);
        if (n < 2 || n > size - 8) {
            throw new SafeTensorsException(source + ": header length " + Long.toUnsignedString(n)
                    + " does not fit in the file of " + size + " bytes");
        }
        if (n > MAX_HEADER_BYTES) {
            throw new SafeTensorsException(source + ": header length " + n + " is over the limit of " + MAX_HEADER_BYTES + " bytes");
        }
        byte[] headerBytes = new byte[(int) n];
        buf.get(8, headerBytes);
        String header;
        try {
            header = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(headerBytes)).toString();
        } catch (CharacterCodingException e) {
            throw new SafeTensorsException(source + ": header is not valid UTF-8");
        }
        JsonNode root;
        try {
            root = JSON.readTree(header);
        } catch (IOException | RuntimeException e) {
            throw new SafeTensorsException(source + ": header is not valid JSON: " + firstLine(e.getMessage()));
        }
        if (root == null || !root.isObject()) {
            throw new SafeTensorsException(source + ": header is not a JSON object");
        }
        ByteBuffer data = buf.slice(8 + (int) n, (int) (size - 8 - n)).order(ByteOrder.LITTLE_ENDIAN);
        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, Entry> entries = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (f.getKey().equals("__metadata__")) {
                readMetadata(source, f.getValue(), metadata);
            } else {
                entries.put(f.getKey(), readEntry(source, f.getKey(), f.getValue(), data.capacity()));
            }
        }
        checkNoOverlap(source, entries.values());
        return new SafeTensors(source, Collections.unmodifiableMap(entries), Collections.unmodifiableMap(metadata), data);
    }

    private static void readMetadata(String source, JsonNode node, Map<String, String> out) {
        if (!node.isObject()) {
            throw new SafeTensorsException(source + ": __metadata__ is not a JSON object of strings");
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> m = it.next();
            if (!m.getValue().isTextual()) {
                throw new SafeTensorsException(source + ": __metadata__ value of '" + m.getKey() + "' is not a string");
            }
            out.put(m.getKey(), m.getValue().asText());
        }
    }

    private static Entry readEntry(String source, String name, JsonNode node, long dataLength) {
        String where = source + ": tensor '" + name + "'";
        if (!node.isObject()) {
            throw new SafeTensorsException(where + ": header entry is not a JSON object");
        }
        JsonNode dt = node.get("dtype"), sh = node.get("shape"), off = node.get("data_offsets");
        if (dt == null || !dt.isTextual()) throw new SafeTensorsException(where + ": missing or non-string dtype");
        if (sh == null || !sh.isArray()) throw new SafeTensorsException(where + ": missing or non-array shape");
        if (off == null || !off.isArray() || off.size() != 2) {
            throw new SafeTensorsException(where + ": data_offsets must be an array [begin, end]");
        }
        DType dtype;
        try {
            dtype = DType.parse(dt.asText(), name);
        } catch (SafeTensorsException e) {
            throw new SafeTensorsException(source + ": " + e.getMessage());
        }
        int[] shape = new int[sh.size()];
        long numel = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.canConvertToLong() || !d.isIntegralNumber() || d.asLong() < 0) {
                throw new SafeTensorsException(where + ": shape " + sh + " has a dimension that is not a non-negative integer");
            }
            long v = d.asLong();
            try {
                numel = Math.multiplyExact(numel, v);
            } catch (ArithmeticException e) {
                throw new SafeTensorsException(where + ": shape " + sh + " overflows");
            }
            if (v > Integer.MAX_VALUE || numel > Integer.MAX_VALUE - 8) {
                throw new SafeTensorsException(where + ": shape " + sh + " has more elements than a Java array holds");
            }
            shape[i] = (int) v;
        }
        long[] o = new long[2];
        for (int i = 0; i < 2; i++) {
            JsonNode v = off.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.asLong() < 0) {
                throw new SafeTensorsException(where + ": data_offsets " + off + " are not non-negative integers");
            }
            o[i] = v.asLong();
        }
        if (o[0] > o[1] || o[1] > dataLength) {
            throw new SafeTensorsException(where + ": data_offsets " + off + " lie outside the data section of "
                    + dataLength + " bytes");
        }
        long expected = numel * dtype.size();
        if (o[1] - o[0] != expected) {
            throw new SafeTensorsException(where + ": data_offsets " + off + " span " + (o[1] - o[0])
                    + " bytes but " + dtype + " " + Shapes.format(shape) + " needs " + expected);
        }
        return new Entry(name, dtype, shape, o[0], o[1]);
    }

    private static void checkNoOverlap(String source, java.util.Collection<Entry> entries) {
        List<Entry> sorted = new ArrayList<>(entries);
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        for (int i = 1; i < sorted.size(); i++) {
            Entry a = sorted.get(i - 1), b = sorted.get(i);
            if (b.begin() < a.end()) {
                throw new SafeTensorsException(source + ": tensors '" + a.name() + "' and '" + b.name() + "' overlap");
            }
        }
    }

    private static String firstLine(String s) {
        if (s == null) return "";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    // ---------------------------------------------------------------- access

    public String source() {
        return source;
    }

    public Set<String> names() {
        return entries.keySet();
    }

    public boolean contains(String name) {
        return entries.containsKey(name);
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    /** The header entry of {@code name}; throws naming the missing tensor. */
    public Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) {
            throw new SafeTensorsException(source + ": missing tensor '" + name + "'");
        }
        return e;
    }

    /** The raw little-endian bytes of a tensor (a read-only view of the mapped file). */
    public ByteBuffer buffer(String name) {
        Entry e = entry(name);
        return data.slice((int) e.begin(), (int) (e.end() - e.begin())).order(ByteOrder.LITTLE_ENDIAN).asReadOnlyBuffer()
                .order(ByteOrder.LITTLE_ENDIAN);
    }

    /** A floating-point tensor (F32, F16 or BF16) widened to fp32; other dtypes are refused by name. */
    public Tensor floats(String name) {
        Entry e = entry(name);
        ByteBuffer b = buffer(name);
        float[] out = new float[e.numel()];
        switch (e.dtype()) {
            case F32 -> b.asFloatBuffer().get(out);
            case F16 -> {
                for (int i = 0; i < out.length; i++) out[i] = Float.float16ToFloat(b.getShort(2 * i));
            }
            case BF16 -> {
                for (int i = 0; i < out.length; i++) out[i] = BFloat16.toFloat(b.getShort(2 * i));
            }
            default -> throw new SafeTensorsException(source + ": tensor '" + name + "' has dtype " + e.dtype()
                    + ", expected F32, F16 or BF16");
        }
        return new Tensor(e.shape(), out);
    }

    /** An F32 tensor whose shape is checked ({@code -1} matches any size). */
    public Tensor f32(String name, int... expectedShape) {
        Entry e = requireDType(name, DType.F32);
        if (expectedShape.length > 0) {
            boolean ok = e.shape().length == expectedShape.length;
            for (int i = 0; ok && i < expectedShape.length; i++) {
                ok = expectedShape[i] < 0 || expectedShape[i] == e.shape()[i];
            }
            if (!ok) {
                throw new SafeTensorsException(source + ": tensor '" + name + "': expected shape "
                        + formatPattern(expectedShape) + " but got " + Shapes.format(e.shape()));
            }
        }
        return floats(name);
    }

    /** The raw bytes of a tensor of the given dtype. */
    public byte[] bytes(String name, DType dtype) {
        requireDType(name, dtype);
        ByteBuffer b = buffer(name);
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    public Entry requireDType(String name, DType dtype) {
        Entry e = entry(name);
        if (e.dtype() != dtype) {
            throw new SafeTensorsException(source + ": tensor '" + name + "' has dtype " + e.dtype() + ", expected " + dtype);
        }
        return e;
    }

    /** A metadata value; throws naming the key when it is absent. */
    public String requireMetadata(String key) {
        String v = metadata.get(key);
        if (v == null) {
            throw new SafeTensorsException(source + ": missing metadata '" + key + "'");
        }
        return v;
    }

    private static String formatPattern(int[] shape) {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < shape.length; i++) {
            if (i > 0) sb.append(", ");
            sb.append(shape[i] < 0 ? "*" : String.valueOf(shape[i]));
        }
        return sb.append(']').toString();
    }
}
