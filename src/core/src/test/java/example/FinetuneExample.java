package example;

import dev.tornadolora.device.Device;
import dev.tornadolora.device.DeviceOptions;
import dev.tornadolora.finetune.FinetuneJob;
import dev.tornadolora.finetune.FinetuneListener;
import dev.tornadolora.finetune.FinetuneRun;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.train.Trainer;

import java.nio.file.Path;
import java.util.Set;

/** QLoRA on a Hugging Face Llama folder: the job as a value, run with a listener; PEFT loads OUT/peft. */
public class FinetuneExample {
    public static void main(String[] args) throws Exception {
        Path model = Path.of(args[0]), data = Path.of(args[1]), out = Path.of(args[2]);  // data: .safetensors or .jsonl
        FinetuneJob job = FinetuneJob.of(model, data, out)  // finetune's defaults: AdamW 3e-4, cosine, clip 1, one epoch
                .withLora(new LoraSettings(Set.of("q_proj", "v_proj"), true, false, 8, 16f, 0f, false, true))  // + MLP, NF4 base
                .withBatching(new FinetuneJob.Batching(2, 2, true, 0))  // 2 rows x 2 micro-batches a step, shuffled
                .withSteps(10);
        try (Device device = Device.open("auto", DeviceOptions.defaults())) {  // an accelerator if any, else the JVM
            FinetuneRun.Result r = job.run(device, new FinetuneListener() {
                @Override public void step(Trainer.StepRecord s, double seconds, long tokens) {
                    System.out.printf("step %d: loss %.4f%n", s.step(), s.loss());
                }
            });
            System.out.printf("eval loss %.4f -> %.4f; adapter in %s%n", r.initialEval(), r.finalEval(), out.resolve("peft"));
        }
    }
}
