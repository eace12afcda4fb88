package dev.tornadolora.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.stream.Stream;

import static dev.tornadolora.cli.FinetuneCommandTest.args;
import static dev.tornadolora.cli.FinetuneCommandTest.assertOneLineError;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

/**
 * Issue 23: the hostile-input classes at the mechanism, through the commands users run. Every refusal is one line
 * naming the file or option, exit 1, within seconds (a FIFO or /dev/zero would hang or fill the heap).
 */
class HostileInputTest {
    @TempDir
    Path tmp;

    @BeforeAll
    static void fixture() {
        FinetuneCommandTest.findFixture();
    }

    /** A copy of the golden model folder (config.json, model.safetensors, tokenizer.json). */
    private Path modelCopy() throws IOException {
        Path m = Files.createDirectories(tmp.resolve("model"));
        try (Stream<Path> s = Files.list(FinetuneCommandTest.model())) {
            for (Path p : s.toList()) Files.copy(p, m.resolve(p.getFileName()));
        }
        return m;
    }

    private Path data() throws IOException {
        return Files.writeString(tmp.resolve("d.jsonl"), "{\"text\": \"the cat sat on the mat\"}\n".repeat(8));
    }

    private static void mkfifo(Path p) throws Exception {
        Files.deleteIfExists(p);
        Process proc = new ProcessBuilder("mkfifo", p.toString()).start();
        Assumptions.assumeTrue(proc.waitFor() == 0, "mkfifo is not available");
    }

    private static CliRun finetune(Path model, Path data, Path out, String... more) {
        String[] a = args(data, out, more);
        for (int i = 0; i < a.length; i++) if (a[i].equals("--model")) a[i + 1] = model.toString();
        return CliRun.of(a);
    }

    private static void refusedFast(String expected, java.util.function.Supplier<CliRun> run) {
        assertTimeoutPreemptively(Duration.ofSeconds(30), () -> assertOneLineError(run.get(), expected));
    }

    // ------------------------------------------------------------ class 1: one bounded, regular-file-only reader

    @Test
    void aFifoConfigJsonIsRefusedNotWaitedOn() throws Exception {
        Path m = modelCopy(), d = data();
        mkfifo(m.resolve("config.json"));
        refusedFast(m.resolve("config.json") + ": is not a regular file",
                () -> finetune(m, d, tmp.resolve("o"), "--steps", "1", "--seq-len", "4"));
    }

    @Test
    void aConfigJsonThatIsDevZeroIsRefusedNotRead() throws Exception {
        Path m = modelCopy(), d = data();
        Files.delete(m.resolve("config.json"));
        Files.createSymbolicLink(m.resolve("config.json"), Path.of("/dev/zero"));
        refusedFast(m.resolve("config.json") + ": is not a regular file",
                () -> finetune(m, d, tmp.resolve("o"), "--steps", "1", "--seq-len", "4"));
    }

    @Test
    void aHugeAdapterConfigIsRefusedBeforeItIsRead() throws Exception {
        Path a = Files.createDirectories(tmp.resolve("adapter"));
        try (RandomAccessFile f = new RandomAccessFile(a.resolve("adapter_config.json").toFile(), "rw")) {
            f.setLength(1_500_000_000L);  // sparse: no disk used
        }
        Path in = FinetuneCommandTest.tokens(tmp, 1, 4, 8);
        refusedFast(a.resolve("adapter_config.json") + ": 1500000000 bytes, more than the",
                () -> CliRun.of("forward", "--model", FinetuneCommandTest.model().toString(), "--input", in.toString(),
                        "--adapter", a.toString(), "--output", tmp.resolve("o.safetensors").toString()));
    }

    @Test
    void aFifoTokenizerJsonOrDataFileIsRefused() throws Exception {
        Path m = modelCopy(), d = data();
        mkfifo(m.resolve("tokenizer.json"));
        refusedFast(m.resolve("tokenizer.json") + ": is not a regular file",
                () -> finetune(m, d, tmp.resolve("o"), "--steps", "1", "--seq-len", "4"));
        Path fifo = tmp.resolve("fifo.jsonl");
        mkfifo(fifo);
        refusedFast(fifo + ": is not a regular file",
                () -> finetune(FinetuneCommandTest.model(), fifo, tmp.resolve("o2"), "--steps", "1", "--seq-len", "4"));
    }

    @Test
    void aSecondJsonValueOnALineIsRefusedNotDropped() throws Exception {
        Path d = Files.writeString(tmp.resolve("two.jsonl"), "{\"text\": \"a b\"}\n{\"text\": \"c\"} {\"text\": \"d\"}\n");
        refusedFast(d + ", line 2: not valid JSON",
                () -> finetune(FinetuneCommandTest.model(), d, tmp.resolve("o"), "--steps", "1", "--seq-len", "4"));
    }

    @Test
    void aDuplicateKeyInTheShardIndexIsRefused() throws Exception {
        Path m = modelCopy(), d = data();
        Files.move(m.resolve("model.safetensors"), m.resolve("model-00001-of-00001.safetensors"));
        Files.writeString(m.resolve("model.safetensors.index.json"), "{\"metadata\": {}, \"weight_map\": {"
                + "\"model.norm.weight\": \"model-00001-of-00001.safetensors\","
                + "\"model.norm.weight\": \"model-00001-of-00001.safetensors\"}}");
        refusedFast(m.resolve("model.safetensors.index.json") + ": not valid JSON: Duplicate field",
                () -> finetune(m, d, tmp.resolve("o"), "--steps", "1", "--seq-len", "4"));
    }

    @Test
    void aFractionalHiddenSizeIsRefusedAsTransformersRefusesIt() throws Exception {
        Path m = modelCopy(), d = data();
        ObjectNode c = (ObjectNode) FinetuneCommandTest.JSON.readTree(m.resolve("config.json").toFile());
        c.put("hidden_size", (double) c.get("hidden_size").asInt());
        Files.writeString(m.resolve("config.json"), c.toString());
        refusedFast(m.resolve("config.json") + ": 'hidden_size' must be an integer but is 32.0",
                () -> finetune(m, d, tmp.resolve("o"), "--steps", "1", "--seq-len", "4"));
    }

    // ------------------------------------------------------------ class 4: checked products of user numbers

    @Test
    void productsOfOptionsThatOverflowNameTheOptionToLower() throws Exception {
        Path d = data();
        refusedFast("rows per optimizer step: --batch × --grad-accum = 65536 × 65536 = 4294967296 is more than",
                () -> finetune(FinetuneCommandTest.model(), d, tmp.resolve("o"), "--steps", "1", "--seq-len", "4",
                        "--batch", "65536", "--grad-accum", "65536"));
        refusedFast("lower --grad-accum",
                () -> finetune(FinetuneCommandTest.model(), d, tmp.resolve("o"), "--epochs", "1", "--seq-len", "4",
                        "--batch", "65536", "--grad-accum", "65537"));
        refusedFast("tokens per micro-batch: --batch × --seq-len = 2000000000 × 4",
                () -> finetune(FinetuneCommandTest.model(), d, tmp.resolve("o"), "--steps", "1", "--seq-len", "4",
                        "--batch", "2000000000"));
    }

    // ------------------------------------------------------------ class 7: tokenizer randomness

    @Test
    void aTokenizerWithBpeDropoutIsRefused() throws Exception {
        Path m = modelCopy(), d = data();
        ObjectNode t = (ObjectNode) FinetuneCommandTest.JSON.readTree(m.resolve("tokenizer.json").toFile());
        ((ObjectNode) t.get("model")).put("dropout", 0.1);
        Files.writeString(m.resolve("tokenizer.json"), t.toString());
        refusedFast(m.resolve("tokenizer.json") + ": model.dropout is 0.1: BPE dropout",
                () -> finetune(m, d, tmp.resolve("o"), "--steps", "1", "--seq-len", "4"));
    }

    // ------------------------------------------------------------ class 3: finetune's resume point has a run identity

    @Test
    void aResumePointFromAnotherRunOrAChangedModelIsRefusedByName() throws Exception {
        Path m = modelCopy(), d = data(), a = tmp.resolve("a"), b = tmp.resolve("b");
        String[] opts = {"--steps", "2", "--seq-len", "4", "--batch", "1", "--save-every", "1"};
        CliRun first = finetune(m, d, a, opts);
        org.junit.jupiter.api.Assertions.assertEquals(0, first.exitCode(), first.err());
        String[] otherLr = java.util.stream.Stream.concat(java.util.Arrays.stream(opts), Stream.of("--lr", "0.01"))
                .toArray(String[]::new);
        org.junit.jupiter.api.Assertions.assertEquals(0, finetune(m, d, b, otherLr).exitCode());
        // Another run's state put in this run's folder: refused naming what differs, nothing replaced.
        Path state = a.resolve(dev.tornadolora.io.RunFiles.STATE);
        byte[] mine = Files.readAllBytes(state);
        Files.copy(b.resolve(dev.tornadolora.io.RunFiles.STATE), state, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        byte[] adapters = Files.readAllBytes(a.resolve("peft/adapter_model.safetensors"));
        refusedFast("was trained with other options: lr 0.01 -> 3.0E-4",
                () -> finetune(m, d, a, append(opts, "--resume")));
        org.junit.jupiter.api.Assertions.assertArrayEquals(adapters, Files.readAllBytes(a.resolve("peft/adapter_model.safetensors")));
        Files.write(state, mine);
        // A base weight changed in place (same path, same shapes): the digest of what was read differs.
        try (RandomAccessFile f = new RandomAccessFile(m.resolve("model.safetensors").toFile(), "rw")) {
            f.seek(f.length() - 4);
            int v = f.read();
            f.seek(f.length() - 4);
            f.write(v ^ 1);
        }
        refusedFast("model_digest", () -> finetune(m, d, a, append(opts, "--resume")));
    }

    // ------------------------------------------------------------ class 5: a memory estimate before work

    @Test
    void aBatchOrForwardTooLargeForTheHeapIsRefusedBeforeWork() throws Exception {
        Path d = data();
        refusedFast("a micro-batch of 1000000 x 8 tokens on this model needs",
                () -> finetune(FinetuneCommandTest.model(), d, tmp.resolve("o"), "--steps", "1", "--seq-len", "8",
                        "--batch", "1000000"));
        refusedFast("lower --batch or --seq-len", () -> finetune(FinetuneCommandTest.model(), d, tmp.resolve("o"),
                "--steps", "1", "--seq-len", "8", "--batch", "1000000"));
        Path in = FinetuneCommandTest.tokens(tmp, 256, 4096, 8);
        long t0 = System.nanoTime();
        refusedFast("a forward of 256 x 4096 tokens on this model needs",
                () -> CliRun.of("forward", "--model", FinetuneCommandTest.model().toString(), "--input", in.toString(),
                        "--output", tmp.resolve("o.safetensors").toString()));
        org.junit.jupiter.api.Assertions.assertFalse(Files.exists(tmp.resolve("o.safetensors")));
    }

    @Test
    void aJsonlLineLongerThanTheBoundIsRefusedAsItIsRead() throws Exception {
        Path d = tmp.resolve("long.jsonl");
        try (var w = Files.newBufferedWriter(d)) {
            w.write("{\"text\": \"a\"}\n{\"text\": \"");
            String chunk = "word ".repeat(1000);
            for (int i = 0; i < 19 * 1024 * 1024 / chunk.length(); i++) w.write(chunk);
            w.write("\"}\n");
        }
        refusedFast(d + ", line 2: longer than 8388608 bytes (split the document into several lines)",
                () -> finetune(FinetuneCommandTest.model(), d, tmp.resolve("o"), "--steps", "1", "--seq-len", "4"));
    }

    // ------------------------------------------------------------ class 8: --spark arguments before Spark starts

    @Test
    void sparkArgumentsAreCheckedBeforeSparkStarts() throws Exception {
        Path d = data();
        refusedFast("--spark local[1] has 1 task slot but --workers 2 barrier tasks must all run at once",
                () -> finetune(FinetuneCommandTest.model(), d, tmp.resolve("o"), "--steps", "1", "--spark", "local[1]",
                        "--workers", "2"));
        refusedFast("--spark local has 1 task slot but --workers 2",
                () -> finetune(FinetuneCommandTest.model(), d, tmp.resolve("o"), "--spark", "local", "--workers", "2"));
        refusedFast("--check-every must be at least 1",
                () -> finetune(FinetuneCommandTest.model(), d, tmp.resolve("o"), "--spark", "local[2]", "--check-every", "0"));
        refusedFast("lower --grad-accum", () -> finetune(FinetuneCommandTest.model(), d, tmp.resolve("o"), "--spark",
                "local[2]", "--batch", "65536", "--grad-accum", "65537"));
        org.junit.jupiter.api.Assertions.assertEquals(6, SparkArguments.slots("local-cluster[2, 3, 1024]", 4));
        org.junit.jupiter.api.Assertions.assertEquals(4, SparkArguments.slots("local[*]", 4));
        org.junit.jupiter.api.Assertions.assertEquals(3, SparkArguments.slots("local[3,2]", 4));
        org.junit.jupiter.api.Assertions.assertEquals(-1, SparkArguments.slots("spark://host:7077", 4));
    }

    // ------------------------------------------------------------ class 2: the tokenizer's native code contained

    /**
     * A pre-tokenizer regex that backtracks makes the tokenizers library panic across JNI, which aborts the JVM
     * (exit 134): in-process, this test's JVM would die. Tokenizing runs in a child JVM, so it is one line naming the
     * tokenizer and the line, and no crash log is left in the working folder.
     */
    @Test
    void aTokenizerWhoseNativeCodeAbortsDoesNotEndTheProcess() throws Exception {
        Path m = modelCopy();
        ObjectNode t = (ObjectNode) FinetuneCommandTest.JSON.readTree(m.resolve("tokenizer.json").toFile());
        ObjectNode split = t.putObject("pre_tokenizer").put("type", "Split").put("behavior", "Isolated").put("invert", false);
        split.putObject("pattern").put("Regex", "(a|aa)+$");
        Files.writeString(m.resolve("tokenizer.json"), t.toString());
        Path d = Files.writeString(tmp.resolve("d.jsonl"), "{\"text\": \"a b\"}\n{\"text\": \"" + "a".repeat(60) + "b\"}\n");
        long logsBefore = hsErrLogs();
        refusedFast(m.resolve("tokenizer.json") + ": the tokenizers native library crashed (SIGABRT, exit 134) while"
                + " tokenizing " + d + ", line 2", () -> finetune(m, d, tmp.resolve("o"), "--steps", "1", "--seq-len", "4"));
        org.junit.jupiter.api.Assertions.assertEquals(logsBefore, hsErrLogs(), "no hs_err log in the working folder");
    }

    @Test
    void aTokenizerTheLibraryCannotBuildIsOneLineNamingIt() throws Exception {
        Path m = modelCopy(), d = data();
        ObjectNode t = (ObjectNode) FinetuneCommandTest.JSON.readTree(m.resolve("tokenizer.json").toFile());
        ((ObjectNode) t.get("model")).put("type", "NoSuchModel");
        Files.writeString(m.resolve("tokenizer.json"), t.toString());
        refusedFast(m.resolve("tokenizer.json") + ": the tokenizers library refused it: ",
                () -> finetune(m, d, tmp.resolve("o"), "--steps", "1", "--seq-len", "4"));
    }

    /**
     * A damaged cached copy of the native library (here: truncated, which crashes the JVM that loads it) does not
     * end the run: the child that crashed loading it is started again with a fresh copy extracted from the jar.
     */
    @Test
    void aDamagedCachedNativeLibraryIsReplacedByAFreshCopy() throws Exception {
        Path home = Path.of(System.getProperty("user.home"), ".djl.ai", "tokenizers");
        Path lib;
        try (Stream<Path> s = Files.exists(home) ? Files.walk(home) : Stream.empty()) {
            lib = s.filter(p -> p.getFileName().toString().startsWith("libtokenizers")).findFirst().orElse(null);
        }
        Assumptions.assumeTrue(lib != null, "no cached tokenizers library to copy the layout from");
        Path cache = tmp.resolve("djl");
        Path damaged = cache.resolve("tokenizers").resolve(home.relativize(lib));
        Files.createDirectories(damaged.getParent());
        byte[] head = java.util.Arrays.copyOf(Files.readAllBytes(lib), 4096);
        Files.write(damaged, head);
        String before = System.getProperty("ENGINE_CACHE_DIR");
        System.setProperty("ENGINE_CACHE_DIR", cache.toString());
        try {
            CliRun r = finetune(FinetuneCommandTest.model(), data(), tmp.resolve("o"), "--steps", "1", "--seq-len", "4");
            org.junit.jupiter.api.Assertions.assertEquals(0, r.exitCode(), r.err());
        } finally {
            if (before == null) System.clearProperty("ENGINE_CACHE_DIR"); else System.setProperty("ENGINE_CACHE_DIR", before);
        }
    }

    private static long hsErrLogs() throws IOException {
        try (Stream<Path> s = Files.list(Path.of(""))) {
            return s.filter(p -> p.getFileName().toString().startsWith("hs_err")).count();
        }
    }

    // ------------------------------------------------------------ the weak cases

    @Test
    void nonFiniteWeightsOrAdaptersAreNamedNotTrainedOrForwarded() throws Exception {
        Path m = modelCopy(), d = data();
        try (RandomAccessFile f = new RandomAccessFile(m.resolve("model.safetensors").toFile(), "rw")) {
            f.seek(f.length() - 4);
            f.write(new byte[] {0, 0, (byte) 0xc0, 0x7f});  // NaN, little-endian
        }
        refusedFast(m.resolve("model.safetensors") + ": tensor '", () -> finetune(m, d, tmp.resolve("o"), "--steps", "1",
                "--seq-len", "4"));
        refusedFast("holds NaN at index", () -> finetune(m, d, tmp.resolve("o"), "--steps", "1", "--seq-len", "4"));
        // A NaN adapter: forward refuses it by name instead of writing NaN logits with exit 0.
        Path golden = FinetuneCommandTest.model().resolveSibling("adapter"), a = Files.createDirectories(tmp.resolve("nan"));
        Files.copy(golden.resolve("adapter_config.json"), a.resolve("adapter_config.json"));
        dev.tornadolora.io.SafeTensors st = dev.tornadolora.io.SafeTensors.open(golden.resolve("adapter_model.safetensors"));
        dev.tornadolora.io.SafeTensorsWriter w = new dev.tornadolora.io.SafeTensorsWriter();
        String poisoned = st.names().iterator().next();
        for (String k : st.names()) {
            float[] v = st.floats(k).data().clone();
            if (k.equals(poisoned)) v[1] = Float.POSITIVE_INFINITY;
            w.f32(k, st.entry(k).shape(), v);
        }
        w.write(a.resolve("adapter_model.safetensors"));
        Path in = FinetuneCommandTest.tokens(tmp, 1, 4, 8);
        refusedFast("adapter tensor '" + poisoned + "' holds Infinity at index 1",
                () -> CliRun.of("forward", "--model", FinetuneCommandTest.model().toString(), "--input", in.toString(),
                        "--adapter", a.toString(), "--output", tmp.resolve("o.safetensors").toString()));
        org.junit.jupiter.api.Assertions.assertFalse(Files.exists(tmp.resolve("o.safetensors")));
    }

    @Test
    void anOutputFolderThatIsTheModelFolderIsRefused() throws Exception {
        Path m = modelCopy(), d = data();
        long before = Files.list(m).count();
        refusedFast("--output " + m + " is --model " + m + ": the outputs would be mixed with an input",
                () -> finetune(m, d, m, "--steps", "1", "--seq-len", "4"));
        refusedFast("is inside --model", () -> finetune(m, d, m.resolve("run"), "--steps", "1", "--seq-len", "4"));
        org.junit.jupiter.api.Assertions.assertEquals(before, Files.list(m).count(), "nothing written in the model folder");
    }

    @Test
    void anInitAdapterContradictingExplicitOptionsIsRefused() throws Exception {
        Path d = data(), a = FinetuneCommandTest.model().resolveSibling("adapter");
        refusedFast("--init-adapter " + a + " decides the adapters' shape, but --lora-rank 3 (its r is",
                () -> finetune(FinetuneCommandTest.model(), d, tmp.resolve("o"), "--steps", "1", "--seq-len", "4",
                        "--init-adapter", a.toString(), "--lora-rank", "3"));
    }

    @Test
    void forwardWithoutAnAdapterDoesNotClaimAdapterGradients() throws Exception {
        Path in = tmp.resolve("in.safetensors");
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * 8 * 2).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 4; i++) b.putLong(i + 3);
        for (int i = 0; i < 4; i++) b.putLong(i + 4);
        byte[] all = b.array();
        new dev.tornadolora.io.SafeTensorsWriter()
                .raw("input_ids", dev.tornadolora.io.DType.I64, new int[] {1, 4}, java.util.Arrays.copyOfRange(all, 0, 32))
                .raw("labels", dev.tornadolora.io.DType.I64, new int[] {1, 4}, java.util.Arrays.copyOfRange(all, 32, 64))
                .write(in);
        CliRun r = CliRun.of("forward", "--model", FinetuneCommandTest.model().toString(), "--input", in.toString(),
                "--output", tmp.resolve("o.safetensors").toString());
        org.junit.jupiter.api.Assertions.assertEquals(0, r.exitCode(), r.err());
        org.junit.jupiter.api.Assertions.assertEquals("wrote " + tmp.resolve("o.safetensors") + ": logits and loss",
                r.out().strip());
    }

    private static String[] append(String[] a, String... more) {
        return Stream.concat(java.util.Arrays.stream(a), java.util.Arrays.stream(more)).toArray(String[]::new);
    }
}
