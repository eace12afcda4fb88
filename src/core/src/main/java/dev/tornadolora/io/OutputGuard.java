package dev.tornadolora.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Checks a command's outputs against its inputs before anything is read or written, so that no output replaces
 * what the command reads or something that is not a file. Give every input (a file, or a folder: then every file
 * under it counts, e.g. {@code RUN/base_model.safetensors} when {@code RUN} is the checkpoint), then every output:
 * <pre>{@code
 *   OutputGuard g = new OutputGuard().input("--checkpoint", checkpoint).input("--adapter", adapter);
 *   g.file("--output", output);                          // a file the command writes
 *   g.folder("--output", dir, "log.json", "adapter.safetensors");  // a folder and the files it writes there
 * }</pre>
 * An output is refused, with an {@link IllegalArgumentException} naming the option and the path, when it is:
 * empty; a folder or a name ending in {@code /}, {@code .} or {@code ..} (for a file); an existing file that is
 * not a regular one (a FIFO, a device such as {@code /dev/null}, a socket), links followed; the same file as an
 * input (by {@link Files#isSameFile}: links, hard links, {@code ./} spellings, files in an input folder); or the
 * same file as an earlier output. Null paths (an option not given) are skipped.
 */
public final class OutputGuard {
    /** How deep and how many files an input folder is searched. */
    private static final int FOLDER_DEPTH = 4, FOLDER_FILES = 100_000;

    private record Named(String option, Path path) {}

    private final List<Named> inputs = new ArrayList<>();
    private final List<Named> outputs = new ArrayList<>();
    private final List<Named> inputFolders = new ArrayList<>();

    /** A guard with no inputs or outputs yet. */
    public OutputGuard() {}

    /**
     * Adds an input: a file, or a folder whose files (to depth 4) are all inputs.
     *
     * @param option the option that named it, for messages ("--checkpoint")
     * @param path   the input; null (an option not given) is ignored
     * @return this guard
     * @throws IllegalArgumentException when the path is empty
     */
    public OutputGuard input(String option, Path path) {
        if (path == null) return this;
        requireNotEmpty(option, path);
        if (Files.isDirectory(path)) {
            inputFolders.add(new Named(option + " " + SafeText.of(path.toString()), path));
            try (Stream<Path> files = Files.walk(path, FOLDER_DEPTH)) {
                files.filter(Files::isRegularFile).limit(FOLDER_FILES)
                     .forEach(f -> inputs.add(new Named(option + " " + SafeText.of(path.toString()) + " (its file "
                             + SafeText.of(path.relativize(f).toString()) + ")", f)));
            } catch (IOException | java.io.UncheckedIOException e) {
                // unreadable parts of an input folder cannot be read as input either
            }
        } else {
            inputs.add(new Named(option + " " + SafeText.of(path.toString()), path));
        }
        return this;
    }

    /**
     * Checks a file output (see the class comment).
     *
     * @param option the option that named it, for messages ("--output")
     * @param path   the output; null (an option not given) is skipped
     * @return this guard
     * @throws IllegalArgumentException naming the option and the path when the output is refused
     */
    public OutputGuard file(String option, Path path) {
        if (path == null) return this;
        requireNotEmpty(option, path);
        String name = path.getFileName() == null ? "" : path.getFileName().toString();
        if (name.isEmpty() || name.equals(".") || name.equals("..") || Files.isDirectory(path)) {
            throw new IllegalArgumentException(option + " " + SafeText.of(path.toString())
                    + " is a folder; give the path of a file");
        }
        Path parent = path.toAbsolutePath().getParent();
        while (parent != null && !Files.exists(parent)) parent = parent.getParent();  // the first that exists
        if (parent != null && !Files.isDirectory(parent)) {
            throw new IllegalArgumentException(option + " " + SafeText.of(path.toString()) + ": "
                    + SafeText.of(parent.toString()) + " is not a folder");
        }
        requireRegularIfExists(option, path);
        if (Files.exists(path)) {
            for (Named in : inputs) {
                if (same(path, in.path())) {
                    throw new IllegalArgumentException(option + " " + SafeText.of(path.toString())
                            + " is the same file as " + in.option() + ": writing it would destroy an input;"
                            + " choose another output");
                }
            }
            for (Named out : outputs) {
                if (same(path, out.path())) {
                    throw new IllegalArgumentException(option + " " + SafeText.of(path.toString())
                            + " is the same file as " + out.option() + "; give each output its own file");
                }
            }
        } else {
            Path abs = path.toAbsolutePath().normalize();
            for (Named out : outputs) {
                if (abs.equals(out.path().toAbsolutePath().normalize())) {
                    throw new IllegalArgumentException(option + " " + SafeText.of(path.toString())
                            + " is the same file as " + out.option() + "; give each output its own file");
                }
            }
        }
        outputs.add(new Named(option + " " + SafeText.of(path.toString()), path));
        return this;
    }

    /**
     * Checks an output folder and the files the command writes in it (names relative to the folder; a name may
     * have a folder part, such as {@code peft/adapter_config.json}).
     *
     * @param option the option that named the folder, for messages ("--output")
     * @param dir    the output folder
     * @param files  the files the command writes in it
     * @return this guard
     * @throws IllegalArgumentException naming the option and the path when the folder or a file is refused
     */
    public OutputGuard folder(String option, Path dir, String... files) {
        requireNotEmpty(option, dir);
        if (Files.exists(dir) && !Files.isDirectory(dir)) {
            throw new IllegalArgumentException(option + " " + SafeText.of(dir.toString())
                    + " exists and is not a folder");
        }
        Path real = real(dir);
        for (Named in : inputFolders) {
            if (real.startsWith(real(in.path()))) {
                throw new IllegalArgumentException(option + " " + SafeText.of(dir.toString()) + " is "
                        + (real.equals(real(in.path())) ? "" : "inside ") + in.option() + ": the outputs would be"
                        + " mixed with an input (and a resumed run would refuse them as inputs); choose another folder");
            }
        }
        for (String f : files) {
            file(option, dir.resolve(f));
        }
        return this;
    }

    /** The real path of the first existing ancestor of {@code p}, with the rest of {@code p} appended. */
    private static Path real(Path p) {
        Path abs = p.toAbsolutePath().normalize(), existing = abs;
        while (existing != null && !Files.exists(existing)) existing = existing.getParent();
        try {
            return existing == null ? abs : existing.toRealPath().resolve(existing.relativize(abs));
        } catch (IOException e) {
            return abs;
        }
    }

    /**
     * Refuses an existing {@code path} that is not a regular file (links followed).
     *
     * @param what names the path in the message (an option, or "cannot write:")
     * @param path the path about to be written
     * @throws IllegalArgumentException when the path is a folder, a FIFO, a device or a socket
     */
    public static void requireRegularIfExists(String what, Path path) {
        if (Files.exists(path) && !Files.isRegularFile(path)) {
            throw new IllegalArgumentException(what + " " + SafeText.of(path.toString()) + (Files.isDirectory(path)
                    ? " is a folder; give the path of a file"
                    : " is not a regular file (a FIFO, device or socket); refusing to replace it"));
        }
    }

    private static void requireNotEmpty(String option, Path path) {
        if (path.toString().isEmpty()) {
            throw new IllegalArgumentException(option + ": empty path");
        }
    }

    private static boolean same(Path a, Path b) {
        try {
            return Files.isSameFile(a, b);
        } catch (IOException e) {
            return false;
        }
    }
}
