package dev.tornadolora.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.data.ChatTemplate;
import dev.tornadolora.data.SftTokenizer;
import dev.tornadolora.data.StreamingDetokenizer;
import dev.tornadolora.device.Device;
import dev.tornadolora.io.AtomicFiles;
import dev.tornadolora.io.OutputGuard;
import dev.tornadolora.io.PeftAdapters;
import dev.tornadolora.io.SafeText;
import dev.tornadolora.io.StrictJson;
import dev.tornadolora.llama.GenerationOptions;
import dev.tornadolora.llama.Generator;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.llama.MemoryEstimate;
import dev.tornadolora.tensor.HeapCheck;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * Talks to a model (with a fine-tuned adapter): transformers' {@code generate} for one prompt, streamed.
 * <pre>
 *   generate --model DIR [--adapter PEFT_DIR] [--merge] [--quantize-base] (--prompt TEXT | --messages FILE)
 *            [--max-new-tokens 128] [--temperature 1] [--top-p 1] [--top-k 0] [--seed 0] [--greedy] [--device D]
 *            [--json FILE]
 * </pre>
 * The text goes to stdout as it decodes; the timings to stderr; {@code --json} records ids, text and timings
 * (a reviewer scripts it: keep its fields).
 */
@Command(name = "generate", sortOptions = false, description = {
        "Continue a prompt with a Hugging Face model (and a PEFT LoRA adapter): the",
        "prompt at once, then one token at a time through a KV cache, printed as it",
        "decodes; stops at an eos_token_id (generation_config.json, else config.json)",
        "or --max-new-tokens; the timings go to stderr. Sampling as transformers'",
        "generate(do_sample=True): temperature, then top-k, then top-p, seeded;",
        "--greedy is do_sample=False. The model folder needs tokenizer.json.", ""})
final class GenerateCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR",
            description = "HF folder: config.json, model.safetensors (or its index), tokenizer.json")
    Path model;

    @Option(names = "--adapter", paramLabel = "PEFT_DIR", description = "adapter_config.json + adapter_model.safetensors")
    Path adapter;

    @Option(names = "--merge", description = "fold the adapter into the base weights first (W + scale·B·A) instead of"
            + " running LoRA unmerged; with --quantize-base the merged weights are quantized again")
    boolean merge;

    @Option(names = "--quantize-base", description = "NF4 base projections (QLoRA: torchao to_nf4, block 64)")
    boolean quantizeBase;

    static final class Input {
        @Option(names = "--prompt", paramLabel = "TEXT", description = "text, tokenized as tokenizer(text) (its BOS added)")
        String prompt;

        @Option(names = "--messages", paramLabel = "FILE", description = "a JSON list of {\"role\", \"content\"}, rendered"
                + " with the model's chat template and add_generation_prompt=True")
        Path messages;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Option(names = "--chat-template", paramLabel = "FILE",
            description = "a Jinja chat template for --messages instead of the model's")
    Path chatTemplate;

    @Option(names = "--max-new-tokens", defaultValue = "128", paramLabel = "N", description = "at most N new tokens (default ${DEFAULT-VALUE})")
    int maxNewTokens;

    @Option(names = "--temperature", defaultValue = "1", paramLabel = "T", description = "divides the logits when sampling, > 0 (default ${DEFAULT-VALUE})")
    double temperature;

    @Option(names = "--top-p", defaultValue = "1", paramLabel = "P", description = "nucleus sampling: the smallest set of tokens with probability >= P, in (0, 1] (default ${DEFAULT-VALUE}: off)")
    double topP;

    @Option(names = "--top-k", defaultValue = "0", paramLabel = "K", description = "sample among the K most likely tokens (default ${DEFAULT-VALUE}: off; transformers' own default is 50)")
    int topK;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "the sampler's seed (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--greedy", description = "the most likely token each step (do_sample=False); the sampling options are ignored")
    boolean greedy;

    @Mixin
    DeviceOption device;

    @Option(names = "--json", paramLabel = "FILE", description = "written atomically: prompt ids, generated ids, text, timings")
    Path json;

    @Override
    public Integer call() throws Exception {
        new OutputGuard().input("--model", model).input("--adapter", adapter).input("--messages", input.messages)
                .input("--chat-template", chatTemplate).file("--json", json);
        if (maxNewTokens < 1) throw new IllegalArgumentException("--max-new-tokens must be at least 1, got " + maxNewTokens);
        if (merge && adapter == null) throw new IllegalArgumentException("--merge needs an --adapter to merge");
        if (chatTemplate != null && input.messages == null) {
            throw new IllegalArgumentException("--chat-template applies to --messages, not --prompt");
        }
        LlamaConfig config = LlamaConfig.read(model.resolve("config.json"));
        if (!java.nio.file.Files.isRegularFile(model.resolve("tokenizer.json"))) {
            throw new IllegalArgumentException(SafeText.of(model.toString()) + ": no tokenizer.json (generate tokenizes"
                    + " the prompt and decodes the answer with it)");
        }
        GenerationOptions options = GenerationOptions.greedy(maxNewTokens, GenerationOptions.eosTokenIds(model));
        if (!greedy) options = options.sampling(temperature, topK, topP, seed);
        List<Map<String, Object>> messages = input.messages == null ? null : readMessages(input.messages);
        ChatTemplate template = messages == null ? null : ChatTemplate.load(model, chatTemplate);
        PeftAdapters.Adapter peft = adapter == null ? null : PeftAdapters.read(adapter);
        // The weights as held (16-bit as a BF16/F16 checkpoint stores them, NF4 with --quantize-base); --merge
        // builds the merged model (fp32 weights) beside the loaded one.
        int storedBytes = config.torchDtype() != null && config.torchDtype().endsWith("16") ? 2 : 4;
        long weights = MemoryEstimate.training(config, LoraSettings.none(quantizeBase), storedBytes, 1, 1, false, 1)
                .weights();
        HeapCheck.require(HeapCheck.sum(weights, merge ? MemoryEstimate.weights(config, false) : 0),
                "the model's weights" + (merge ? " and their merged fp32 copy" : ""), null);
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        try (SftTokenizer tok = new SftTokenizer(model.resolve("tokenizer.json"), config.vocabSize())) {
            int[] prompt = messages == null ? tok.encode("--prompt", input.prompt, true).ids()
                    : tok.encode(input.messages.toString(), template.render(messages, true, null).text(), false).ids();
            if (prompt.length == 0) throw new IllegalArgumentException("--prompt: the text has no tokens");
            LoraSettings settings = (peft == null ? LoraSettings.none(false) : LoraSettings.of(peft.config()))
                    .withQuantizeBase(quantizeBase).withDropout(0f);
            try (Device d = device.open(); LlamaForCausalLM m = load(settings, peft, d)) {
                m.train(false);
                StreamingDetokenizer text = new StreamingDetokenizer(ids -> tok.decode(ids, true));
                Generator.Generation g = new Generator(m).generate(prompt, options, id -> {
                    out.print(text.add(id));
                    out.flush();
                });
                out.println(text.finish());
                out.flush();
                err.printf("prefill %d tokens in %.3f s (%.1f tokens/s); decode %d tokens in %.3f s (%.1f tokens/s);"
                                + " stopped at %s (device %s)%n", prompt.length, g.prefillNanos() / 1e9,
                        g.prefillTokensPerSecond(), Math.max(0, g.ids().length - 1), g.decodeNanos() / 1e9,
                        g.decodeTokensPerSecond(), g.stoppedAtEos() ? "eos" : "--max-new-tokens", m.backend().name());
                if (json != null) writeJson(g, tok.decode(g.ids(), true), options, m.backend().name());
            }
        }
        return 0;
    }

    /** The model with the adapter, or with the adapter folded in (--merge). */
    private LlamaForCausalLM load(LoraSettings settings, PeftAdapters.Adapter peft, Device d) {
        LlamaForCausalLM m = LlamaForCausalLM.load(model, settings, d);
        if (peft == null) return m;
        m.loadAdapters(peft.tensors());
        if (!merge) return m;
        try (m) {
            return LlamaForCausalLM.fromWeights(m.config(), m.mergedWeights(), LoraSettings.none(quantizeBase), d);
        }
    }

    /** A JSON list of {"role": string, "content": string} (other string fields kept: the template may read them). */
    static List<Map<String, Object>> readMessages(Path file) {
        JsonNode root = StrictJson.read(file);
        if (!root.isArray() || root.isEmpty()) {
            throw new IllegalArgumentException(file + ": expected a JSON list of {\"role\", \"content\"} messages");
        }
        List<Map<String, Object>> messages = new ArrayList<>();
        for (int i = 0; i < root.size(); i++) {
            JsonNode m = root.get(i);
            String where = file + ": message " + i;
            if (!m.isObject()) throw new IllegalArgumentException(where + " is not an object");
            Map<String, Object> one = new LinkedHashMap<>();
            for (String field : List.of("role", "content")) {
                if (!m.path(field).isTextual()) throw new IllegalArgumentException(where + " has no string \"" + field + "\"");
            }
            m.fields().forEachRemaining(e -> {
                if (!e.getValue().isTextual()) {
                    throw new IllegalArgumentException(where + ": \"" + SafeText.of(e.getKey()) + "\" must be a string");
                }
                one.put(e.getKey(), e.getValue().asText());
            });
            messages.add(one);
        }
        return messages;
    }

    private void writeJson(Generator.Generation g, String text, GenerationOptions o, String backend) throws java.io.IOException {
        ObjectNode r = StrictJson.writer().createObjectNode();
        r.put("model", model.toString());
        r.put("adapter", adapter == null ? null : adapter.toString());
        r.put("merged", merge);
        r.put("quantize_base", quantizeBase);
        r.put("device", backend);
        ObjectNode gen = r.putObject("generation");
        gen.put("do_sample", o.doSample());
        gen.put("max_new_tokens", o.maxNewTokens());
        if (o.doSample()) {
            gen.put("temperature", o.temperature());
            gen.put("top_k", o.topK());
            gen.put("top_p", o.topP());
            gen.put("seed", o.seed());
        }
        ArrayNode eos = gen.putArray("eos_token_id");
        o.eosTokenIds().stream().sorted().forEach(eos::add);
        ArrayNode p = r.putArray("prompt_ids");
        for (int id : g.promptIds()) p.add(id);
        ArrayNode ids = r.putArray("generated_ids");
        for (int id : g.ids()) ids.add(id);
        r.put("text", text);
        r.put("stopped", g.stoppedAtEos() ? "eos" : "max_new_tokens");
        ObjectNode t = r.putObject("timings");
        t.put("prefill_tokens", g.promptIds().length);
        t.put("prefill_seconds", g.prefillNanos() / 1e9);
        t.put("prefill_tokens_per_second", g.prefillTokensPerSecond());
        t.put("decode_tokens", Math.max(0, g.ids().length - 1));
        t.put("decode_seconds", g.decodeNanos() / 1e9);
        t.put("decode_tokens_per_second", g.decodeTokensPerSecond());
        AtomicFiles.writeString(json, StrictJson.writer().writeValueAsString(r) + "\n");
    }
}
