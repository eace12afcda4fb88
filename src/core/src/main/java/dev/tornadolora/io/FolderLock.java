package dev.tornadolora.io;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * An exclusive lock on an output folder, held while a process writes it, so that two processes (or two commands in
 * one JVM) cannot interleave their files there. The lock is the OS's ({@link FileChannel#tryLock}) on a file
 * {@code .tornado-lora.lock} in the folder: it is released when the process ends, however it ends, so a killed run
 * leaves no stale lock (the empty file stays and is reused).
 * <pre>{@code try (FolderLock lock = FolderLock.acquire(dir, "--output")) { ... write into dir ... } }</pre>
 */
public final class FolderLock implements AutoCloseable {
    /** The lock file's name in the folder. */
    public static final String NAME = ".tornado-lora.lock";

    private final FileChannel channel;
    private final FileLock lock;

    private FolderLock(FileChannel channel, FileLock lock) {
        this.channel = channel;
        this.lock = lock;
    }

    /**
     * Creates {@code dir} when needed and locks it.
     *
     * @param dir    the output folder
     * @param option the option that named it, for the message ("--output")
     * @return the lock, to close when the writing is done
     * @throws IllegalArgumentException when another process (or another lock in this JVM) holds the folder
     * @throws IOException when the lock file cannot be created or locked
     */
    public static FolderLock acquire(Path dir, String option) throws IOException {
        Files.createDirectories(dir);
        Path file = dir.resolve(NAME);
        OutputGuard.requireRegularIfExists(option + " lock", file);
        FileChannel ch;
        try {
            ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        } catch (IOException e) {
            throw new IOException("cannot lock " + SafeText.of(dir.toString()) + ": " + IoErrors.describe(e), e);
        }
        FileLock l;
        try {
            l = ch.tryLock();
        } catch (OverlappingFileLockException e) {
            l = null;
        } catch (IOException e) {
            ch.close();
            throw new IOException("cannot lock " + SafeText.of(dir.toString()) + ": " + IoErrors.describe(e), e);
        }
        if (l == null) {
            ch.close();
            throw new IllegalArgumentException(option + " " + SafeText.of(dir.toString()) + " is in use by another"
                    + " tornado-lora process (it holds " + NAME + "); wait for it or choose another folder");
        }
        return new FolderLock(ch, l);
    }

    /** Releases the lock (the empty lock file stays). */
    @Override
    public void close() throws IOException {
        try {
            lock.release();
        } finally {
            channel.close();
        }
    }
}
