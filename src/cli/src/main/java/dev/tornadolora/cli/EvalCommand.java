package dev.tornadolora.cli;

import dev.tornadolora.device.Device;
import dev.tornadolora.io.LoraCheckpoint;
import dev.tornadolora.io.OutputGuard;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.tensor.HeapCheck;
import dev.tornadolora.tensor.Shapes;
import dev.tornadolora.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** Runs one LoRA layer from files, for parity checks against PyTorch. Keep the contract stable: it is scripted. */
@Command(name = "eval", description = {
        "Run a LoRA layer's forward (and backward) from safetensors files.",
        "C holds weight [out,in] (or an NF4 record), optional bias [out], lora_a.weight [rank,in],",
        "lora_b.weight [out,rank] and metadata alpha; X holds x [...,in]; DY holds dy [...,out].",
        "O receives y, and with DY also dx, lora_a.weight.grad, lora_b.weight.grad. No dropout."})
final class EvalCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--checkpoint", required = true, paramLabel = "C.safetensors",
            description = "the layer: weight (or an NF4 record), optional bias, lora_a.weight, lora_b.weight, metadata alpha")
    Path checkpoint;

    @Option(names = "--input", required = true, paramLabel = "X.safetensors", description = "the input: tensor x [...,in]")
    Path input;

    @Option(names = "--output", required = true, paramLabel = "O.safetensors",
            description = "receives y (and with --grad-output dx and the adapter gradients); written atomically")
    Path output;

    @Option(names = "--grad-output", paramLabel = "DY.safetensors",
            description = "the gradient of the output: tensor dy [...,out]; runs backward too")
    Path gradOutput;

    @Mixin
    DeviceOption device;

    @Option(names = "--check-finite", description = "fail naming the first NaN/Inf in x, dy, the parameters, y, dx or a gradient")
    boolean checkFinite;

    @Override
    public Integer call() throws Exception {
        new OutputGuard().input("--checkpoint", checkpoint).input("--input", input).input("--grad-output", gradOutput)
                .file("--output", output);
        try (Device d = device.open(); LoRALinear layer = LoraCheckpoint.read(SafeTensors.open(checkpoint))) {
            return run(layer.to(d).eval());
        }
    }

    private int run(LoRALinear layer) throws Exception {
        layer.setCheckFinite(checkFinite || layer.checksFinite());
        Tensor x = SafeTensors.open(input).f32("x");
        Shapes.requireLast(input + ": tensor 'x'", x.shape(), layer.inDim());
        // y [T, out] and the layer's saved activations (and dx, dy with DY) come from the shapes, not the files.
        long tokens = x.numel() / layer.inDim();
        HeapCheck.require(HeapCheck.product(tokens, (long) layer.outDim() * 2 + layer.inDim() * 2L + layer.rank() * 2L, 4),
                "eval of " + tokens + " tokens through [" + layer.outDim() + ", " + layer.inDim() + "]");
        Tensor dy = null;
        if (gradOutput != null) {
            dy = SafeTensors.open(gradOutput).f32("dy");
            Shapes.requireEqual(gradOutput + ": tensor 'dy'", dy.shape(), Shapes.withLast(x.shape(), layer.outDim()));
        }
        Tensor y = layer.forward(x);
        SafeTensorsWriter out = new SafeTensorsWriter().f32("y", y);
        if (dy != null) {
            Tensor dx = layer.backward(dy);
            var grads = layer.adapterGradients();
            out.f32("dx", dx)
               .f32("lora_a.weight.grad", grads.get("lora_a.weight"))
               .f32("lora_b.weight.grad", grads.get("lora_b.weight"));
        }
        out.metadata("device", layer.backend().name()).write(output);
        spec.commandLine().getOut().println("wrote " + output + ": y " + Shapes.format(y.shape())
                + (dy == null ? "" : ", dx, lora_a.weight.grad, lora_b.weight.grad") + " (device " + layer.backend().name() + ")");
        return 0;
    }
}
