package dev.tornadolora.cli;

import dev.tornadolora.data.JsonExamples;
import dev.tornadolora.finetune.SafetensorsTokens;
import dev.tornadolora.finetune.TokenFormat;
import dev.tornadolora.io.OutputGuard;
import dev.tornadolora.io.SafeText;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.train.SettingException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * Writes exactly what {@code finetune} would train on, for inspection and for diffing against TRL:
 * <pre>
 *   data --model DIR --data FILE --output T.safetensors [--seq-len 256] [--packing none|bfd|blocks]
 *        [--assistant-only-loss] [--completion-only-loss true|false] [--truncation-mode keep_start|keep_end|error]
 *        [--chat-template FILE]
 * </pre>
 */
@Command(name = "data", description = {
        "Prepare fine-tuning data as finetune trains on it and write it: input_ids, labels (-100 outside the loss),",
        "position_ids and example_ids (the example each token belongs to, -1 for padding), I64 [rows, seq-len].",
        "FILE: .jsonl or .json array of {\"text\"}, {\"prompt\",\"completion\"}, {\"messages\"}, prompt/completion",
        "message lists, or alpaca {\"instruction\",\"input\",\"output\"} (docs/data.md). finetune --data takes T."})
final class DataCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR",
            description = "model folder: config.json, tokenizer.json, tokenizer_config.json (eos_token, chat_template)")
    Path model;

    @Option(names = "--data", required = true, paramLabel = "FILE", description = ".jsonl or .json examples")
    Path data;

    @Option(names = "--output", required = true, paramLabel = "T.safetensors", description = "written atomically")
    Path output;

    @Option(names = "--seq-len", paramLabel = "S", defaultValue = "256",
            description = "row length: TRL's max_length (default ${DEFAULT-VALUE})")
    int seqLen;

    @Mixin
    SftDataOptions sft;

    @Override
    public Integer call() throws Exception {
        try {
            new OutputGuard().input("--model", model).input("--data", data).input("--chat-template", sft.chatTemplate)
                    .file("--output", output);
            if (!Files.isRegularFile(data)) throw new IllegalArgumentException(data + ": no such file");
            LlamaConfig c = LlamaConfig.read(model.resolve("config.json"));
            TokenFormat.Prepared p = new JsonExamples().read(data, model, c, seqLen, sft.preparation());
            PrintWriter out = spec.commandLine().getOut();
            if (p.line() != null) out.println(SafeText.of(p.line(), 2000));
            SafetensorsTokens.write(output, p.rows());
            out.println("wrote " + SafeText.of(output.toString()) + ": " + p.rows().size() + " rows of "
                    + p.rows().seqLen() + " tokens");
            return 0;
        } catch (SettingException e) {
            throw new IllegalArgumentException(e.render(FinetuneCommand::flag), e);
        }
    }
}
