package dev.tornadolora.cli;

import dev.tornadolora.io.LoraCheckpoint;
import dev.tornadolora.kernels.Backends;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.tensor.Shapes;
import dev.tornadolora.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/** Runs one LoRA layer from files, for parity checks against PyTorch. Keep the contract stable: it is scripted. */
@Command(name = "eval", description = {
        "Run a LoRA layer's forward (and backward) from safetensors files.",
        "C holds weight [out,in] (or an NF4 record), optional bias [out], lora_a.weight [rank,in],",
        "lora_b.weight [out,rank] and metadata alpha; X holds x [...,in]; DY holds dy [...,out].",
        "O receives y, and with DY also dx, lora_a.weight.grad, lora_b.weight.grad. No dropout."})
final class EvalCommand implements Callable<Integer> {

    @Option(names = "--checkpoint", required = true, paramLabel = "C.safetensors")
    Path checkpoint;

    @Option(names = "--input", required = true, paramLabel = "X.safetensors")
    Path input;

    @Option(names = "--output", required = true, paramLabel = "O.safetensors")
    Path output;

    @Option(names = "--grad-output", paramLabel = "DY.safetensors")
    Path gradOutput;

    @Option(names = "--device", defaultValue = "jvm", description = "jvm (default), reference, tornado[:B:D]")
    String device;

    @Option(names = "--check-finite", description = "fail naming the first NaN/Inf in x, dy, the parameters, y, dx or a gradient")
    boolean checkFinite;

    @Override
    public Integer call() throws Exception {
        LoRALinear layer = LoraCheckpoint.read(SafeTensors.open(checkpoint))
                .backend(Backends.forDevice(device, BackendProperties.read())).eval();
        layer.setCheckFinite(checkFinite || layer.checksFinite());
        Tensor x = SafeTensors.open(input).f32("x");
        Shapes.requireLast(input + ": tensor 'x'", x.shape(), layer.inDim());
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
        return 0;
    }
}
