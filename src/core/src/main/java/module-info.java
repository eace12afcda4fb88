/**
 * tornado-lora's library: torchtune's {@code LoRALinear} (and QLoRA's NF4 base) on the JVM, with the layers,
 * optimizers, schedules, safetensors/PEFT checkpoints and the kernel backends behind one interface.
 *
 * <p>Exported: {@code tensor} (tensors and base weights: dense fp32 and torchao's NF4), {@code nn} (LoRALinear,
 * FrozenLinear, Sequential, activations), {@code io} (safetensors, LoRA/PEFT checkpoints, merge), {@code train}
 * (AdamW, SGD, schedules, losses, the training loop), {@code device} (a {@code Device} opened by name: the
 * projection backend and the executor every op runs on, sized by one thread setting) and {@code kernels} (the
 * interface an accelerator backend implements) and {@code llama} (Hugging Face Llama decoders with LoRA/QLoRA, PEFT
 * adapters) and {@code finetune} (the fine-tuning job as a value, {@code FinetuneJob}, its run, the loop: data order,
 * loss normalisation, resume point) and
 * {@code math} (the one source of each shared formula: NF4 decode, exp, softmax, SiLU, cross-entropy and its
 * {@code IGNORE_INDEX}; what accelerator kernels call). Internal: {@code kernels.jvm} (the Vector API backend, reached through {@code Device}),
 * {@code llama.ops} (the decoder's ops) and {@code bench} (the CLI's benchmark runner).
 *
 * <p>The Vector API is optional ({@code requires static}): the JVM backend uses it when
 * {@code jdk.incubator.vector} is readable (e.g. {@code --add-modules jdk.incubator.vector}).
 */
module dev.tornadolora.core {
    requires static jdk.incubator.vector;
    requires transitive com.fasterxml.jackson.databind;  // the training log is a Jackson tree
    requires java.management;                           // AtomicFiles: the process id in temporary names

    exports dev.tornadolora.tensor;
    exports dev.tornadolora.nn;
    exports dev.tornadolora.io;
    exports dev.tornadolora.train;
    exports dev.tornadolora.device;
    exports dev.tornadolora.kernels;
    exports dev.tornadolora.llama;
    exports dev.tornadolora.finetune;
    exports dev.tornadolora.math;

    uses dev.tornadolora.kernels.LoraKernelsProvider;
    uses dev.tornadolora.finetune.TokenFormat;           // .jsonl text: tornado-lora-data
    uses dev.tornadolora.finetune.DataParallelLauncher;  // finetune on a cluster: tornado-lora-spark
    uses dev.tornadolora.finetune.DeviceStep.Provider;
    uses dev.tornadolora.llama.DeviceForward.Provider;
}
