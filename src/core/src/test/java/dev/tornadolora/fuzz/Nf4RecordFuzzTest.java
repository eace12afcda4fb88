package dev.tornadolora.fuzz;

import dev.tornadolora.io.DType;
import dev.tornadolora.io.Nf4Record;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.tensor.Nf4Tensor;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.statistics.Statistics;
import net.jqwik.api.lifecycle.AfterContainer;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Fuzzes the NF4 record decoder with records that are nearly right: a real quantization of a random weight whose
 * parts are then edited (block sizes and shape in the metadata, a part dropped, of another dtype or length, the
 * factors, mean, scalers or codes replaced by arbitrary bits), alone or inside a QLoRA checkpoint. A record that
 * is read must decode, element by element, to its definition (see {@link LoaderTargets#checkDecode}).
 */
class Nf4RecordFuzzTest {

    enum EditKind { BLOCK_SIZE, SCALER_BLOCK_SIZE, SHAPE, DROP_PART, PART_DTYPE, PART_LENGTH, FACTOR_BITS, MEAN_BITS,
        SCALER_BYTES, CODE_BYTES, ADAPTER_SHAPE }

    record Edit(EditKind kind, int a, int b) {}

    /** A quantized [rows, cols] weight (rows·cols = blockSize·scalerBlockSize·scalerBlocks) and edits of it. */
    record Nf4Case(int rows, int cols, int blockSize, int scalerBlockSize, long seed, boolean checkpoint, List<Edit> edits) {}

    @Property
    void nearlyValidRecordsDecodeCorrectlyOrAreRejectedWithAMessage(@ForAll("records") Nf4Case c) {
        byte[] file = write(c);
        AtomicReference<String> record = new AtomicReference<>("file rejected");
        FuzzHarness.run("nf4", file, bytes -> record.set(readRecord(bytes, c)));
        Statistics.collect(c.edits().isEmpty() ? "unedited" : "edited", record.get());
    }

    /** Reads the record with the shape the caller knows, then everything else in the file; says how it went. */
    private static String readRecord(byte[] bytes, Nf4Case c) {
        SafeTensors st = SafeTensors.parse("fuzz", ByteBuffer.wrap(bytes));
        String outcome = "record decoded";
        try {
            LoaderTargets.checkDecode(Nf4Record.read(st, "weight", c.rows(), c.cols()));
        } catch (IllegalArgumentException e) {
            if (c.edits().isEmpty()) {
                throw new AssertionError("a valid record was rejected", e);
            }
            if (e.getMessage() == null || e.getMessage().isBlank()) {
                throw new AssertionError("rejected without a message", e);
            }
            FuzzHarness.noteRejection(e.getMessage());
            outcome = "record rejected";
        }
        LoaderTargets.readAll(st, bytes.length);
        return outcome;
    }

    @Provide
    Arbitrary<Nf4Case> records() {
        Arbitrary<Integer> blockSize = Arbitraries.integers().between(1, 16);
        Arbitrary<Integer> scalerBlockSize = Arbitraries.integers().between(1, 4);
        Arbitrary<Integer> scalerBlocks = Arbitraries.integers().between(1, 4);
        Arbitrary<Edit> edit = Combinators.combine(Arbitraries.of(EditKind.class),
                Arbitraries.integers().between(0, 1 << 16), Arbitraries.integers()).as(Edit::new);
        return Combinators.combine(blockSize, scalerBlockSize, scalerBlocks, Arbitraries.integers().between(0, 64),
                        Arbitraries.longs(), Arbitraries.of(true, false),
                        Arbitraries.frequencyOf(Tuple.of(1, Arbitraries.just(List.<Edit>of())),
                                Tuple.of(9, edit.list().ofMinSize(1).ofMaxSize(3))))
                .as((bs, sbs, nsb, rowChoice, seed, checkpoint, edits) -> {
                    int numel = bs * sbs * nsb * (bs * sbs * nsb % 2 == 0 ? 1 : 2);
                    int[] divisors = java.util.stream.IntStream.rangeClosed(1, numel).filter(d -> numel % d == 0).toArray();
                    int rows = divisors[rowChoice % divisors.length];
                    int blocks = numel / bs;
                    return new Nf4Case(rows, numel / rows, bs, blocks % sbs == 0 ? sbs : 1, seed, checkpoint, edits);
                });
    }

    /** The file of a case: the quantized weight under "weight" (plus adapters when a checkpoint), then the edits. */
    static byte[] write(Nf4Case c) {
        SplittableRandom rng = new SplittableRandom(c.seed());
        float[] w = new float[c.rows() * c.cols()];
        for (int i = 0; i < w.length; i++) w[i] = (float) rng.nextGaussian();
        Nf4Tensor t = Nf4Tensor.quantize(w, c.rows(), c.cols(), c.blockSize(), c.scalerBlockSize());
        Map<String, Object[]> parts = new LinkedHashMap<>();  // name -> {dtype, shape, bytes}
        parts.put("weight.quantized_data", new Object[] {DType.U8, new int[] {t.packedCodes().length}, t.packedCodes().clone()});
        parts.put("weight.quantized_scalers", new Object[] {DType.I8, new int[] {t.quantizedScalers().length}, t.quantizedScalers().clone()});
        parts.put("weight.quantization_factor", new Object[] {DType.F32, new int[] {t.quantizationFactor().length}, f32(t.quantizationFactor())});
        parts.put("weight.scaler_mean", new Object[] {DType.F32, new int[0], f32(t.scalerMean())});
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put(Nf4Record.BLOCK_SIZE, Integer.toString(c.blockSize()));
        metadata.put(Nf4Record.SCALER_BLOCK_SIZE, Integer.toString(c.scalerBlockSize()));
        metadata.put("weight.shape", "[" + c.rows() + ", " + c.cols() + "]");
        int rank = 2, in = c.cols(), outDim = c.rows();
        if (c.checkpoint()) {
            metadata.put("alpha", "2");
            parts.put("lora_a.weight", new Object[] {DType.F32, new int[] {rank, in}, new byte[4 * rank * in]});
            parts.put("lora_b.weight", new Object[] {DType.F32, new int[] {outDim, rank}, new byte[4 * outDim * rank]});
        }
        List<String> names = List.copyOf(parts.keySet());
        for (Edit e : c.edits()) {
            String part = names.get(Math.floorMod(e.a(), names.size()));
            Object[] p = parts.get(part);
            switch (e.kind()) {
                case BLOCK_SIZE -> metadata.put(Nf4Record.BLOCK_SIZE, Integer.toString(e.b() % 70));
                case SCALER_BLOCK_SIZE -> metadata.put(Nf4Record.SCALER_BLOCK_SIZE, Integer.toString(e.b() % 9));
                case SHAPE -> metadata.put("weight.shape", switch (Math.floorMod(e.b(), 5)) {
                    case 0 -> "[" + c.cols() + ", " + c.rows() + "]";
                    case 1 -> "[" + (c.rows() * 2) + ", " + c.cols() + "]";
                    case 2 -> "[2147483647, 2147483647]";
                    case 3 -> "[" + c.rows() + "]";
                    default -> "garbage";
                });
                case DROP_PART -> parts.remove(part);
                case PART_DTYPE -> {
                    if (p != null) p[0] = DType.values()[Math.floorMod(e.b(), DType.values().length)];
                }
                case PART_LENGTH -> {
                    if (p != null) p[2] = Arrays.copyOf((byte[]) p[2], Math.max(0, ((byte[]) p[2]).length + e.b() % 9));
                }
                case FACTOR_BITS -> overwrite(parts.get("weight.quantization_factor"), e);
                case MEAN_BITS -> overwrite(parts.get("weight.scaler_mean"), e);
                case SCALER_BYTES -> overwrite(parts.get("weight.quantized_scalers"), e);
                case CODE_BYTES -> overwrite(parts.get("weight.quantized_data"), e);
                case ADAPTER_SHAPE -> {
                    Object[] a = parts.get("lora_a.weight");
                    if (a != null) {
                        int r = Math.floorMod(e.b(), 4);
                        a[1] = new int[] {r, in};
                        a[2] = new byte[4 * r * in];
                    }
                }
            }
        }
        SafeTensorsWriter out = new SafeTensorsWriter().metadata(metadata);
        parts.forEach((name, p) -> {
            DType dtype = (DType) p[0];
            byte[] bytes = (byte[]) p[2];
            // The writer insists that bytes fill dtype x shape, so an edited length or dtype gets a matching shape:
            // the file stays valid safetensors and the record's own checks are what is exercised.
            int[] shape = bytes.length % dtype.size() == 0 && ((int[]) p[1]).length == 1
                    ? new int[] {bytes.length / dtype.size()} : (int[]) p[1];
            if ((long) dev.tornadolora.tensor.Shapes.numel(shape) * dtype.size() != bytes.length) {
                bytes = Arrays.copyOf(bytes, dev.tornadolora.tensor.Shapes.numel(shape) * dtype.size());
            }
            out.raw(name, dtype, shape, bytes);
        });
        return out.toBytes();
    }

    /** Overwrites 4 bytes at a chosen place with the edit's bits (any float: NaN, ±Inf, subnormal, negative). */
    private static void overwrite(Object[] part, Edit e) {
        if (part == null) return;
        byte[] bytes = (byte[]) part[2];
        if (bytes.length == 0) return;
        int at = Math.floorMod(e.a(), Math.max(1, bytes.length - 3));
        byte[] bits = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(e.b()).array();
        for (int i = 0; i < 4 && at + i < bytes.length; i++) bytes[at + i] = bits[i];
    }

    private static byte[] f32(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        return b.array();
    }

    @AfterContainer
    static void report() {
        System.out.println(FuzzHarness.summary());
        System.out.println(FuzzHarness.rejections("nf4"));
    }
}
