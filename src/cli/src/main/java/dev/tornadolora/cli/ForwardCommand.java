package dev.tornadolora.cli;

import dev.tornadolora.device.Device;
import dev.tornadolora.llama.DeviceForward;
import dev.tornadolora.io.OutputGuard;
import dev.tornadolora.io.PeftAdapters;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsException;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.MemoryEstimate;
import dev.tornadolora.tensor.HeapCheck;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.llama.TokenTensors;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.io.SafeText;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;

/**
 * The Llama parity tool. Keep the contract stable: a reviewer scripts it.
 * <pre>
 *   forward --model DIR --input T.safetensors --output O.safetensors [--adapter PEFT_DIR] [--quantize-base] [--device D]
 * </pre>
 */
@Command(name = "forward", description = {
        "Run a Hugging Face Llama model (with a PEFT LoRA adapter) forward, and backward when labels are given.",
        "T holds input_ids I64 or I32 [B,S] and optionally labels I64 [B,S] (-100 = ignored).",
        "O receives logits F32 [B,S,vocab]; with labels also loss F32 [] (transformers' causal-LM loss) and,",
        "for every adapter tensor, its gradient under the PEFT key + '.grad'. Eval mode (no dropout).",
        "--quantize-base keeps every q/k/v/o/gate/up/down weight in NF4 (torchao to_nf4, block 64, scaler 256)."})
final class ForwardCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "HF folder: config.json + model.safetensors (or its index)")
    Path model;

    @Option(names = "--input", required = true, paramLabel = "T.safetensors",
            description = "input_ids I64 or I32 [B, S] and optionally labels I64 [B, S] (-100: not counted)")
    Path input;

    @Option(names = "--output", required = true, paramLabel = "O.safetensors",
            description = "written atomically: logits F32 [B, S, vocab]; with labels also loss F32 [] and every adapter"
                    + " tensor's gradient under its PEFT key + .grad")
    Path output;

    @Option(names = "--adapter", paramLabel = "PEFT_DIR", description = "adapter_config.json + adapter_model.safetensors")
    Path adapter;

    @Option(names = "--quantize-base", description = "NF4 base projections (QLoRA)")
    boolean quantizeBase;

    @Mixin
    DeviceOption device;

    @Override
    public Integer call() throws Exception {
        new OutputGuard().input("--model", model).input("--input", input).input("--adapter", adapter)
                .file("--output", output);
        SafeTensors in;
        try {
            in = SafeTensors.open(input);
        } catch (SafeTensorsException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
        if (!in.contains("input_ids")) throw new IllegalArgumentException(input + ": missing tensor 'input_ids'");
        for (String n : in.names()) {
            if (!n.equals("input_ids") && !n.equals("labels")) {
                throw new IllegalArgumentException(input + ": unexpected tensor '" + n + "' (expected input_ids, labels)");
            }
        }
        TokenTensors.Tokens ids = TokenTensors.read(in, "input_ids");
        TokenTensors.Tokens labels = in.contains("labels") ? TokenTensors.read(in, "labels") : null;
        if (labels != null && (labels.batch() != ids.batch() || labels.seq() != ids.seq())) {
            throw new IllegalArgumentException(input + ": labels [" + labels.batch() + ", " + labels.seq()
                    + "] do not match input_ids [" + ids.batch() + ", " + ids.seq() + "]");
        }
        LlamaConfig config = LlamaConfig.read(model.resolve("config.json"));
        HeapCheck.require(HeapCheck.sum(MemoryEstimate.weights(config, quantizeBase), MemoryEstimate.activations(config,
                ids.batch(), ids.seq(), labels != null, Runtime.getRuntime().availableProcessors())),
                "a forward of " + ids.batch() + " x " + ids.seq() + " tokens on this model",
                "give fewer or shorter rows in --input");
        PeftAdapters.Adapter peft = adapter == null ? null : PeftAdapters.read(adapter);
        LoraSettings settings = (peft == null ? LoraSettings.none(false) : LoraSettings.of(peft.config())).withQuantizeBase(quantizeBase)
                .withDropout(0f);
        SafeTensorsWriter out = new SafeTensorsWriter();
        try (Device d = device.open(); LlamaForCausalLM m = LlamaForCausalLM.load(model, settings, d)) {
            if (peft != null) m.loadAdapters(peft.tensors());
            m.train(false);
            int b = ids.batch(), s = ids.seq(), v = m.config().vocabSize();
            // the whole model on the device where its backend serves it (TornadoVM's device plan), else the layers'
            Optional<DeviceForward> onDevice = DeviceForward.find(m, b, s);
            try (DeviceForward closeDevice = onDevice.orElse(null)) {
                if (onDevice.isPresent()) out.metadata("device_forward", onDevice.get().describe());
                if (labels == null) {
                    out.f32("logits", onDevice.isPresent() ? new Tensor(new int[] {b, s, v}, onDevice.get().logits(ids.values()))
                            : m.logits(ids.values(), b, s));
                } else {
                    m.zeroGrad();
                    float[] logits = new float[Math.multiplyExact(Math.multiplyExact(b, s), v)];
                    double loss = onDevice.isPresent()
                            ? onDevice.get().forwardBackward(ids.values(), labels.values(), logits)
                            : m.forwardBackward(ids.values(), labels.values(), b, s, 1.0, logits);
                    out.f32("logits", new int[] {b, s, v}, logits);
                    out.f32("loss", new int[0], new float[] {(float) loss});
                    for (Map.Entry<String, Tensor> g : m.adapterGradients().entrySet()) {
                        out.f32(g.getKey() + ".grad", g.getValue());
                    }
                }
            }
            out.metadata("device", m.backend().name());
        }
        out.write(output);
        // One line naming what was written, as eval, quantize and merge print.
        spec.commandLine().getOut().println("wrote " + SafeText.of(output.toString()) + ": logits"
                + (labels == null ? "" : peft == null ? " and loss" : ", loss and the adapter gradients"));
        return 0;
    }
}
