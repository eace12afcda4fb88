package dev.tornadolora.data;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.tornadolora.io.SafeText;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Tokenizing with Hugging Face's tokenizers (DJL's native binding) in a child JVM, so that what the native code
 * does with a user's tokenizer.json cannot end this process: a pre-tokenizer regex that backtracks makes the
 * library panic across JNI, which aborts the JVM (exit 134 and an {@code hs_err} file), and a damaged cached copy
 * of the library under {@code ~/.djl.ai} dies with SIGBUS when loaded. The child reads the checked tokenizer text
 * and the documents from its stdin and writes each document's ids to its stdout; a child that dies is reported
 * as one line naming the tokenizer, the signal and the line being tokenized, and its crash log goes to a temporary
 * folder, not the working folder. A crash before the first document is retried once with a fresh native-library
 * cache (a damaged cached copy). The cost: one JVM start (about half a second) and the ids through a pipe.
 */
final class IsolatedTokenizer {
    /**
     * Options of this JVM the child takes too, by prefix (not its modules: with TornadoVM those name modules of a
     * module path the child does not have).
     */
    private static final List<String> INHERITED = List.of("-Xmx", "--sun-misc-unsafe-memory-access", "-Djava.io.tmpdir");

    /** What the child writes once the tokenizer is built, before any document. */
    private static final int READY = -1;
    /** The child's exit status when the native library cannot be loaded (a damaged or missing copy). */
    private static final int NO_LIBRARY = 3;

    private IsolatedTokenizer() {}

    /**
     * Tokenizes {@code texts} without special tokens, truncation or padding.
     *
     * @param tokenizerJson the tokenizer's path, for messages
     * @param tokenizer     its checked text ({@link dev.tornadolora.io.TokenizerJson#read})
     * @param texts         the documents
     * @param lineOf        names document i in messages ("FILE, line N")
     * @return the ids of each document
     * @throws IllegalArgumentException one line naming the tokenizer (and the line) when the tokenizer refuses or
     *                                  its native code dies
     */
    static List<long[]> encode(Path tokenizerJson, String tokenizer, List<String> texts,
                               java.util.function.IntFunction<String> lineOf) throws IOException {
        Path work = Files.createTempDirectory("tornado-lora-tokenize");
        try {
            Result r = run(tokenizer, texts, work, null);
            if ((r.crashed() || r.exit() == NO_LIBRARY) && !r.loaded()) {
                r = run(tokenizer, texts, work, work.resolve("djl-cache"));  // a damaged cached copy: a fresh one
            }
            if (r.exit() == 0 && r.ids().size() == texts.size()) return r.ids();
            if (r.exit() == NO_LIBRARY) {
                throw new IllegalArgumentException(tokenizerJson + ": the tokenizers native library cannot be loaded ("
                        + SafeText.of(r.lastError()) + ")");
            }
            if (!r.crashed()) {  // the child refused: its last line says why (the library's message)
                throw new IllegalArgumentException(tokenizerJson + ": the tokenizers library refused it: "
                        + SafeText.of(r.lastError()));
            }
            String at = r.ids().size() < texts.size() ? " while tokenizing " + lineOf.apply(r.ids().size()) : "";
            throw new IllegalArgumentException(tokenizerJson + ": the tokenizers native library crashed ("
                    + r.how() + ")" + (r.loaded() ? at : " while loading") + (!r.loaded()
                    ? "; if its cached copy is damaged, delete ~/.djl.ai/tokenizers (a fresh copy crashed too)"
                    : "; this tokenizer (a pre-tokenizer or normalizer regex that backtracks?) cannot tokenize this text"));
        } finally {
            try (Stream<Path> s = Files.walk(work)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    /**
     * @param loaded whether the child built the tokenizer (a crash before is the library's, after the text's)
     * @param signal the signal of a JVM crash, from its crash log (the JVM then exits 1 without a core dump), or null
     */
    private record Result(int exit, boolean loaded, List<long[]> ids, String lastError, String signal) {
        boolean crashed() {
            return signal != null || exit > 128 || lastError.contains("fatal runtime error");
        }

        String how() {
            return signal != null ? signal + ", exit " + exit : IsolatedTokenizer.signal(exit);
        }
    }

    private static Result run(String tokenizer, List<String> texts, Path work, Path cache) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        List<String> jvm = ManagementFactory.getRuntimeMXBean().getInputArguments();
        for (int i = 0; i < jvm.size(); i++) {
            String a = jvm.get(i);
            if (INHERITED.stream().noneMatch(a::startsWith)) continue;
            cmd.add(a);
            if (INHERITED.contains(a) && i + 1 < jvm.size()) cmd.add(jvm.get(++i));  // "--add-modules" "VALUE"
        }
        cmd.add("--enable-native-access=ALL-UNNAMED");  // the library loads its native code; no warning for it
        cmd.addAll(List.of("-XX:ErrorFile=" + work.resolve("hs_err_pid%p.log"), "-XX:-CreateCoredumpOnCrash",
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto"));
        String configured = System.getProperty("ENGINE_CACHE_DIR");  // DJL's own setting, passed on
        if (cache != null) cmd.add("-DENGINE_CACHE_DIR=" + cache);
        else if (configured != null) cmd.add("-DENGINE_CACHE_DIR=" + configured);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), IsolatedTokenizer.class.getName()));
        Path err = work.resolve("stderr.txt");
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(work.toFile()).redirectError(err.toFile());
        pb.environment().put("RUST_BACKTRACE", "0");
        Process p = pb.start();
        Thread feeder = Thread.ofVirtual().start(() -> {
            try (DataOutputStream o = new DataOutputStream(new BufferedOutputStream(p.getOutputStream(), 1 << 16))) {
                write(o, tokenizer);
                o.writeInt(texts.size());
                for (String t : texts) write(o, t);
            } catch (IOException e) {
                // the child died: its exit status says why
            }
        });
        List<long[]> ids = new ArrayList<>(texts.size());
        boolean loaded = false;
        try (DataInputStream in = new DataInputStream(new BufferedInputStream(p.getInputStream(), 1 << 16))) {
            loaded = in.readInt() == READY;
            while (loaded && ids.size() < texts.size()) {
                int n = in.readInt();
                if (n < 0 || n > 4L * texts.get(ids.size()).length() + 64) {  // not ids: the pipe carries something else
                    throw new IOException("the tokenizer's child process wrote " + n + " ids for a text of "
                            + texts.get(ids.size()).length() + " characters");
                }
                long[] doc = new long[n];
                for (int i = 0; i < n; i++) doc[i] = in.readInt();
                ids.add(doc);
            }
        } catch (EOFException e) {
            // the child ended early
        }
        int exit;
        try {
            if (!p.waitFor(60, TimeUnit.SECONDS)) p.destroyForcibly();
            exit = p.waitFor();
            feeder.join();
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while tokenizing", e);
        }
        List<String> lines = Files.readAllLines(err, StandardCharsets.UTF_8);
        String last = "";
        for (String l : lines) if (!l.isBlank() && !l.startsWith("WARNING")) last = l.strip();
        String crash = null;
        try (Stream<Path> logs = Files.list(work)) {
            for (Path log : logs.filter(f -> f.getFileName().toString().startsWith("hs_err")).toList()) {
                java.util.regex.Matcher m = java.util.regex.Pattern.compile("#\\s+(SIG[A-Z]+)").matcher(
                        new String(Files.readAllBytes(log), StandardCharsets.UTF_8));
                crash = m.find() ? m.group(1) : "a JVM crash";
                Files.delete(log);
            }
        }
        return new Result(exit, loaded, ids, last, crash);
    }

    private static void write(DataOutputStream o, String s) throws IOException {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        o.writeInt(b.length);
        o.write(b);
    }

    private static String read(DataInputStream in) throws IOException {
        return new String(in.readNBytes(in.readInt()), StandardCharsets.UTF_8);
    }

    private static String signal(int exit) {
        return switch (exit) {
            case 134 -> "SIGABRT, exit 134";
            case 135 -> "SIGBUS, exit 135";
            case 139 -> "SIGSEGV, exit 139";
            case 137 -> "killed, exit 137";
            default -> "exit " + exit;
        };
    }

    /** The child: tokenizer text and documents on stdin, each document's ids on stdout; a refusal on stderr, exit 1. */
    public static void main(String[] args) throws IOException {
        InputStream stdin = System.in;
        OutputStream stdout = System.out;
        System.setOut(System.err);  // nothing but ids on the pipe
        DataInputStream in = new DataInputStream(new BufferedInputStream(stdin, 1 << 16));
        String text = read(in);
        HuggingFaceTokenizer tok;
        try {
            tok = HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8)),
                    Map.of("addSpecialTokens", "false", "truncation", "false", "padding", "false"));
        } catch (RuntimeException | LinkageError e) {
            Throwable root = e;
            boolean linkage = false;
            for (Throwable t = e; t != null; t = t.getCause()) {
                root = t;
                linkage |= t instanceof LinkageError;
            }
            // the native library (a damaged cached copy: the parent retries with a fresh one), or the library's
            // refusal of the tokenizer: the first line of the innermost message
            String m = root.getMessage() == null || root.getMessage().isBlank() ? root.toString() : root.getMessage();
            System.err.println(m.lines().findFirst().orElse(m));
            System.exit(linkage ? NO_LIBRARY : 1);
            return;
        }
        try (tok) {
            DataOutputStream out = new DataOutputStream(new BufferedOutputStream(stdout, 1 << 16));
            out.writeInt(READY);
            out.flush();
            int n = in.readInt();
            for (int d = 0; d < n; d++) {
                long[] ids = tok.encode(read(in)).getIds();
                out.writeInt(ids.length);
                for (long id : ids) out.writeInt((int) Math.max(Integer.MIN_VALUE, Math.min(Integer.MAX_VALUE, id)));
                out.flush();  // what was tokenized before a crash reaches the parent: it names the line that crashed
            }
            out.close();
        } catch (RuntimeException e) {
            String m = e.getMessage() == null ? e.toString() : e.getMessage();
            System.err.println(m.lines().findFirst().orElse(m));
            System.exit(1);
        }
        System.exit(0);
    }
}
