package dev.tornadolora.cli;

import dev.tornadolora.io.LoraMerge;
import dev.tornadolora.io.SafeTensors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** Folds LoRA adapters into the base weights (torchtune's get_merged_lora_ckpt), see {@link LoraMerge}. */
@Command(name = "merge", sortOptions = false, mixinStandardHelpOptions = true, description = {
        "Merge LoRA adapters into their base weights (torchtune's get_merged_lora_ckpt):",
        "W += alpha/r * B*A for every module m with m.lora_a.weight and m.lora_b.weight;",
        "the adapter keys are removed, other tensors are copied unchanged. NF4 bases are",
        "dequantized first. C is a safetensors file with base weights (F32 or NF4",
        "records) and adapters, or a train output folder (base_model.safetensors +",
        "adapter.safetensors); alpha comes from the metadata (m.alpha or alpha).", ""})
final class MergeCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--checkpoint", required = true, paramLabel = "C", description = "checkpoint file or train output folder")
    Path checkpoint;

    @Option(names = "--adapter", paramLabel = "A.safetensors", description = "adapters in a separate file (torchtune keys)")
    Path adapter;

    @Option(names = "--output", required = true, paramLabel = "M.safetensors", description = "the merged checkpoint (written atomically)")
    Path output;

    @Option(names = "--requantize", description = "write NF4 bases back as NF4 (rounds again: outputs change; a warning says so)")
    boolean requantize;

    @Option(names = "--safe", description = "refuse to write when a merged weight has NaN or Inf")
    boolean safe;

    @Override
    public Integer call() throws Exception {
        Path base = checkpoint, adapterFile = adapter;
        if (Files.isDirectory(checkpoint)) {
            base = checkpoint.resolve("base_model.safetensors");
            if (adapterFile == null) adapterFile = checkpoint.resolve("adapter.safetensors");
        }
        LoraMerge.Result r = LoraMerge.merge(SafeTensors.open(base), adapterFile == null ? null : SafeTensors.open(adapterFile),
                new LoraMerge.Options(requantize, safe), w -> spec.commandLine().getErr().println("tornado-lora merge: warning: " + w));
        r.writer().write(output);
        spec.commandLine().getOut().printf("merged %d module(s) %s into %s%n", r.mergedModules().size(), r.mergedModules(), output);
        return 0;
    }
}
