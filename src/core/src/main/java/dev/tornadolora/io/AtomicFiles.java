package dev.tornadolora.io;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * Writes files so that readers see the old file or the whole new one, never a part: the bytes go to a hidden
 * temporary file in the same directory ({@code .NAME.tmp-*}), are flushed and forced to disk, then renamed over
 * the target, and the directory is forced so that the rename survives a crash. A failure leaves the old file as
 * it was and removes the temporary; a process killed mid-write leaves the old file intact and a temporary behind,
 * which no loader reads (they open files by name, and temporaries start with a dot and end in {@code .tmp-N}) and
 * which the next write of the same target removes once it is older than the writing JVM.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    private static final String TEMP_INFIX = ".tmp-";
    private static final Instant JVM_START = Instant.ofEpochMilli(ManagementFactory.getRuntimeMXBean().getStartTime());

    /** Something that writes the whole file to a stream. */
    @FunctionalInterface
    public interface Writer {
        void write(OutputStream out) throws IOException;
    }

    public static void write(Path target, Writer writer) throws IOException {
        Path dir = target.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        removeStaleTemporaries(dir, target.getFileName().toString(), JVM_START);
        Path tmp = Files.createTempFile(dir, "." + target.getFileName() + TEMP_INFIX, "");
        boolean done = false;
        try {
            copyPermissions(target, tmp);
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                // Not closed here: closing the stream would close the channel before force().
                BufferedOutputStream out = new BufferedOutputStream(Channels.newOutputStream(ch), 1 << 16);
                writer.write(out);
                out.flush();
                ch.force(true);
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            fsyncDirectory(dir);
            done = true;
        } finally {
            if (!done) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    public static void writeString(Path target, String text) throws IOException {
        write(target, out -> out.write(text.getBytes(StandardCharsets.UTF_8)));
    }

    /** Whether {@code file} is one of the temporaries this class writes ({@code .NAME.tmp-N}). */
    public static boolean isTemporary(Path file) {
        String name = file.getFileName().toString();
        return name.startsWith(".") && name.lastIndexOf(TEMP_INFIX) > 0;
    }

    /**
     * Deletes the temporaries of {@code dir} last modified before {@code before} (left by writers that were
     * killed) and returns them. A writer still at work keeps touching its temporary, so give a time after which
     * no live writer can have stopped writing, such as the start of the current run.
     */
    public static List<Path> removeStaleTemporaries(Path dir, Instant before) throws IOException {
        return removeStaleTemporaries(dir, null, before);
    }

    /** As {@link #removeStaleTemporaries(Path, Instant)}, for the temporaries of one target name (null: all). */
    private static List<Path> removeStaleTemporaries(Path dir, String targetName, Instant before) throws IOException {
        List<Path> removed = new ArrayList<>();
        String glob = targetName == null ? ".*" + TEMP_INFIX + "*" : "." + globEscape(targetName) + TEMP_INFIX + "*";
        try (DirectoryStream<Path> temps = Files.newDirectoryStream(dir, glob)) {
            for (Path t : temps) {
                try {
                    if (isTemporary(t) && Files.isRegularFile(t)
                            && Files.getLastModifiedTime(t).toInstant().isBefore(before) && Files.deleteIfExists(t)) {
                        removed.add(t);
                    }
                } catch (NoSuchFileException e) {
                    // another process removed it first
                }
            }
        }
        return removed;
    }

    private static String globEscape(String name) {
        return name.replaceAll("([\\\\*?\\[\\]{}])", "\\\\$1");
    }

    /**
     * Temporary files are created owner-only (rw-------); the renamed file should be readable as the file it
     * replaces was, or as a new file usually is (rw-r--r--).
     */
    private static void copyPermissions(Path target, Path tmp) throws IOException {
        PosixFileAttributeView view = Files.getFileAttributeView(tmp, PosixFileAttributeView.class);
        if (view == null) {
            return;
        }
        view.setPermissions(Files.exists(target)
                ? Files.getPosixFilePermissions(target) : PosixFilePermissions.fromString("rw-r--r--"));
    }

    private static void fsyncDirectory(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | UnsupportedOperationException ignored) {
            // Some platforms cannot open directories; the rename itself is still atomic there.
        }
    }
}
