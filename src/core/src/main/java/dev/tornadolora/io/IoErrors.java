package dev.tornadolora.io;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;

/**
 * I/O errors as words: the JDK's {@link FileSystemException}s carry only a path as their message
 * ({@code AccessDeniedException: /a/.b.tmp-1}), which says neither what went wrong nor, for a write through a
 * temporary, which file the user asked for.
 */
public final class IoErrors {
    private IoErrors() {}

    /**
     * {@return what went wrong, without the path: "permission denied", "no such file or folder", the OS's reason}
     *
     * @param e an I/O error
     */
    public static String describe(IOException e) {
        if (e instanceof AccessDeniedException) return "permission denied";
        if (e instanceof NoSuchFileException) return "no such file or folder";
        if (e instanceof FileAlreadyExistsException) return "already exists";
        if (e instanceof NotDirectoryException) return "not a folder";
        if (e instanceof DirectoryNotEmptyException) return "a folder that is not empty is in the way";
        if (e instanceof FileSystemException f) {
            return f.getReason() != null ? f.getReason() : e.getClass().getSimpleName();
        }
        return e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName();
    }

    /**
     * {@return one line for an I/O error: the path the JDK named (when it did) and what went wrong}
     *
     * @param e an I/O error
     */
    public static String line(IOException e) {
        if (e instanceof FileSystemException f && f.getFile() != null) {
            return SafeText.of(f.getFile()) + (f.getOtherFile() != null ? " -> " + SafeText.of(f.getOtherFile()) : "")
                    + ": " + describe(e);
        }
        return SafeText.of(describe(e));
    }
}
