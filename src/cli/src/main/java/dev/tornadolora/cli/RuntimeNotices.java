package dev.tornadolora.cli;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * Keeps stdout for the command's results: lines that the TornadoVM runtime prints on {@code System.out} (its
 * notices start with {@code [TornadoVM]}, e.g. "[TornadoVM] Warning: The loop bounds will be configured by the
 * GridScheduler", printed by its compiler whenever a task has a worker grid) go to stderr instead. Everything else
 * passes through unchanged. Only the CLI installs it: the process's streams belong to the application.
 */
final class RuntimeNotices extends OutputStream {
    static final byte[] MARKER = "[TornadoVM]".getBytes(StandardCharsets.US_ASCII);

    private final OutputStream out;
    private final OutputStream notices;
    private final ByteArrayOutputStream line = new ByteArrayOutputStream();
    /** Where the current line goes once its beginning was forwarded (by a flush); null at a line's start. */
    private OutputStream target;

    RuntimeNotices(OutputStream out, OutputStream notices) {
        this.out = out;
        this.notices = notices;
    }

    /** Replaces {@code System.out} by a filter over it; returns the original stream for the CLI's own output. */
    static PrintStream install() {
        PrintStream stdout = System.out;
        System.setOut(new PrintStream(new RuntimeNotices(stdout, System.err), true, StandardCharsets.UTF_8));
        return stdout;
    }

    @Override
    public synchronized void write(int b) throws IOException {
        line.write(b);
        if (b == '\n') {
            emit();
        }
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) throws IOException {
        for (int i = off; i < off + len; i++) {
            write(b[i]);
        }
    }

    /** Forwards a partial line too, unless it may still become a notice (it is a prefix of the marker). */
    @Override
    public synchronized void flush() throws IOException {
        if (line.size() > 0 && (target != null || !(line.size() < MARKER.length && isNotice()))) {
            emit();
        }
        out.flush();
        notices.flush();
    }

    @Override
    public synchronized void close() throws IOException {
        emit();
        flush();
    }

    private void emit() throws IOException {
        byte[] b = line.toByteArray();
        if (b.length == 0) return;
        if (target == null) target = isNotice() ? notices : out;
        target.write(b);
        if (b[b.length - 1] == '\n') target = null;
        line.reset();
    }

    /** Whether the buffered line starts with the marker (or, while shorter, with the marker's beginning). */
    private boolean isNotice() {
        byte[] b = line.toByteArray();
        int n = Math.min(b.length, MARKER.length);
        if (n == 0) return false;
        for (int i = 0; i < n; i++) {
            if (b[i] != MARKER[i]) return false;
        }
        return true;
    }
}
