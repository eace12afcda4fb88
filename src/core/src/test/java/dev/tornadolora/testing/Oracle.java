package dev.tornadolora.testing;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The Python oracle the parity tests run {@code scripts/*.py} with (PyTorch, transformers, PEFT, TRL): the project
 * folder, found upwards from the module folder Surefire runs in, and the interpreter, {@code $ORACLE_PYTHON}, else
 * the project's {@code .venv-oracle} (made by scripts/oracle-venv.sh). Without them a test is skipped (a JUnit
 * assumption, from a {@code @BeforeEach} or the test itself), saying what goes unchecked.
 */
public final class Oracle {
    private Oracle() {}

    /** The first folder above the working directory that holds {@code script} (e.g. {@code scripts/check_peft.py}). */
    public static Path root(String script) {
        Path start = Path.of("").toAbsolutePath();
        Path dir = start;
        while (dir != null && !Files.isRegularFile(dir.resolve(script))) dir = dir.getParent();
        assumeTrue(dir != null, script + " not found above " + start);
        return dir;
    }

    /** {@code $ORACLE_PYTHON}, else {@code root/.venv-oracle/bin/python}, whether it is there or not. */
    public static Path python(Path root) {
        String env = System.getenv("ORACLE_PYTHON");
        return env != null ? Path.of(env) : root.resolve(".venv-oracle/bin/python");
    }

    /** {@link #python(Path)}, the test skipped when it is not an executable, naming {@code unchecked}. */
    public static Path requirePython(Path root, String unchecked) {
        Path python = python(root);
        assumeTrue(Files.isExecutable(python), "no Python oracle at " + python
                + " (create it with scripts/oracle-venv.sh); " + unchecked + " is not checked");
        return python;
    }
}
