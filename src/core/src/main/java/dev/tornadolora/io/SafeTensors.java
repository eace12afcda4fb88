package dev.tornadolora.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
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
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * A read-only view of a <a href="https://github.com/huggingface/safetensors">safetensors</a> file: an 8-byte
 * little-endian header length N, N bytes of JSON naming each tensor's dtype, shape and byte range, then the data.
 *
 * <p>The file is treated as hostile. Everything the header claims is checked against the file before any tensor
 * is touched, and nothing is allocated from a claim that the file's own bytes do not back: a bad file gives one
 * {@link SafeTensorsException} naming the problem. As the format's reference reader does, the header's key order
 * is free, but sorted by offset the tensors must tile the data section exactly: from byte 0, without overlaps or
 * holes, to its end (the format forbids holes so that no file can hide a second one inside it).
 *
 * <p>The data section is memory-mapped, never read whole. Files over 2 GiB are mapped in windows of at most
 * 2 GiB, each holding whole tensors; a single tensor over 2 GiB can be listed but not read (a Java buffer or
 * array holds less). The mapping stays valid when the file is replaced by rename (as {@link AtomicFiles} does),
 * but truncating the file in place while it is open makes later reads fail with an {@link InternalError}.
 */
public final class SafeTensors {
    /** Headers longer than this are refused rather than read: the format's reference reader uses the same limit. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;
    /** Deepest JSON nesting read: a valid header needs 3 (header, entry, shape). */
    static final int MAX_NESTING_DEPTH = 16;
    /**
     * Most JSON tokens in a header (a tensor entry takes about 12, a metadata entry 2): the parsed tree takes a
     * few hundred bytes a token, so this bounds a header's memory whatever its length (about 160k tensors).
     */
    public static final long MAX_HEADER_TOKENS = 2_000_000;
    /** Most metadata entries (real files have a handful). */
    public static final int MAX_METADATA_ENTRIES = 1 << 16;
    /** Most dimensions of a tensor's shape (PyTorch allows 64 at most for most operations; files use a few). */
    public static final int MAX_DIMENSIONS = 64;
    private static final long MAX_WINDOW = Integer.MAX_VALUE;
    private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_NESTING_DEPTH)
                    .maxTokenCount(MAX_HEADER_TOKENS).build())
            .build())
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /**
     * One tensor's header entry.
     *
     * @param name  the tensor's name
     * @param dtype its element type
     * @param shape its shape
     * @param begin where its bytes start, an offset into the data section
     * @param end   where its bytes end (exclusive)
     */
    public record Entry(String name, DType dtype, int[] shape, long begin, long end) {
        /** {@return the number of elements, the product of the shape} */
        public int numel() {
            return Shapes.numel(shape);
        }
    }

    /** The header's content: tensors in header order, the string metadata and the data section's length. */
    private record Header(Map<String, Entry> entries, Map<String, String> metadata, long dataLength) {}

    private final String source;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;
    private final long dataLength;
    /** Mapped (or in-memory) pieces of the data section by their start offset; each holds whole tensors. */
    private final TreeMap<Long, ByteBuffer> windows;

    /** The file and where its data section starts, for {@link #read}; null for a parsed buffer. */
    private final Path file;
    private final long dataStart;

    private SafeTensors(String source, Header header, TreeMap<Long, ByteBuffer> windows) {
        this(source, header, windows, null, 0);
    }

    private SafeTensors(String source, Header header, TreeMap<Long, ByteBuffer> windows, Path file, long dataStart) {
        this.file = file;
        this.dataStart = dataStart;
        this.source = source;
        this.entries = Collections.unmodifiableMap(header.entries());
        this.metadata = Collections.unmodifiableMap(header.metadata());
        this.dataLength = header.dataLength();
        this.windows = windows;
    }

    /**
     * Opens a file: reads and validates its header and memory-maps its data.
     *
     * @param path the safetensors file
     * @return the file's tensors and metadata
     * @throws SafeTensorsException naming the file and the problem when it is missing, unreadable or malformed
     */
    public static SafeTensors open(Path path) {
        String source = path.toString();
        requireReadableFile(source, path);
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer prefix = readFully(ch, 0, (int) Math.min(8, size));
            long n = headerLength(source, prefix, size);
            // The bytes, the decoded text and the parsed tree take about 5 bytes a header byte.
            dev.tornadolora.tensor.HeapCheck.require(5 * n, source + ": reading its " + n + "-byte header");
            Header header = readHeader(source, readFully(ch, 8, (int) n), size - 8 - n);
            return new SafeTensors(source, header, mapWindows(ch, 8 + n, header.entries().values()), path, 8 + n);
        } catch (NoSuchFileException e) {
            throw new SafeTensorsException(source + ": no such file");
        } catch (IOException e) {
            throw new SafeTensorsException(source + ": cannot read: " + e.getMessage(), e);
        }
    }

    /**
     * Refuses a path that exists but is not a regular file before it is opened: opening a FIFO for reading waits
     * for a writer (forever), a device may never end, a folder cannot be read.
     */
    static void requireReadableFile(String source, Path path) {
        if (java.nio.file.Files.isDirectory(path)) {
            throw new SafeTensorsException(source + ": is a folder, not a file");
        }
        if (java.nio.file.Files.exists(path) && !java.nio.file.Files.isRegularFile(path)) {
            throw new SafeTensorsException(source + ": is not a regular file (a FIFO, device or socket)");
        }
    }

    /**
     * Parses a whole file held in memory.
     *
     * @param source names the file in messages
     * @param buf    the file's bytes, from its position to its limit
     * @return the file's tensors and metadata
     * @throws SafeTensorsException naming the source and the problem when the bytes are malformed
     */
    public static SafeTensors parse(String source, ByteBuffer buf) {
        buf = buf.slice().order(ByteOrder.LITTLE_ENDIAN);
        long size = buf.remaining();
        long n = headerLength(source, buf.slice(0, (int) Math.min(8, size)), size);
        Header header = readHeader(source, buf.slice(8, (int) n), size - 8 - n);
        TreeMap<Long, ByteBuffer> windows = new TreeMap<>();
        windows.put(0L, buf.slice(8 + (int) n, (int) (size - 8 - n)));
        return new SafeTensors(source, header, windows);
    }

    /** The header length N from the first 8 bytes, checked against the file size and the cap. */
    private static long headerLength(String source, ByteBuffer prefix, long size) {
        if (size < 8) {
            throw new SafeTensorsException(source + ": not a safetensors file (" + size
                    + " bytes, shorter than the 8-byte header length)");
        }
        long n = prefix.order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        if (n < 2 || n > size - 8) {  // n < 0: over 2^63 as the unsigned number it is
            throw new SafeTensorsException(source + ": header length " + Long.toUnsignedString(n)
                    + " does not fit in the file of " + size + " bytes");
        }
        if (n > MAX_HEADER_BYTES) {
            throw new SafeTensorsException(source + ": header length " + n + " is over the limit of "
                    + MAX_HEADER_BYTES + " bytes");
        }
        return n;
    }

    private static Header readHeader(String source, ByteBuffer headerBytes, long dataLength) {
        if (headerBytes.get(0) != '{') {
            throw new SafeTensorsException(source + ": header is not a JSON object (it must start with '{')");
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(headerBytes).toString();
        } catch (CharacterCodingException e) {
            throw new SafeTensorsException(source + ": header is not valid UTF-8");
        }
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (IOException | RuntimeException e) {
            throw new SafeTensorsException(source + ": header is not valid JSON: " + firstLine(e.getMessage()));
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, Entry> entries = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (f.getKey().equals("__metadata__")) {
                readMetadata(source, f.getValue(), metadata);
            } else {
                entries.put(f.getKey(), readEntry(source, f.getKey(), f.getValue(), dataLength));
            }
        }
        checkTiling(source, entries.values(), dataLength);
        return new Header(entries, metadata, dataLength);
    }

    private static void readMetadata(String source, JsonNode node, Map<String, String> out) {
        if (node.isNull()) {
            return;  // the reference writer's "no metadata"
        }
        if (!node.isObject()) {
            throw new SafeTensorsException(source + ": __metadata__ is not a JSON object of strings");
        }
        if (node.size() > MAX_METADATA_ENTRIES) {
            throw new SafeTensorsException(source + ": __metadata__ has " + node.size() + " entries, more than the "
                    + MAX_METADATA_ENTRIES + " accepted");
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = node.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> m = it.next();
            if (!m.getValue().isTextual()) {
                throw new SafeTensorsException(source + ": __metadata__ value of " + quote(m.getKey())
                        + " is not a string");
            }
            out.put(m.getKey(), m.getValue().asText());
        }
    }

    private static Entry readEntry(String source, String name, JsonNode node, long dataLength) {
        String where = source + ": tensor " + quote(name);
        if (!node.isObject()) {
            throw new SafeTensorsException(where + ": header entry is not a JSON object");
        }
        JsonNode dt = node.get("dtype"), sh = node.get("shape"), off = node.get("data_offsets");
        if (dt == null || !dt.isTextual()) throw new SafeTensorsException(where + ": missing or non-string dtype");
        if (sh == null || !sh.isArray()) throw new SafeTensorsException(where + ": missing or non-array shape");
        if (off == null || !off.isArray() || off.size() != 2) {
            throw new SafeTensorsException(where + ": data_offsets must be an array [begin, end]");
        }
        DType dtype = DType.byName(dt.asText());
        if (dtype == null) {
            throw new SafeTensorsException(where + ": unsupported dtype " + quote(dt.asText()) + " (supported: "
                    + DType.supported() + ")");
        }
        String shapeText = abbreviate(sh.toString());
        if (sh.size() > MAX_DIMENSIONS) {
            throw new SafeTensorsException(where + ": shape has " + sh.size() + " dimensions, more than the "
                    + MAX_DIMENSIONS + " accepted");
        }
        int[] shape = new int[sh.size()];
        long numel = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.isIntegralNumber() || !d.canConvertToLong() || d.asLong() < 0) {
                throw new SafeTensorsException(where + ": shape " + shapeText
                        + " has a dimension that is not a non-negative integer");
            }
            long v = d.asLong();
            if (v > Integer.MAX_VALUE) {
                throw new SafeTensorsException(where + ": shape " + shapeText + " has a dimension over "
                        + Integer.MAX_VALUE);
            }
            numel *= v;  // cannot overflow: both factors are below 2^31 and numel stays below 2^31 (checked next)
            if (numel > Integer.MAX_VALUE - 8) {
                throw new SafeTensorsException(where + ": shape " + shapeText
                        + " has more elements than a Java array holds");
            }
            shape[i] = (int) v;
        }
        long[] o = new long[2];
        for (int i = 0; i < 2; i++) {
            JsonNode v = off.get(i);
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.asLong() < 0) {
                throw new SafeTensorsException(where + ": data_offsets " + abbreviate(off.toString())
                        + " are not non-negative integers");
            }
            o[i] = v.asLong();
        }
        if (o[0] > o[1]) {
            throw new SafeTensorsException(where + ": data_offsets " + off + " begin after they end");
        }
        if (o[1] > dataLength) {
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

    /** Sorted by offset, the tensors must cover the data section exactly: no overlap, no hole, nothing after. */
    private static void checkTiling(String source, Collection<Entry> entries, long dataLength) {
        List<Entry> sorted = new ArrayList<>(entries);
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long covered = 0;
        Entry previous = null;
        for (Entry e : sorted) {
            if (e.begin() < covered) {
                throw new SafeTensorsException(source + ": tensors " + quote(previous.name()) + " and "
                        + quote(e.name()) + " overlap");
            }
            if (e.begin() > covered) {
                throw new SafeTensorsException(source + ": bytes [" + covered + ", " + e.begin()
                        + ") of the data section, before tensor " + quote(e.name())
                        + ", belong to no tensor (the format allows no holes)");
            }
            covered = e.end();
            previous = e;
        }
        if (covered != dataLength) {
            throw new SafeTensorsException(source + ": the last " + (dataLength - covered) + " bytes of the "
                    + dataLength + "-byte data section belong to no tensor (the format allows no holes)");
        }
    }

    /**
     * Maps the data section in windows of at most 2 GiB, cut between tensors: one window when the section fits,
     * and never a window for a tensor that alone is larger (reading it is refused).
     */
    private static TreeMap<Long, ByteBuffer> mapWindows(FileChannel ch, long dataStart, Collection<Entry> entries)
            throws IOException {
        List<Entry> sorted = new ArrayList<>(entries);
        sorted.sort(Comparator.comparingLong(Entry::begin));
        TreeMap<Long, ByteBuffer> windows = new TreeMap<>();
        long start = 0, end = 0;
        for (Entry e : sorted) {
            if (e.end() - start > MAX_WINDOW) {
                map(ch, dataStart, start, end, windows);
                start = e.end() - e.begin() > MAX_WINDOW ? e.end() : e.begin();
            }
            end = e.end();
        }
        map(ch, dataStart, start, end, windows);
        return windows;
    }

    private static void map(FileChannel ch, long dataStart, long start, long end, TreeMap<Long, ByteBuffer> out)
            throws IOException {
        if (end > start) {
            out.put(start, ch.map(FileChannel.MapMode.READ_ONLY, dataStart + start, end - start));
        }
    }

    private static ByteBuffer readFully(FileChannel ch, long position, int length) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length);
        while (b.hasRemaining()) {
            if (ch.read(b, position + b.position()) < 0) {
                throw new IOException("file ended early (it changed while being read?)");
            }
        }
        return b.flip();
    }

    private static String firstLine(String s) {
        if (s == null) return "";
        int nl = s.indexOf('\n');
        return abbreviate(nl < 0 ? s : s.substring(0, nl));
    }

    /** A name for a message: quoted, control characters escaped, cut short when a hostile file makes it long. */
    static String quote(String name) {
        return name.length() <= 120 ? SafeText.quote(name)
                : "'" + SafeText.of(name.substring(0, 120)) + "...' (" + name.length() + " characters)";
    }

    private static String abbreviate(String s) {
        return SafeText.of(s, 200);
    }

    // ---------------------------------------------------------------- access

    /** {@return what the file is called in messages: its path, or the name given to {@link #parse}} */
    public String source() {
        return source;
    }

    /** {@return the tensors' names, in header order} */
    public Set<String> names() {
        return entries.keySet();
    }

    /**
     * {@return whether the file holds a tensor of that name}
     *
     * @param name a tensor name
     */
    public boolean contains(String name) {
        return entries.containsKey(name);
    }

    /** {@return the header's {@code __metadata__}: string keys to string values, unmodifiable} */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** {@return bytes of tensor data in the file: a bound on what its tensors can really hold, whatever else it claims} */
    public long dataLength() {
        return dataLength;
    }

    /**
     * The header entry of a tensor.
     *
     * @param name the tensor's name
     * @return its entry
     * @throws SafeTensorsException naming the tensor when the file has none of that name
     */
    public Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) {
            throw new SafeTensorsException(source + ": missing tensor " + quote(name));
        }
        return e;
    }

    /**
     * The raw bytes of a tensor.
     *
     * @param name the tensor's name
     * @return a read-only little-endian view of the mapped file
     */
    public ByteBuffer buffer(String name) {
        Entry e = entry(name);
        long length = e.end() - e.begin();
        Map.Entry<Long, ByteBuffer> w = windows.floorEntry(e.begin());
        if (length == 0) {
            return ByteBuffer.allocate(0).order(ByteOrder.LITTLE_ENDIAN).asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
        }
        if (length > MAX_WINDOW || w == null || e.end() - w.getKey() > w.getValue().capacity()) {
            throw new SafeTensorsException(source + ": tensor " + quote(name) + " spans " + length
                    + " bytes, more than one Java buffer holds (" + MAX_WINDOW + ")");
        }
        return w.getValue().slice((int) (e.begin() - w.getKey()), (int) length).asReadOnlyBuffer()
                .order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * A copy of a tensor's raw bytes (little-endian), read from the file with positional reads rather than through
     * the mapping: a loader that reads every tensor once then leaves no mapped pages behind in the process's
     * resident set (a 2.2 GB checkpoint read through the mapping adds 2.2 GB to the peak RSS).
     *
     * @param name the tensor's name
     * @return a heap buffer holding the tensor's bytes
     */
    public ByteBuffer read(String name) {
        Entry e = entry(name);
        if (file == null) {
            ByteBuffer b = buffer(name);
            return ByteBuffer.allocate(b.remaining()).put(b).flip().order(ByteOrder.LITTLE_ENDIAN);
        }
        long length = e.end() - e.begin();
        if (length > MAX_WINDOW) {
            throw new SafeTensorsException(source + ": tensor " + quote(name) + " spans " + length
                    + " bytes, more than one Java buffer holds (" + MAX_WINDOW + ")");
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer b = readFully(ch, dataStart + e.begin(), (int) length);
            return b.order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException x) {
            throw new SafeTensorsException(source + ": cannot read tensor " + quote(name) + ": " + x.getMessage(), x);
        }
    }

    /**
     * A floating-point tensor (F32, F16 or BF16) widened to fp32; other dtypes are refused by name.
     *
     * @param name the tensor's name
     * @return its values as fp32, in its shape
     */
    public Tensor floats(String name) {
        Entry e = entry(name);
        if (e.dtype() != DType.F32 && e.dtype() != DType.F16 && e.dtype() != DType.BF16) {
            throw new SafeTensorsException(source + ": tensor " + quote(name) + " has dtype " + e.dtype()
                    + ", expected F32, F16 or BF16");
        }
        ByteBuffer b = read(name);  // not through the mapping: see read()
        float[] out = new float[e.numel()];
        switch (e.dtype()) {
            case F32 -> b.asFloatBuffer().get(out);
            case F16 -> {
                for (int i = 0; i < out.length; i++) out[i] = Float.float16ToFloat(b.getShort(2 * i));
            }
            default -> {
                for (int i = 0; i < out.length; i++) out[i] = BFloat16.toFloat(b.getShort(2 * i));
            }
        }
        return new Tensor(e.shape(), out);
    }

    /**
     * An F32 tensor whose shape is checked.
     *
     * @param name          the tensor's name
     * @param expectedShape the shape it must have ({@code -1} matches any size); none: any shape
     * @return the tensor
     */
    public Tensor f32(String name, int... expectedShape) {
        Entry e = requireDType(name, DType.F32);
        if (expectedShape.length > 0) {
            boolean ok = e.shape().length == expectedShape.length;
            for (int i = 0; ok && i < expectedShape.length; i++) {
                ok = expectedShape[i] < 0 || expectedShape[i] == e.shape()[i];
            }
            if (!ok) {
                throw new SafeTensorsException(source + ": tensor " + quote(name) + ": expected shape "
                        + formatPattern(expectedShape) + " but got " + Shapes.format(e.shape()));
            }
        }
        return floats(name);
    }

    /**
     * The raw bytes of a tensor of the given dtype.
     *
     * @param name  the tensor's name
     * @param dtype the dtype it must have
     * @return a copy of its bytes, little-endian
     */
    public byte[] bytes(String name, DType dtype) {
        requireDType(name, dtype);
        ByteBuffer b = buffer(name);
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    /**
     * The entry of a tensor that must have a given dtype.
     *
     * @param name  the tensor's name
     * @param dtype the dtype it must have
     * @return its entry
     * @throws SafeTensorsException naming the tensor and both dtypes when they differ
     */
    public Entry requireDType(String name, DType dtype) {
        Entry e = entry(name);
        if (e.dtype() != dtype) {
            throw new SafeTensorsException(source + ": tensor " + quote(name) + " has dtype " + e.dtype()
                    + ", expected " + dtype);
        }
        return e;
    }

    /**
     * A metadata value that must be present.
     *
     * @param key the metadata key
     * @return its value
     * @throws SafeTensorsException naming the key when it is absent
     */
    public String requireMetadata(String key) {
        String v = metadata.get(key);
        if (v == null) {
            throw new SafeTensorsException(source + ": missing metadata " + quote(key));
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
