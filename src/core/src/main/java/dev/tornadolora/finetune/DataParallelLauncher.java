package dev.tornadolora.finetune;

import dev.tornadolora.device.DeviceOptions;

import java.util.ServiceLoader;

/**
 * Runs a {@link FinetuneJob} data-parallel on a cluster engine. The Spark module (tornado-lora-spark) provides it
 * through {@link ServiceLoader}, so that neither this library nor the CLI depends on Spark or loads a Spark class
 * unless asked to ({@code ./tornado-lora} puts the module on the class path only for {@code finetune --spark}).
 */
public interface DataParallelLauncher {
    /**
     * Runs {@code job} in {@code workers} replicas on {@code master}; each replica opens the device named
     * {@code device} with {@code options} on its machine (a device is not shipped, its description is), and replica 0 writes the outputs as {@link FinetuneJob#run} does. {@code listener} hears the
     * driver's lines and, at the end, the final save (so that its own outputs are added).
     *
     * @param checkEvery steps between the replicas' adapter checks
     * @return the run's result as replica 0 saw it
     */
    FinetuneRun.Result launch(FinetuneJob job, String device, DeviceOptions options, String master, int workers,
                              int checkEvery, FinetuneListener listener) throws Exception;

    /** The launcher on the class path; a message naming the missing module otherwise. */
    static DataParallelLauncher find() {
        return ServiceLoader.load(DataParallelLauncher.class).findFirst().orElseThrow(() -> new IllegalArgumentException(
                "data-parallel fine-tuning needs the Spark module (tornado-lora-spark) on the class path: through"
                        + " the CLI, run ./tornado-lora, which adds it when --spark is given"));
    }
}
