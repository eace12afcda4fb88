package dev.tornadolora.cli;

import java.io.PrintWriter;
import java.util.List;
import java.util.ServiceLoader;

/**
 * Runs {@code finetune} data-parallel on a cluster engine: the Spark module (tornado-lora-spark) provides it
 * through {@link ServiceLoader}, so the CLI itself does not depend on Spark; {@code ./tornado-lora} puts that
 * module on the class path only when {@code --spark} is given. Each replica runs
 * {@link FinetuneReplica#run} with the same arguments.
 */
public interface DataParallelLauncher {
    /**
     * @param finetuneArgs the command's arguments as given (the replicas parse them again)
     * @param rowsPerStep  the global batch, --batch x --grad-accum, to be split evenly over {@code workers}
     * @return the exit code
     */
    int launch(List<String> finetuneArgs, String master, int workers, int rowsPerStep, int checkEvery, PrintWriter out)
            throws Exception;

    static DataParallelLauncher find() {
        return ServiceLoader.load(DataParallelLauncher.class).findFirst().orElseThrow(() -> new IllegalArgumentException(
                "--spark needs the Spark module (tornado-lora-spark) on the class path: run through ./tornado-lora,"
                        + " which adds it when --spark is given"));
    }
}
