package example;

import dev.tornadolora.io.AdapterCheckpoints;
import dev.tornadolora.nn.Activation;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Sequential;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.train.AdamW;
import dev.tornadolora.train.Losses;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Two LoRA layers trained for a few steps on one batch; the adapters are saved as a PEFT folder. */
public class ReadmeExample {
    public static void main(String[] args) throws Exception {
        Path peftDir = Path.of(args.length > 0 ? args[0] : "adapters");

        // Layers: a frozen base weight (random here) plus trainable adapters lora_a [rank, in], lora_b [out, rank].
        LoRALinear fc1 = LoRALinear.builder(64, 32).rank(8).alpha(16).dropout(0.05f).seed(1).build();
        LoRALinear fc2 = LoRALinear.builder(32, 8).rank(8).alpha(16).seed(2).build();
        // Children run in the list's order (an unordered Map such as Map.of is refused).
        Sequential model = new Sequential(List.of(
                Map.entry("fc1", fc1), Map.entry("act", Activation.silu()), Map.entry("fc2", fc2)));

        // Tensors: a shape and row-major float data.
        Random random = new Random(0);
        float[] xs = new float[16 * 64], targets = new float[16 * 8];
        for (int i = 0; i < xs.length; i++) xs[i] = (float) random.nextGaussian();
        for (int i = 0; i < targets.length; i++) targets[i] = (float) random.nextGaussian();
        Tensor x = Tensor.of(xs, 16, 64), target = Tensor.of(targets, 16, 8);

        AdamW optimizer = new AdamW(model.parameters(), 1e-2);  // the adapters' parameters only
        for (int step = 1; step <= 20; step++) {
            optimizer.zeroGrad();
            Tensor y = model.forward(x);                       // [16, 8]
            Losses.Result loss = Losses.mse(y, target);
            model.backward(loss.grad());                       // accumulates the adapters' gradients
            optimizer.step();
            if (step == 1 || step == 20) System.out.printf("step %d: loss %.4f%n", step, loss.value());
        }

        // PEFT layout: adapter_model.safetensors (base_model.model.fc1.lora_A.weight, ...) and adapter_config.json.
        AdapterCheckpoints.savePeft(peftDir, model.loraModules());
        System.out.println("saved adapters to " + peftDir);
    }
}
