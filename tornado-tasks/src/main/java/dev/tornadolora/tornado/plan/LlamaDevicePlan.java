package dev.tornadolora.tornado.plan;

import dev.tornadolora.llama.LlamaConfig;
import dev.tornadolora.llama.LlamaForCausalLM;
import dev.tornadolora.llama.LoraSettings;
import dev.tornadolora.llama.ops.CausalLmLoss;
import dev.tornadolora.math.CrossEntropy;
import dev.tornadolora.math.Nf4;
import dev.tornadolora.llama.ops.Rope;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.HalfWeight;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.tornado.kernels.AdapterKernels;
import dev.tornadolora.tornado.kernels.AttentionKernels;
import dev.tornadolora.tornado.kernels.CausalLmLossKernels;
import dev.tornadolora.tornado.kernels.EmbeddingKernels;
import dev.tornadolora.tornado.kernels.HalfDecode;
import dev.tornadolora.tornado.kernels.Matmul;
import dev.tornadolora.tornado.kernels.PanelSegments;
import dev.tornadolora.tornado.kernels.OptimizerKernels;
import dev.tornadolora.tornado.kernels.RmsNormKernels;
import dev.tornadolora.tornado.kernels.RopeKernels;
import dev.tornadolora.tornado.kernels.Sizes;
import dev.tornadolora.tornado.kernels.SwiGluKernels;
import uk.ac.manchester.tornado.api.ImmutableTaskGraph;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.TornadoProfilerResult;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.enums.ProfilerMode;
import uk.ac.manchester.tornado.api.types.arrays.ByteArray;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;
import uk.ac.manchester.tornado.api.types.arrays.ShortArray;
import uk.ac.manchester.tornado.api.types.collections.VectorFloat16;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * A whole Llama training step on one TornadoVM device, GPULlama3.java's way: one {@link TornadoExecutionPlan}
 * whose task graphs are the stages of the step, joined by {@code persistOnDevice}/{@code consumeFromDevice}, so
 * that the frozen weights (fp32, NF4, or BF16/F16 as stored), the adapters, AdamW's moments, the activations and
 * the gradients live on the device for the plan's life, allocated once for its batch shape.
 * <pre>
 *   setup          (once) θ, ∇θ, m, v, the residual stream x₀ … x_L and its gradient dy, every layer's saved
 *                  activations and the scratch onto the device
 *   layer 0 fwd    ids ──→  x₀ = embed_tokens[ids], then as every layer:
 *   layer l fwd    x_{l+1} = layer_l(x_l): norm, q/k/v (+LoRA), rope, attention, o (+LoRA), residual, norm,
 *                  gate/up (+LoRA), SwiGLU, down (+LoRA), residual
 *   head           targets, g ──→  n = norm(x_L); per chunk of rows: z = n·Wᵀ, ℓ and dz in place, dn = dz·W
 *                  (the logits never whole); Σℓ ──→ host;  dy = norm backward
 *   evalHead       (evaluation, instead of head and the backward) targets ──→  n = norm(x_L); per chunk of rows
 *                  z = n·Wᵀ, ℓ; Σℓ ──→ host
 *   layer l bwd    l = L−1 … 0: every op's backward from the activations layer l's forward left on the device;
 *                  dy ← dx (in place), LoRA gradients accumulated into the flat ∇θ
 *   gradNorm       ‖∇θ_i‖, clip factor;  ‖∇θ‖ ──→ host (which stops a step whose norm is not finite)
 *   update         lr-dependent constants ──→  ∇θ·factor, AdamW, ∇θ = 0
 *   toHost         θ, m, v ──→ host, only when asked (save, merge, evaluation, the end)
 * </pre>
 * TornadoVM hands persisted buffers from the graph that ran last to the next one only
 * ({@code TornadoTaskGraph.updatePersistedObjectState}), so every graph consumes and persists every buffer that
 * crosses graphs: θ, ∇θ, m, v, the clip factor, x₀ … x_L, dy, each layer's activations (what its backward reads)
 * and the scratch the graphs share. A graph hands on a buffer it consumed whether its tasks name it or not, so
 * that costs no kernel launch; only the setup graph names them all (TornadoVM allocates and uploads a buffer only
 * for a task that names it: {@link PlanKernels#keep}). Each shared buffer exists once on the device. The frozen
 * weights live in the graphs that read them: each layer's forward and backward graph holds the layout its
 * products read. All trainable tensors sit end to end in one array per role (θ, ∇θ, m, v) in the order of
 * {@link LlamaForCausalLM#trainableParameters()}, so the optimizer is four tasks whatever the model.
 *
 * <p>Per step the host sends the ids, the shifted targets and the gradient scale, and AdamW's three step constants,
 * and receives the loss sum and the gradient norm; adapters come back by {@link #adaptersToHost()}. What it covers:
 * LoRA on any of the seven layer projections, no LoRA dropout, no adapter on lm_head (refused by name otherwise);
 * one batch shape per plan (TornadoVM compiles sizes in). The frozen weights stay on the host too, in the model's
 * arrays: merging, exporting a merged model and evaluating rows the plan does not cover read them, and the model is
 * its caller's, so the plan does not release them. A graph holds at most about a hundred tasks (TornadoVM's
 * 8 KiB of graph code) and its bytecode needs {@code -Dtornado.tvm.maxbytecodesize=1048576} on the JVM's command line.
 */
public final class LlamaDevicePlan implements AutoCloseable {

    /** AdamW's constants and the clipping norm (≤ 0: no clipping), as {@code train.AdamW} and the Trainer take them. */
    public record Optimizer(double beta1, double beta2, double eps, double weightDecay, double maxGradNorm) {}

    /**
     * What the steps since the last {@link #takeProfile()} moved and ran, from TornadoVM's profiler: bytes in and out
     * (TornadoVM writes each kernel launch's argument frame, {@link #FRAME_BYTES}, to the device and counts it as
     * bytes in: the plan keeps launches few for that), the kernel launches,
     * and kernel nanoseconds per graph.
     */
    public record StepProfile(long copyInBytes, long copyOutBytes, long launches, Map<String, Long> kernelNanosByGraph) {}

    /** Bytes TornadoVM's profiler counts in per kernel launch (its argument frame) on OpenCL. */
    public static final int FRAME_BYTES = 24;

    /** A decoder layer's projections in model order. */
    private static final List<String> PROJECTIONS = java.util.stream.Stream.concat(
            LoraSettings.ATTN_MODULES.stream(), LoraSettings.MLP_MODULES.stream()).toList();

    private final LlamaConfig c;
    private final int batch, seq, tokens, chunkRows, chunks;
    private final Optimizer opt;
    private final List<Parameter> params = new ArrayList<>();
    private final int totalParams;

    // per step
    private final IntArray ids, targets;
    private final FloatArray scalars = new FloatArray(1);
    private final FloatArray total = new FloatArray(1);
    private final FloatArray hyper = new FloatArray(3);
    private final FloatArray stats = new FloatArray(2);
    // flat trainables
    private final FloatArray theta, grads, moment1, moment2, thetaOut, moment1Out, moment2Out;
    /** With forward outputs only (see the constructor): the batch's logits and the gradients, for the host. */
    private final FloatArray logitsOut, gradsOut;

    private final TornadoExecutionPlan plan;
    private final Map<String, Integer> graphIndex = new LinkedHashMap<>();
    private final boolean profile;
    private long copyIn, copyOut, launches;
    private final Map<String, Integer> graphTasks = new LinkedHashMap<>();
    private final Map<String, Long> kernelNanos = new LinkedHashMap<>();
    /** Each graph's device buffers in bytes on its last profiled run. */
    private final Map<String, Long> graphBytes = new LinkedHashMap<>();
    /** Kernel nanoseconds per task (graph.task), summed since the last {@link #takeTaskProfile()}; null: not kept. */
    private Map<String, Long> taskNanos;
    private long steps;
    private boolean setUp;

    /** Whether any decoder layer's projection carries an adapter (the plan trains those; lm_head's it refuses). */
    public static boolean adaptsLayers(LoraSettings lora, int layers) {
        for (int l = 0; l < layers; l++) {
            for (String m : LoraSettings.ATTN_MODULES) if (lora.targets("model.layers." + l + ".self_attn." + m)) return true;
            for (String m : LoraSettings.MLP_MODULES) if (lora.targets("model.layers." + l + ".mlp." + m)) return true;
        }
        return false;
    }

    /** One trainable tensor: where it sits in the flat arrays and the live host array it mirrors. */
    private record Parameter(String name, int offset, float[] host) {}

    /**
     * A projection as the kernels see it: its base and its adapter's place in θ (rank 0: none). The base is read
     * as the two panel layouts {@link Matmul#panels} reads, {@code forward} = Wᵀ's (y = x·Wᵀ) and {@code backward}
     * = W's (dx = dy·W), from Float16 {@code forwardAt} and {@code backwardAt} on: an fp32 base's packed once, an
     * NF4 or 16-bit base's in the panels its graph decodes it into first (a decoder layer's: the layer panels,
     * {@link SegmentDecode}).
     */
    private record Proj(int in, int out, VectorFloat16 forward, VectorFloat16 backward, int forwardAt,
                        int backwardAt, int rank, float scale, int aOffset, int bOffset) {}

    /**
     * Builds the plan for batches of {@code batch} × {@code seq} tokens and uploads nothing yet (the first step
     * brings the weights). {@code device} null: TornadoVM's default device.
     */
    public LlamaDevicePlan(LlamaForCausalLM model, int batch, int seq, Optimizer opt, TornadoDevice device,
                           boolean profile) {
        this(model, batch, seq, opt, device, profile, false);
    }

    /**
     * As the training plan, and with {@code forwardOutputs} two graphs more for {@code forward}: the whole batch's
     * logits ({@link #logits}, a buffer of batch × seq × vocab floats) and the gradients to the host
     * ({@link #gradientsToHost}).
     */
    public LlamaDevicePlan(LlamaForCausalLM model, int batch, int seq, Optimizer opt, TornadoDevice device,
                           boolean profile, boolean forwardOutputs) {
        this.c = model.config();
        LoraSettings lora = model.lora();
        if (lora.output()) {
            throw new IllegalArgumentException("the device plan has no adapter on lm_head yet: leave lm_head out of"
                    + " the LoRA modules or use the per-projection plan");
        }
        if (lora.dropout() != 0f) {
            throw new IllegalArgumentException("the device plan has no LoRA dropout yet (lora_dropout "
                    + lora.dropout() + "): use 0 or the per-projection plan");
        }
        if (!adaptsLayers(lora, c.numHiddenLayers())) {
            throw new IllegalArgumentException("the device plan trains adapters on the layers: no LoRA module is set");
        }
        if (batch <= 0 || seq <= 0) {
            throw new IllegalArgumentException("batch and seq must be positive, got " + batch + " and " + seq);
        }
        this.batch = batch;
        this.seq = seq;
        this.tokens = batch * seq;
        this.chunkRows = Math.min(tokens, Math.max(1, (1 << 22) / c.vocabSize()));  // ≤ 16 MiB of logits at once
        this.chunks = (tokens + chunkRows - 1) / chunkRows;
        this.opt = opt;
        this.profile = profile;

        // -------- the trainables, end to end
        Map<String, LoRALinear> adapted = model.adapterModules();
        Map<String, int[]> offsets = new LinkedHashMap<>();
        int off = 0;
        for (Map.Entry<String, LoRALinear> e : adapted.entrySet()) {
            LoRALinear l = e.getValue();
            offsets.put(e.getKey(), new int[] {off, off + l.loraA().length});
            params.add(new Parameter(e.getKey() + ".lora_A", off, l.loraA()));
            off += l.loraA().length;
            params.add(new Parameter(e.getKey() + ".lora_B", off, l.loraB()));
            off += l.loraB().length;
        }
        totalParams = off;
        theta = new FloatArray(totalParams);
        for (Parameter p : params) {
            for (int i = 0; i < p.host.length; i++) theta.set(p.offset + i, p.host[i]);
        }
        grads = new FloatArray(totalParams);
        moment1 = new FloatArray(totalParams);
        moment2 = new FloatArray(totalParams);
        thetaOut = new FloatArray(totalParams);
        moment1Out = new FloatArray(totalParams);
        moment2Out = new FloatArray(totalParams);
        int[] tensorOffsets = new int[params.size() + 1];
        for (int i = 0; i < params.size(); i++) tensorOffsets[i + 1] = params.get(i).offset + params.get(i).host.length;
        IntArray tensorOffsetsD = IntArray.fromArray(tensorOffsets);

        // -------- frozen weights and buffers
        int d = c.hiddenSize(), inter = c.intermediateSize(), qD = c.qDim(), kvD = c.kvDim();
        int heads = c.numAttentionHeads(), kv = c.numKeyValueHeads(), hd = c.headDim(), rep = heads / kv;
        int layers = c.numHiddenLayers(), vocab = c.vocabSize(), t = tokens;
        float eps = (float) c.rmsNormEps(), attnScale = (float) (1.0 / Math.sqrt(hd));
        Map<String, BaseWeight> frozen = model.frozenWeights();
        Map<Object, FloatArray> uploaded = new IdentityHashMap<>();  // a tied lm_head is the embedding's buffer
        Map<Object, ShortArray> uploadedHalves = new IdentityHashMap<>();  // likewise for 16-bit ones
        BaseWeight embBase = frozen.get("model.embed_tokens.weight");
        ShortArray embHalves = embBase instanceof HalfWeight h ? halves(h, uploadedHalves) : null;
        FloatArray emb = embHalves != null ? null : dense(embBase, uploaded);
        FloatArray finalNorm = dense(frozen.get("model.norm.weight"), uploaded);
        FloatArray codebook = FloatArray.fromArray(Nf4.codebook());
        Rope.Tables tables = new Rope(hd, c.ropeTheta(), c.ropeScaling()).tables(seq);
        FloatArray cos = FloatArray.fromArray(tables.cos()), sin = FloatArray.fromArray(tables.sin());
        IntArray sizes = IntArray.fromArray(new int[] {t, 0, 1});
        FloatArray noMask = new FloatArray(1), noBias = new FloatArray(1);

        ids = new IntArray(t);
        targets = new IntArray(t);
        FloatArray[] xs = new FloatArray[layers + 1];
        for (int l = 0; l <= layers; l++) xs[l] = new FloatArray(t * d);
        FloatArray dy = new FloatArray(t * d);
        int maxRank = 1;
        for (LoRALinear l : adapted.values()) maxRank = Math.max(maxRank, l.rank());
        // Each layer's NF4 and 16-bit bases, decoded by one launch per format and direction into the layer panels:
        // one buffer for all layers and both directions (the graphs run one after another), the largest layer's
        List<LayerBases> layerBases = new ArrayList<>();
        int layerSlots = 1;
        for (int l = 0; l < layers; l++) {
            LayerBases lb = layerBases(frozen, "model.layers." + l + ".", uploadedHalves);
            layerBases.add(lb);
            layerSlots = Math.max(layerSlots, Math.max(lb.forwardSlots, lb.backwardSlots));
        }
        int keyBlocks = ceilDiv(seq, AttentionKernels.LANES), dimBlocks = ceilDiv(hd, AttentionKernels.LANES);
        Common cm = new Common(sizes, codebook, noMask, noBias, cos, sin,
                new FloatArray(batch * heads * seq * seq), new FloatArray(batch * heads * seq * seq),
                new VectorFloat16(t * kv * dimBlocks), new VectorFloat16(batch * kv * hd * keyBlocks),
                new VectorFloat16(t * kv * dimBlocks), new VectorFloat16(t * heads * dimBlocks),
                new VectorFloat16(t * heads * dimBlocks), new FloatArray(t * maxRank), new VectorFloat16(layerSlots),
                new VectorFloat16(1), FloatArray.fromArray(HalfDecode.powers(HalfWeight.Format.BF16)),
                FloatArray.fromArray(HalfDecode.powers(HalfWeight.Format.F16)));

        Graphs graphs = new Graphs();
        graphs.share(xs);
        graphs.share(theta, grads, dy, stats, moment1, moment2);
        graphs.share(cm.p, cm.ds, cm.vBlocks, cm.vCols, cm.kRows, cm.qRows, cm.dOutRows,
                cm.dhLora, cm.layerPanels);
        graphs.graph("setup").setup = true;

        // -------- embed, in the first layer's forward graph (a graph less: fewer launches, see PlanKernels)
        Graph firstForward = graphs.graph("layer0Forward");
        Stage embed = firstForward.stage("embed");
        embed.everyStep(ids).use(xs[0]);
        if (embHalves != null) {
            int mBits = HalfDecode.mantissaBits(((HalfWeight) embBase).format());
            FloatArray powers = cm.powers(mBits);
            embed.use(embHalves, powers);
            embed.add(g -> g.task(embed.n("gather"), HalfDecode::gather, ids, embHalves, powers, xs[0], t, d, mBits));
        } else {
            embed.use(emb);
            embed.add(g -> g.task(embed.n("gather"), EmbeddingKernels::gather, ids, emb, xs[0], t, d));
        }

        // -------- layers forward
        List<Layer> layerList = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            String prefix = "model.layers." + l + ".";
            Map<String, Proj> proj = new LinkedHashMap<>();
            Map<String, FloatArray> hLora = new LinkedHashMap<>();
            LayerBases lb = layerBases.get(l);
            for (String name : PROJECTIONS) {
                String path = prefix + (LoraSettings.ATTN_MODULES.contains(name) ? "self_attn." : "mlp.") + name;
                BaseWeight base = frozen.get(path + ".weight");
                int[] at = lb.at.get(name);
                Proj pr = at == null ? projection(base, adapted.get(path), offsets.get(path))
                        : projection(base, adapted.get(path), offsets.get(path), cm.layerPanels, at);
                proj.put(name, pr);
                hLora.put(name, new FloatArray(Math.max(1, t * pr.rank)));
            }
            Layer layer = new Layer(dense(frozen.get(prefix + "input_layernorm.weight"), uploaded),
                    dense(frozen.get(prefix + "post_attention_layernorm.weight"), uploaded), proj, lb.decodes,
                    new Acts(new FloatArray(t), new FloatArray(t * d), new FloatArray(t * qD), new FloatArray(t * kvD),
                            new FloatArray(t * kvD), new FloatArray(t * qD), new FloatArray(batch * heads * seq),
                            new FloatArray(t * d), new FloatArray(t), new FloatArray(t * d),
                            new FloatArray(t * inter), new FloatArray(t * inter), new FloatArray(t * inter),
                            new VectorFloat16(batch * kv * hd * keyBlocks), hLora));
            layerList.add(layer);
            graphs.share(layer.acts.inv1, layer.acts.n, layer.acts.q, layer.acts.k, layer.acts.v, layer.acts.attn,
                    layer.acts.lse, layer.acts.h, layer.acts.inv2, layer.acts.m, layer.acts.g, layer.acts.u,
                    layer.acts.a, layer.acts.kBlocks);
            graphs.share(hLora.values().toArray());
            layerForward((l == 0 ? firstForward : graphs.graph("layer" + l + "Forward")).stage("forward"), layer, xs[l],
                    l == 0 ? null : layerList.get(l - 1).acts.h, xs[l + 1], cm);
        }

        // -------- final norm, head + loss by chunks of rows, the norm's backward. x_L is the last layer's MLP
        // branch until the final norm adds the layer's residual h into it (layerForward), once per forward
        FloatArray xL = xs[layers], lastH = layerList.get(layers - 1).acts.h, none = cm.noBias;
        FloatArray nF = new FloatArray(t * d), invF = new FloatArray(t), dnF = new FloatArray(t * d);
        FloatArray z = new FloatArray(chunkRows * vocab), rowLoss = new FloatArray(t);
        IntArray chunk = new IntArray(1);
        Graph headGraph = graphs.graph("head");
        Stage fin = headGraph.stage("finalNorm");
        fin.everyStep(targets, scalars).use(xL, lastH, finalNorm, nF, invF, chunk);
        if (chunks > 1) {  // one chunk: chunk[0] stays 0
            fin.add(g -> g.task(fin.n("restart"), CausalLmLossKernels::restart, chunk, targets, scalars));
        }
        fin.add(g -> g.task(fin.n("norm"), RmsNormKernels::forward, xL, lastH, finalNorm, nF, invF, t, d, eps, 1));
        int cr = chunkRows;
        // One chunk (vocab ≤ 8192 at 512 rows): lm_head's two products on the panel schedule, W packed once per
        // layout (a 16-bit W kept 16-bit and decoded into the head graphs' own scratch before each product).
        // Several chunks: the chunk kernels, which start at the device's chunk row, reading W in place (fp32, or
        // 16-bit decoded in their loops).
        BaseWeight headBase = frozen.get("lm_head.weight");
        SegmentDecode headDecode = chunks == 1 && headBase instanceof HalfWeight
                ? segmentDecode(List.of(headBase), 0, 0, uploadedHalves) : null;
        Proj headProj = chunks != 1 ? null
                : headDecode != null ? projection(headBase, null, null,
                        new VectorFloat16(Math.max(headDecode.forwardSlots, headDecode.backwardSlots)), new int[2])
                : projection(headBase instanceof Nf4Tensor ? new DenseWeight(vocab, d, headBase.dequantize())
                        : headBase, null, null);
        HeadWeight headW = chunks == 1 ? null : headBase instanceof HalfWeight h
                ? new HeadWeight(new FloatArray(1), halves(h, uploadedHalves),
                        cm.powers(HalfDecode.mantissaBits(h.format())), HalfDecode.mantissaBits(h.format()))
                : new HeadWeight(dense(headBase, uploaded), new ShortArray(1), new FloatArray(1), 0);
        for (int k = 0; k < chunks; k++) {  // one stage per chunk, unrolled; the chunk's first row is chunk[0]
            Stage head = headGraph.stage("chunk" + k);
            head.use(nF, z, chunk, targets, scalars, rowLoss, dnF);
            headLogits(head, headProj, headDecode, headW, nF, z, chunk, cm);
            head.add(g -> g.task(head.n("rows"), CausalLmLossKernels::rows, z, targets, scalars, rowLoss, chunk, cr,
                    vocab, t, 1));
            if (headProj != null) {
                if (headDecode != null) decode(head, "dnDecode", headDecode, headProj.backward, 0, cm);
                product(head, "dn", headProj, z, dnF, headProj.backward, headProj.backwardAt, d, vocab, 0, cm);
            } else {
                head.use(headW.w, headW.halves, headW.powers);
                head.add(g -> g.task(head.n("dn"), CausalLmLossKernels::inputGradients, z, headW.w, headW.halves,
                        headW.powers, dnF, chunk, d, cr, vocab, t, headW.mantissaBits));
            }
            if (chunks > 1) head.add(g -> g.task(head.n("advance"), CausalLmLossKernels::advance, chunk, cr));
        }
        Stage headEnd = headGraph.stage("end");
        headEnd.use(rowLoss, dnF, xL, finalNorm, invF, dy, none).download(total);
        headEnd.add(g -> g.task(headEnd.n("total"), CausalLmLossKernels::total, rowLoss, total, t));
        headEnd.add(g -> g.task(headEnd.n("normBackward"), RmsNormKernels::backward, dnF, none, xL, finalNorm, invF,
                dy, t, d, 0, 0));

        // -------- the loss alone (evaluation): the final norm and, by chunks of rows, logits and ℓ; Σℓ ──→ host
        Graph evalGraph = graphs.graph("evalHead");
        Stage evalNorm = evalGraph.stage("finalNorm");
        evalNorm.everyStep(targets).use(xL, lastH, finalNorm, nF, invF, chunk, scalars);
        if (chunks > 1) {  // one chunk: chunk[0] stays 0
            evalNorm.add(g -> g.task(evalNorm.n("restart"), CausalLmLossKernels::restart, chunk, targets, scalars));
        }
        evalNorm.add(g -> g.task(evalNorm.n("norm"), RmsNormKernels::forward, xL, lastH, finalNorm, nF, invF, t, d,
                eps, 1));
        for (int k = 0; k < chunks; k++) {
            Stage head = evalGraph.stage("chunk" + k);
            head.use(nF, z, chunk, targets, scalars, rowLoss);
            headLogits(head, headProj, headDecode, headW, nF, z, chunk, cm);
            head.add(g -> g.task(head.n("rows"), CausalLmLossKernels::rows, z, targets, scalars, rowLoss, chunk, cr,
                    vocab, t, 0));
            if (chunks > 1) head.add(g -> g.task(head.n("advance"), CausalLmLossKernels::advance, chunk, cr));
        }
        Stage evalEnd = evalGraph.stage("end");
        evalEnd.use(rowLoss).download(total);
        evalEnd.add(g -> g.task(evalEnd.n("total"), CausalLmLossKernels::total, rowLoss, total, t));

        // -------- forward outputs: the whole batch's logits; the gradients to the host
        if (forwardOutputs) {
            logitsOut = new FloatArray(t * vocab);
            gradsOut = new FloatArray(totalParams);
            Graph lg = graphs.graph("logitsHead");
            Stage ln = lg.stage("finalNorm");
            ln.use(xL, lastH, finalNorm, nF, invF, chunk);
            if (chunks > 1) {  // one chunk: chunk[0] stays 0
                ln.use(targets, scalars);
                ln.add(g -> g.task(ln.n("restart"), CausalLmLossKernels::restart, chunk, targets, scalars));
            }
            ln.add(g -> g.task(ln.n("norm"), RmsNormKernels::forward, xL, lastH, finalNorm, nF, invF, t, d, eps, 1));
            for (int k = 0; k < chunks; k++) {
                Stage head = lg.stage("chunk" + k);
                head.use(nF, z, chunk);
                headLogits(head, headProj, headDecode, headW, nF, z, chunk, cm);
                head.add(g -> g.task(head.n("place"), PlanKernels::placeRows, z, logitsOut, chunk, vocab, cr, t));
                if (chunks > 1) head.add(g -> g.task(head.n("advance"), CausalLmLossKernels::advance, chunk, cr));
            }
            lg.stage("end").download(logitsOut);
            Stage gh = graphs.graph("gradsToHost").stage("gradsToHost");
            gh.use(grads).download(gradsOut);
            int n = totalParams;
            gh.add(g -> g.task(gh.n("copy"), EmbeddingKernels::copy, grads, gradsOut, n));
        } else {
            logitsOut = null;
            gradsOut = null;
        }

        // -------- layers backward: every op's backward from the activations the layer's forward graph left on the
        // device. dy is the gradient of the layer's output on entry and of its input on exit: once down_proj's
        // backward has read it, the residual branches' gradients accumulate into it in place (no copies)
        FloatArray tmp = new FloatArray(t * d), dm = new FloatArray(t * d), dn = new FloatArray(t * d);
        FloatArray da = new FloatArray(t * inter), dg = new FloatArray(t * inter), du = new FloatArray(t * inter);
        FloatArray dAttn = new FloatArray(t * qD), dq = new FloatArray(t * qD);
        FloatArray dk = new FloatArray(t * kvD), dv = new FloatArray(t * kvD);
        graphs.share(tmp, dm, dn, da, dg, du, dAttn, dq, dk, dv);
        FloatArray dh = dy;
        for (int l = layers - 1; l >= 0; l--) {
            Layer layer = layerList.get(l);
            Acts s = layer.acts;
            Map<String, Proj> proj = layer.proj;
            FloatArray x = xs[l];
            Stage b = graphs.graph("layer" + l + "Backward").stage("backward");
            FloatArray p = cm.p, ds = cm.ds, dhLora = cm.dhLora;
            VectorFloat16 kCols = s.kBlocks, vCols = cm.vCols, kRows = cm.kRows, qRows = cm.qRows;
            VectorFloat16 dOutRows = cm.dOutRows;
            b.use(layer.inNorm, layer.postNorm, cos, sin, cm.noBias);
            decodeBases(b, layer, 0, cm);
            projectBackward(b, "down", proj.get("down_proj"), dy, s.a, da, s.hLora.get("down_proj"), cm);
            b.add(g -> g.task(b.n("swiglu"), SwiGluKernels::backward, da, s.g, s.u, dg, du, t * inter));
            productPair(b, "gateUp", proj.get("gate_proj"), dg, proj.get("up_proj"), du, dm, cm);
            adapterBackward(b, "gate", proj.get("gate_proj"), dg, s.m, dm, s.hLora.get("gate_proj"), cm);
            adapterBackward(b, "up", proj.get("up_proj"), du, s.m, dm, s.hLora.get("up_proj"), cm);
            b.add(g -> g.task(b.n("norm2"), RmsNormKernels::backward, dm, cm.noBias, s.h, layer.postNorm, s.inv2, dh,
                    t, d, 1, 0));
            projectBackward(b, "o", proj.get("o_proj"), dh, s.attn, dAttn, s.hLora.get("o_proj"), cm);
            // the backward's operands as blocks of 16 lanes: k and v by key position (k's the forward left), k, q
            // and dO by head dim; two layouts a launch
            b.add(g -> g.task(b.n("valueKeyBlocks"), AttentionKernels::keyValueBlocks, s.v, s.k, vCols, kRows, seq,
                    kv, batch, hd, keyBlocks, dimBlocks));
            b.add(g -> g.task(b.n("queryOutRows"), AttentionKernels::rowBlocks, s.q, dAttn, qRows, dOutRows, t, heads,
                    hd, dimBlocks));
            b.add(g -> g.task(b.n("scoreGradients"), AttentionKernels::scoreGradients, s.q, kCols, vCols, s.attn,
                    dAttn, s.lse, p, ds, seq, kv, batch, rep, hd, attnScale, keyBlocks));
            b.add(g -> g.task(b.n("queryGradients"), AttentionKernels::queryGradients, ds, kRows, dq, seq, kv, batch,
                    rep, hd, dimBlocks));
            b.add(g -> g.task(b.n("keyValueGradients"), AttentionKernels::keyValueGradients, ds, p, qRows, dOutRows,
                    dk, dv, seq, kv, batch, rep, hd, dimBlocks));
            int half = hd / 2;
            b.add(g -> g.task(b.n("ropeQ"), RopeKernels::rotateHalves, dq, cos, sin, seq, batch, heads, hd, half,
                    -1f));
            b.add(g -> g.task(b.n("ropeK"), RopeKernels::rotateHalves, dk, cos, sin, seq, batch, kv, hd, half, -1f));
            // layer 0's input is the embedding, frozen: no input gradient, only the q, k, v adapters' gradients
            FloatArray dnQ = l > 0 ? dn : null, dnKv = l > 0 ? tmp : null;
            projectBackward(b, "q", proj.get("q_proj"), dq, s.n, dnQ, s.hLora.get("q_proj"), cm);
            if (l > 0) productPair(b, "kv", proj.get("k_proj"), dk, proj.get("v_proj"), dv, tmp, cm);
            adapterBackward(b, "k", proj.get("k_proj"), dk, s.n, dnKv, s.hLora.get("k_proj"), cm);
            adapterBackward(b, "v", proj.get("v_proj"), dv, s.n, dnKv, s.hLora.get("v_proj"), cm);
            if (l > 0) {  // dn + tmp (q's and k, v's input gradients) summed as the norm reads them
                b.add(g -> g.task(b.n("norm1"), RmsNormKernels::backward, dn, tmp, x, layer.inNorm, s.inv1, dh, t, d,
                        1, 1));
            }
        }

        // -------- optimizer: the norm first (the host checks it), then clipping and AdamW
        int nTensors = params.size(), n = totalParams;
        int clip = opt.maxGradNorm() > 0 ? 1 : 0;
        float maxNorm = (float) opt.maxGradNorm();
        float b1 = (float) opt.beta1(), b2 = (float) opt.beta2();
        float c1 = (float) (1 - opt.beta1()), c2 = (float) (1 - opt.beta2()), epsF = (float) opt.eps();
        FloatArray norms = new FloatArray(nTensors);
        Stage o = graphs.graph("gradNorm").stage("gradNorm");
        o.use(grads, tensorOffsetsD, norms).download(stats);
        o.add(g -> g.task(o.n("norms"), OptimizerKernels::tensorNorms, grads, tensorOffsetsD, norms, nTensors));
        o.add(g -> g.task(o.n("factor"), OptimizerKernels::clipFactor, norms, stats, nTensors, maxNorm, clip));
        Stage u = graphs.graph("update").stage("update");
        u.everyStep(hyper).use(grads, stats, theta, moment1, moment2);
        if (clip == 1) {
            u.add(g -> g.task(u.n("clip"), OptimizerKernels::scale, grads, stats, n));
        }
        u.add(g -> g.task(u.n("adamw"), OptimizerKernels::adamW, theta, grads, moment1, moment2, hyper, n, b1, b2, c1,
                c2, epsF));
        u.add(g -> g.task(u.n("zeroGrad"), OptimizerKernels::zero, grads, n));

        // -------- adapters and AdamW's moments back to the host, when asked
        Stage out = graphs.graph("toHost").stage("toHost");
        out.use(theta, moment1, moment2).download(thetaOut, moment1Out, moment2Out);
        out.add(g -> g.task(out.n("theta"), EmbeddingKernels::copy, theta, thetaOut, n));
        out.add(g -> g.task(out.n("m"), EmbeddingKernels::copy, moment1, moment1Out, n));
        out.add(g -> g.task(out.n("v"), EmbeddingKernels::copy, moment2, moment2Out, n));

        plan = new TornadoExecutionPlan(graphs.build().toArray(new ImmutableTaskGraph[0]));
        try {
            if (device != null) plan.withDevice(device);
            if (profile) plan.withProfiler(ProfilerMode.SILENT);
        } catch (RuntimeException e) {
            Closing.close(plan);
            throw e;
        }
    }

    /** An fp32 projection: W packed in both panel layouts. */
    private static Proj projection(BaseWeight base, LoRALinear lin, int[] ab) {
        if (!(base instanceof DenseWeight d)) throw new IllegalStateException("an NF4 or 16-bit base is decoded");
        int in = base.cols(), out = base.rows();
        return new Proj(in, out, Matmul.packPanels(d.data(), out, in, true), Matmul.packPanels(d.data(), in, out, false),
                0, 0, lin == null ? 0 : lin.rank(), lin == null ? 0f : lin.scale(), ab == null ? 0 : ab[0],
                ab == null ? 0 : ab[1]);
    }

    /**
     * An NF4 or 16-bit projection, read from the panels its graph decodes it into ({@code panels}) from
     * {@code at} = {forward, backward} on.
     */
    private static Proj projection(BaseWeight base, LoRALinear lin, int[] ab, VectorFloat16 panels, int[] at) {
        return new Proj(base.cols(), base.rows(), panels, panels, at[0], at[1], lin == null ? 0 : lin.rank(),
                lin == null ? 0f : lin.scale(), ab == null ? 0 : ab[0], ab == null ? 0 : ab[1]);
    }

    /**
     * NF4 or 16-bit weights of one format (and NF4 block size) decoded by one launch per direction
     * ({@link PanelSegments#decode}) into one panel buffer: their codes and block scales or 16-bit values end to
     * end, and the {@link PanelSegments} tables of the forward (Wᵀ) and backward (W) panels, {@code count}
     * segments each; {@code mantissaBits} 0: NF4.
     */
    private record SegmentDecode(ByteArray codes, FloatArray scales, int log2Block, ShortArray halves,
                                 int mantissaBits, IntArray forward, IntArray backward, int count, int forwardSlots,
                                 int backwardSlots) {}

    /**
     * A decoder layer's decodes (one per format, in model order) and where each decoded projection's panels start
     * in the layer panels, {@code at[name]} = {forward, backward} (fp32 projections: none); both directions laid
     * out from slot 0 to {@code forwardSlots} and {@code backwardSlots}.
     */
    private record LayerBases(List<SegmentDecode> decodes, Map<String, int[]> at, int forwardSlots,
                              int backwardSlots) {}

    /** The decodes of the layer whose weights' names start with {@code prefix}. */
    private static LayerBases layerBases(Map<String, BaseWeight> frozen, String prefix,
                                         Map<Object, ShortArray> uploadedHalves) {
        Map<String, List<String>> groups = new LinkedHashMap<>();  // format → projections
        for (String name : PROJECTIONS) {
            BaseWeight w = frozen.get(weightName(prefix, name));
            String format = w instanceof Nf4Tensor q ? "nf4/" + q.blockSize()
                    : w instanceof HalfWeight h ? h.format().name() : null;
            if (format != null) groups.computeIfAbsent(format, f -> new ArrayList<>()).add(name);
        }
        List<SegmentDecode> decodes = new ArrayList<>();
        Map<String, int[]> at = new LinkedHashMap<>();
        int forwardSlots = 0, backwardSlots = 0;
        for (List<String> names : groups.values()) {
            List<BaseWeight> ws = names.stream().map(n -> frozen.get(weightName(prefix, n))).toList();
            SegmentDecode dc = segmentDecode(ws, forwardSlots, backwardSlots, uploadedHalves);
            decodes.add(dc);
            for (int i = 0; i < names.size(); i++) {
                at.put(names.get(i), new int[] {dc.forward.get(i * PanelSegments.FIELDS + PanelSegments.START),
                        dc.backward.get(i * PanelSegments.FIELDS + PanelSegments.START)});
            }
            forwardSlots += dc.forwardSlots;
            backwardSlots += dc.backwardSlots;
        }
        return new LayerBases(decodes, at, forwardSlots, backwardSlots);
    }

    /**
     * The decode of weights of one format, their panels from slots {@code forwardFrom} and {@code backwardFrom} on
     * (one 16-bit weight: its uploaded values, a tied lm_head's the embedding's; else the storage copied end to end).
     */
    private static SegmentDecode segmentDecode(List<BaseWeight> ws, int forwardFrom, int backwardFrom,
                                               Map<Object, ShortArray> uploadedHalves) {
        int count = ws.size();
        int[] fn = new int[count], fk = new int[count], bn = new int[count], bk = new int[count];
        int[] first = new int[count];
        int elements = 0;
        for (int i = 0; i < count; i++) {
            BaseWeight w = ws.get(i);
            fn[i] = w.rows();  // forward B = Wᵀ [in, out]: n = out, k = in
            fk[i] = w.cols();
            bn[i] = w.cols();  // backward B = W [out, in]: n = in, k = out
            bk[i] = w.rows();
            first[i] = elements;
            elements = Math.addExact(elements, Math.multiplyExact(w.rows(), w.cols()));
        }
        int[] forward = PanelSegments.table(fn, fk, first, forwardFrom);
        int[] backward = PanelSegments.table(bn, bk, first, backwardFrom);
        IntArray f = IntArray.fromArray(forward), b = IntArray.fromArray(backward);
        int fSlots = PanelSegments.end(forward) - forwardFrom, bSlots = PanelSegments.end(backward) - backwardFrom;
        if (ws.getFirst() instanceof Nf4Tensor q) {
            ByteArray codes = new ByteArray(elements / 2);
            FloatArray scales = new FloatArray(elements / q.blockSize());
            int c = 0, sc = 0;
            for (BaseWeight w : ws) {
                for (byte v : ((Nf4Tensor) w).packedCodes()) codes.set(c++, v);
                for (float v : ((Nf4Tensor) w).blockScales()) scales.set(sc++, v);
            }
            return new SegmentDecode(codes, scales, Integer.numberOfTrailingZeros(q.blockSize()), new ShortArray(1), 0,
                    f, b, count, fSlots, bSlots);
        }
        HalfWeight h = (HalfWeight) ws.getFirst();
        ShortArray halves;
        if (count == 1) {
            halves = halves(h, uploadedHalves);
        } else {
            halves = new ShortArray(elements);
            int e = 0;
            for (BaseWeight w : ws) {
                for (short v : ((HalfWeight) w).bits()) halves.set(e++, v);
            }
        }
        return new SegmentDecode(new ByteArray(1), new FloatArray(1), 0, halves, HalfDecode.mantissaBits(h.format()),
                f, b, count, fSlots, bSlots);
    }

    /** The frozen weight's name of a layer's projection. */
    private static String weightName(String prefix, String projection) {
        return prefix + (LoraSettings.ATTN_MODULES.contains(projection) ? "self_attn." : "mlp.") + projection
                + ".weight";
    }

    /** A 16-bit weight's values as a device array, one per array of bits (a tied lm_head is the embedding's). */
    private static ShortArray halves(HalfWeight h, Map<Object, ShortArray> uploaded) {
        return uploaded.computeIfAbsent(h.bits(), bits -> ShortArray.fromArray((short[]) bits));
    }

    /** An fp32 weight's buffer, uploaded once per array; any other weight widened once (an NF4 lm_head in chunks). */
    private static FloatArray dense(BaseWeight w, Map<Object, FloatArray> uploaded) {
        if (w instanceof DenseWeight d) {
            return uploaded.computeIfAbsent(d.data(), data -> FloatArray.fromArray((float[]) data));
        }
        return uploaded.computeIfAbsent(w, x -> FloatArray.fromArray(((BaseWeight) x).dequantize()));
    }

    /**
     * What the graphs read besides the layers' own buffers: sizes, placeholders, rope tables and the 16-bit
     * decode's power tables (each graph its own copy), and the attention and LoRA scratch and the layer panels, into
     * which a layer's graph decodes its NF4 or 16-bit bases first (shared by all graphs: they run one after another).
     */
    private record Common(IntArray sizes, FloatArray codebook, FloatArray noMask, FloatArray noBias, FloatArray cos,
                          FloatArray sin, FloatArray p, FloatArray ds, VectorFloat16 vBlocks, VectorFloat16 vCols,
                          VectorFloat16 kRows, VectorFloat16 qRows,
                          VectorFloat16 dOutRows, FloatArray dhLora, VectorFloat16 layerPanels,
                          VectorFloat16 noPanels, FloatArray bf16Powers,
                          FloatArray f16Powers) {
        /** The power-of-two table {@link HalfDecode} reads for a format, by its mantissa bits. */
        FloatArray powers(int mantissaBits) {
            return mantissaBits == HalfDecode.mantissaBits(HalfWeight.Format.BF16) ? bf16Powers : f16Powers;
        }
    }

    /** A decoder layer's frozen norms and projections and its activations (shared: see {@link Graphs}). */
    private record Layer(FloatArray inNorm, FloatArray postNorm, Map<String, Proj> proj, List<SegmentDecode> decodes,
                         Acts acts) {}

    /**
     * A layer's activations its backward reads; {@code kBlocks} is k by blocks of 16 key positions
     * ({@link AttentionKernels#keyValueBlocks}), made by the forward and read again by the backward's scores.
     */
    private record Acts(FloatArray inv1, FloatArray n, FloatArray q, FloatArray k, FloatArray v, FloatArray attn,
                        FloatArray lse, FloatArray h, FloatArray inv2, FloatArray m, FloatArray g, FloatArray u,
                        FloatArray a, VectorFloat16 kBlocks, Map<String, FloatArray> hLora) {}

    /**
     * y = layer(x), as {@code DecoderLayer.forward}, leaving on the device what its backward reads (the layer's
     * {@link Acts}, buffers every graph hands on to the backward graph). The residual adds cost no launch: h = o + x
     * is made by the post-attention norm, and the layer's output y is its MLP branch alone until whatever reads y
     * next (the next layer's input norm, or the final norm) adds h into it in place; so {@code residual}, when not
     * null, is the previous layer's h, which the input norm first adds into x.
     */
    private void layerForward(Stage f, Layer layer, FloatArray x, FloatArray residual, FloatArray y, Common cm) {
        int t = tokens, d = c.hiddenSize(), inter = c.intermediateSize(), hd = c.headDim(), half = hd / 2;
        int heads = c.numAttentionHeads(), kv = c.numKeyValueHeads(), rep = heads / kv;
        float eps = (float) c.rmsNormEps(), attnScale = (float) (1.0 / Math.sqrt(hd));
        Acts s = layer.acts;
        Map<String, Proj> proj = layer.proj;
        FloatArray cos = cm.cos, sin = cm.sin, p = cm.p;
        FloatArray res = residual != null ? residual : cm.noBias;
        int addResidual = residual != null ? 1 : 0;
        f.use(x, res, layer.inNorm, layer.postNorm, s.inv1, s.n, s.q, s.k, s.v, s.attn, s.lse, s.h, s.inv2, s.m,
                s.g, s.u, s.a, s.kBlocks, cos, sin, p);
        decodeBases(f, layer, 1, cm);
        f.add(g -> g.task(f.n("norm1"), RmsNormKernels::forward, x, res, layer.inNorm, s.n, s.inv1, t, d, eps,
                addResidual));
        projectForward(f, "q", proj.get("q_proj"), s.n, s.q, s.hLora.get("q_proj"), cm);
        projectForward(f, "k", proj.get("k_proj"), s.n, s.k, s.hLora.get("k_proj"), cm);
        projectForward(f, "v", proj.get("v_proj"), s.n, s.v, s.hLora.get("v_proj"), cm);
        f.add(g -> g.task(f.n("ropeQ"), RopeKernels::rotateHalves, s.q, cos, sin, seq, batch, heads, hd, half, 1f));
        f.add(g -> g.task(f.n("ropeK"), RopeKernels::rotateHalves, s.k, cos, sin, seq, batch, kv, hd, half, 1f));
        VectorFloat16 kb = s.kBlocks, vb = cm.vBlocks;
        int blocks = ceilDiv(seq, AttentionKernels.LANES), dBlocks = ceilDiv(hd, AttentionKernels.LANES);
        f.use(kb, vb);
        f.add(g -> g.task(f.n("keyValueBlocks"), AttentionKernels::keyValueBlocks, s.k, s.v, kb, vb, seq, kv, batch,
                hd, blocks, dBlocks));
        f.add(g -> g.task(f.n("attention"), AttentionKernels::forward, s.q, kb, vb, p, s.attn, s.lse, seq, kv,
                batch, rep, hd, attnScale, blocks, dBlocks));
        projectForward(f, "o", proj.get("o_proj"), s.attn, s.h, s.hLora.get("o_proj"), cm);
        f.add(g -> g.task(f.n("norm2"), RmsNormKernels::forward, s.h, x, layer.postNorm, s.m, s.inv2, t, d, eps, 1));
        projectForward(f, "gate", proj.get("gate_proj"), s.m, s.g, s.hLora.get("gate_proj"), cm);
        projectForward(f, "up", proj.get("up_proj"), s.m, s.u, s.hLora.get("up_proj"), cm);
        f.add(g -> g.task(f.n("swiglu"), SwiGluKernels::forward, s.g, s.u, s.a, t * inter));
        projectForward(f, "down", proj.get("down_proj"), s.a, y, s.hLora.get("down_proj"), cm);
    }

    /** y = x·Wᵀ (+ s·(x·Aᵀ)·Bᵀ), the LoRA low-rank h kept for backward. */
    private void projectForward(Stage st, String name, Proj p, FloatArray x, FloatArray y, FloatArray hLora,
                                Common cm) {
        int t = tokens;
        IntArray sizes = cm.sizes;
        FloatArray noMask = cm.noMask, noBias = cm.noBias;
        product(st, name, p, x, y, p.forward, p.forwardAt, p.out, p.in, 1, cm);
        if (p.rank > 0) {
            st.use(x, sizes, theta, hLora, noMask);
            int tokenBlocks = AdapterKernels.blocks(t, AdapterKernels.BLOCK);
            int rankPanels = AdapterKernels.blocks(p.rank, AdapterKernels.LANES);
            st.add(g -> g.task(st.n(name + "Down"), AdapterKernels::down, x, noMask, theta, hLora, sizes, tokenBlocks,
                    rankPanels, p.rank, p.in, p.aOffset));
            st.use(noBias);
            int outPanels = AdapterKernels.blocks(p.out, AdapterKernels.LANES);
            st.add(g -> g.task(st.n(name + "Up"), AdapterKernels::epilogue, y, hLora, theta, noBias, sizes,
                    outPanels, tokenBlocks, p.out, p.rank, p.scale, 0, p.bOffset, 1, p.rank));
        }
    }

    /** dx = dy·W (+ the LoRA branch's), and dA, dB accumulated into the flat gradients; dx null: no dx. */
    private void projectBackward(Stage st, String name, Proj p, FloatArray dyIn, FloatArray x, FloatArray dx,
                                 FloatArray hLora, Common cm) {
        if (dx != null) product(st, name, p, dyIn, dx, p.backward, p.backwardAt, p.in, p.out, 0, cm);
        adapterBackward(st, name, p, dyIn, x, dx, hLora, cm);
    }

    /**
     * The LoRA branch's backward, when p has one: dx += its input gradient (unless dx is null), dA and dB into the
     * flat gradients.
     */
    private void adapterBackward(Stage st, String name, Proj p, FloatArray dyIn, FloatArray x, FloatArray dx,
                                 FloatArray hLora, Common cm) {
        int t = tokens;
        IntArray sizes = cm.sizes;
        FloatArray noMask = cm.noMask, dhLora = cm.dhLora;
        if (p.rank > 0) {
            st.use(theta, grads, hLora, dhLora, noMask);
            int tokenBlocks = AdapterKernels.blocks(t, AdapterKernels.BLOCK);
            int rankPanels = AdapterKernels.blocks(p.rank, AdapterKernels.LANES);
            int outBlocks = AdapterKernels.blocks(p.out, AdapterKernels.BLOCK);
            int inBlocks = AdapterKernels.blocks(p.in, AdapterKernels.BLOCK);
            st.add(g -> g.task(st.n(name + "GradB"), AdapterKernels::gradB, dyIn, hLora, grads, sizes, outBlocks,
                    rankPanels, p.rank, p.out, p.scale, p.bOffset));
            st.add(g -> g.task(st.n(name + "GradH"), AdapterKernels::gradH, dyIn, theta, dhLora, sizes, tokenBlocks,
                    rankPanels, p.rank, p.out, p.scale, p.bOffset));
            st.add(g -> g.task(st.n(name + "GradA"), AdapterKernels::gradA, dhLora, x, noMask, grads, sizes, inBlocks,
                    rankPanels, p.rank, p.in, p.aOffset));
            if (dx == null) return;
            int inPanels = AdapterKernels.blocks(p.in, AdapterKernels.LANES);
            // dx += dh·A (no dropout on the device plan): the epilogue's product with W = Aᵀ
            st.use(cm.noBias);
            st.add(g -> g.task(st.n(name + "Dx"), AdapterKernels::epilogue, dx, dhLora, theta, cm.noBias, sizes,
                    inPanels, tokenBlocks, p.in, p.rank, 1f, 0, p.aOffset, p.in, 1));
        }
    }

    /**
     * c [T, n] = a [T, k] · B with B = Wᵀ ({@code transposed} 1, forward) or W (backward), on the CPU schedule
     * {@link Matmul#panels} (16-wide vector registers, k innermost: the same sums in the same order as the plain
     * loop), B's panels from Float16 {@code at} of {@code panels} (an NF4 or 16-bit base's: decoded there first,
     * {@link #decode}; the fused dequantize-in-matmul is twelve times slower at a batch's rows on PoCL).
     */
    private void product(Stage st, String name, Proj p, FloatArray a, FloatArray c, VectorFloat16 panels, int at,
                         int n, int k, int transposed, Common cm) {
        int nPanels = ceilDiv(n, Matmul.PANEL), mBlocks = ceilDiv(tokens, Matmul.PANEL_ROWS);
        VectorFloat16 none = cm.noPanels;
        IntArray sizes = cm.sizes;
        FloatArray noBias = cm.noBias;
        st.use(a, c, sizes, panels, none, noBias);
        st.add(g -> g.task(st.n(name), Matmul::panels, a, panels, noBias, none, none, c, sizes, nPanels, mBlocks, n,
                k, 1, 0, 0, at, 0));
    }

    /**
     * A layer's NF4 and 16-bit bases decoded into the layer panels, all the layer's Wᵀ ({@code transposed} 1, its
     * forward graph) or W panels (its backward graph), one launch per format ({@link SegmentDecode}).
     */
    private static void decodeBases(Stage st, Layer layer, int transposed, Common cm) {
        for (int i = 0; i < layer.decodes.size(); i++) {
            decode(st, "decode" + (i == 0 ? "" : String.valueOf(i)), layer.decodes.get(i), cm.layerPanels,
                    transposed, cm);
        }
    }

    /** The task that decodes {@code dc}'s Wᵀ ({@code transposed} 1) or W panels into {@code panels}. */
    private static void decode(Stage st, String name, SegmentDecode dc, VectorFloat16 panels, int transposed,
                               Common cm) {
        IntArray table = transposed == 1 ? dc.forward : dc.backward;
        int slots = transposed == 1 ? dc.forwardSlots : dc.backwardSlots, count = dc.count;
        FloatArray powers = cm.powers(dc.mantissaBits);
        st.use(dc.codes, dc.scales, cm.codebook, dc.halves, powers, table, panels);
        st.add(g -> g.task(st.n(name), PanelSegments::decode, dc.codes, dc.scales, cm.codebook, dc.halves, powers,
                table, panels, slots, count, transposed, dc.log2Block, dc.mantissaBits));
    }

    /**
     * c = a·W_p + a2·W_p2, the base gradients of two projections that read the same input (gate and up, k and v),
     * in one launch: the second product accumulates into the first's registers ({@link Matmul#panels}' second
     * operand), each W's panels where its layer's decode or packing put them.
     */
    private void productPair(Stage st, String name, Proj p, FloatArray a, Proj p2, FloatArray a2, FloatArray c,
                             Common cm) {
        if (p.in != p2.in) throw new IllegalStateException(name + ": a pair of products needs one output width");
        int n = p.in, nPanels = ceilDiv(n, Matmul.PANEL), mBlocks = ceilDiv(tokens, Matmul.PANEL_ROWS);
        VectorFloat16 b = p.backward, b2 = p2.backward;
        int at = p.backwardAt, at2 = p2.backwardAt;
        IntArray sizes = cm.sizes;
        VectorFloat16 none = cm.noPanels;
        st.use(a, a2, c, sizes, b, b2, none);
        st.add(g -> g.task(st.n(name), Matmul::panels, a, b, a2, b2, none, c, sizes, nPanels, mBlocks, n, p.out,
                p2.out, 1, 0, at, at2));
    }

    /**
     * A chunk's logits z = n·Wᵀ: on the panel schedule when the loss runs in one chunk (headProj: W packed once, or
     * kept 16-bit and decoded first, headDecode),
     * else the chunk kernel from the device's chunk row (headW); the training head, evaluation and forward share it.
     */
    private void headLogits(Stage st, Proj headProj, SegmentDecode headDecode, HeadWeight headW, FloatArray nF,
                            FloatArray z, IntArray chunk, Common cm) {
        if (headProj != null) {
            if (headDecode != null) decode(st, "logitsDecode", headDecode, headProj.forward, 1, cm);
            product(st, "logits", headProj, nF, z, headProj.forward, headProj.forwardAt, c.vocabSize(),
                    c.hiddenSize(), 1, cm);
        } else {
            int cr = chunkRows, d = c.hiddenSize(), t = tokens, v = c.vocabSize();
            st.use(headW.w, headW.halves, headW.powers);
            st.add(g -> g.task(st.n("logits"), CausalLmLossKernels::logits, nF, headW.w, headW.halves, headW.powers,
                    z, chunk, v, cr, d, t, headW.mantissaBits));
        }
    }

    /**
     * lm_head's W as the chunk kernels read it in place: fp32 ({@code mantissaBits} 0) or its 16-bit values with
     * {@link HalfDecode}'s table; the unused arrays are one-element placeholders.
     */
    private record HeadWeight(FloatArray w, ShortArray halves, FloatArray powers, int mantissaBits) {}

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    // ---------------------------------------------------------------- the step

    /**
     * Forward, loss and backward of one batch on the device, accumulating {@code lossScale · dloss/dθ} into the
     * device's gradients; returns the loss (transformers' causal-LM loss, NaN when no label counts).
     */
    public double forwardBackward(int[] inputIds, int[] labels, double lossScale) {
        if (inputIds.length != tokens || labels.length != tokens) {
            throw new IllegalArgumentException("the device plan takes batches of " + batch + "×" + seq + " tokens, got "
                    + inputIds.length + " ids and " + labels.length + " labels");
        }
        load(inputIds, labels);
        long counted = CausalLmLoss.counted(labels, batch, seq);
        scalars.set(0, counted == 0 ? 0f : (float) (lossScale / counted));
        for (int l = 0; l < c.numHiddenLayers(); l++) run("layer" + l + "Forward");
        run("head");
        for (int l = c.numHiddenLayers() - 1; l >= 0; l--) run("layer" + l + "Backward");
        return counted == 0 ? Double.NaN : total.get(0) / (double) counted;
    }

    /**
     * The loss of up to {@code batch} rows of {@code seq} tokens (transformers' causal-LM loss, NaN when no label
     * counts) by the forward graphs and the loss alone: no gradient, no change to the adapters or the gradients
     * accumulated so far. Fewer rows than the plan's batch are padded with rows whose labels are all -100.
     */
    public double loss(int[] inputIds, int[] labels) {
        if (inputIds.length != labels.length || inputIds.length % seq != 0 || inputIds.length > tokens) {
            throw new IllegalArgumentException("the device plan evaluates up to " + batch + " rows of " + seq
                    + " tokens, got " + inputIds.length + " ids and " + labels.length + " labels");
        }
        int[] ids = java.util.Arrays.copyOf(inputIds, tokens), lab = java.util.Arrays.copyOf(labels, tokens);
        java.util.Arrays.fill(lab, labels.length, tokens, CrossEntropy.IGNORE_INDEX);
        load(ids, lab);
        long counted = CausalLmLoss.counted(lab, batch, seq);
        for (int l = 0; l < c.numHiddenLayers(); l++) run("layer" + l + "Forward");
        run("evalHead");
        return counted == 0 ? Double.NaN : total.get(0) / (double) counted;
    }

    /**
     * The logits [rows · seq · vocab] of up to {@code batch} rows (fewer are padded on the device), by the forward
     * graphs; only on a plan made with forward outputs.
     */
    public float[] logits(int[] inputIds) {
        if (logitsOut == null) throw new IllegalStateException("this plan was made without forward outputs");
        if (inputIds.length % seq != 0 || inputIds.length > tokens) {
            throw new IllegalArgumentException("the device plan takes up to " + batch + " rows of " + seq
                    + " tokens, got " + inputIds.length + " ids");
        }
        int[] lab = new int[tokens];
        java.util.Arrays.fill(lab, CrossEntropy.IGNORE_INDEX);
        load(java.util.Arrays.copyOf(inputIds, tokens), lab);
        for (int l = 0; l < c.numHiddenLayers(); l++) run("layer" + l + "Forward");
        run("logitsHead");
        float[] out = new float[inputIds.length * c.vocabSize()];
        for (int i = 0; i < out.length; i++) out[i] = logitsOut.get(i);
        return out;
    }

    /**
     * The gradients accumulated on the device so far, one array per trainable tensor in
     * {@link LlamaForCausalLM#trainableParameters()} order (overwritten); only on a plan made with forward outputs.
     */
    public void gradientsToHost(List<float[]> out) {
        if (gradsOut == null) throw new IllegalStateException("this plan was made without forward outputs");
        run("gradsToHost");
        for (int i = 0; i < params.size(); i++) {
            Parameter p = params.get(i);
            for (int e = 0; e < p.host.length; e++) out.get(i)[e] = gradsOut.get(p.offset + e);
        }
    }

    /** The batch's ids and shifted targets into the arrays the next graphs upload, checked. */
    private void load(int[] inputIds, int[] labels) {
        for (int i = 0; i < tokens; i++) {
            if (inputIds[i] < 0 || inputIds[i] >= c.vocabSize()) {
                throw new IllegalArgumentException("input_ids[" + (i / seq) + ", " + (i % seq) + "] = " + inputIds[i]
                        + " is out of range [0, " + c.vocabSize() + ")");
            }
            int l = labels[i];
            if (l != CrossEntropy.IGNORE_INDEX && (l < 0 || l >= c.vocabSize())) {
                throw new IllegalArgumentException("labels[" + (i / seq) + ", " + (i % seq) + "] = " + l
                        + " is neither -100 nor in [0, " + c.vocabSize() + ")");
            }
            ids.set(i, inputIds[i]);
            targets.set(i, CausalLmLoss.target(labels, seq, i));
        }
    }

    /** Rows per batch (the plan's shape). */
    public int batch() {
        return batch;
    }

    /** Tokens per row (the plan's shape). */
    public int seq() {
        return seq;
    }

    /**
     * Clipping (when the plan's maxGradNorm is positive) and one AdamW step at learning rate {@code lr} over the
     * accumulated gradients, which are zeroed after; returns the global gradient norm before clipping.
     */
    public double step(double lr) {
        double norm = gradNorm();
        update(lr, steps + 1);
        return norm;
    }

    /** The global norm of the accumulated gradients (torch's clip_grad_norm_ total norm), measured on the device. */
    public double gradNorm() {
        run("gradNorm");
        return stats.get(0);
    }

    /**
     * After {@link #gradNorm}: the gradients clipped (when maxGradNorm &gt; 0) and AdamW's {@code stepCount}-th step
     * (1-based, its bias corrections) at learning rate {@code lr}; the gradients are zeroed after.
     */
    public void update(double lr, long stepCount) {
        steps = stepCount;
        OptimizerKernels.hyper(lr, opt.beta1(), opt.beta2(), opt.weightDecay(), stepCount, hyper);
        run("update");
    }

    /**
     * AdamW's moments to start from (e.g. a resumed run's), one pair of arrays per trainable tensor in
     * {@link LlamaForCausalLM#trainableParameters()} order; only before the first step.
     */
    public void setMoments(List<float[]> m, List<float[]> v) {
        if (setUp) {
            throw new IllegalStateException("the moments go to the device with the first step; it has run");
        }
        for (int i = 0; i < params.size(); i++) {
            Parameter p = params.get(i);
            for (int e = 0; e < p.host.length; e++) {
                moment1.set(p.offset + e, m.get(i)[e]);
                moment2.set(p.offset + e, v.get(i)[e]);
            }
        }
    }

    /** Copies the device's adapters into the model's live LoRA arrays (for saving, merging or the JVM path). */
    public void adaptersToHost() {
        stateToHost(null, null);
    }

    /**
     * Copies the device's adapters into the model's live LoRA arrays and, when the lists are not null, AdamW's
     * moments into them (one pair of arrays per trainable tensor, as {@link #setMoments}).
     */
    public void stateToHost(List<float[]> m, List<float[]> v) {
        run("toHost");
        for (int i = 0; i < params.size(); i++) {
            Parameter p = params.get(i);
            for (int e = 0; e < p.host.length; e++) {
                p.host[e] = thetaOut.get(p.offset + e);
                if (m != null) m.get(i)[e] = moment1Out.get(p.offset + e);
                if (v != null) v.get(i)[e] = moment2Out.get(p.offset + e);
            }
        }
    }

    /**
     * Device memory of the plan's buffers, by TornadoVM's profiler: what each graph allocated on its last profiled
     * run, summed over the graphs (the shared buffers once, in setup; each graph its own copy of what it does not
     * share); -1 before any.
     */
    public long deviceBytes() {
        return graphBytes.isEmpty() ? -1 : graphBytes.values().stream().mapToLong(Long::longValue).sum();
    }

    /** Steps taken (AdamW's t). */
    public long steps() {
        return steps;
    }

    /** Bytes in and out and kernel time per stage since the last call (zeros without profiling), then resets. */
    public StepProfile takeProfile() {
        StepProfile s = new StepProfile(copyIn, copyOut, launches, Map.copyOf(kernelNanos));
        launches = 0;
        copyIn = 0;
        copyOut = 0;
        kernelNanos.clear();
        return s;
    }


    private void run(String graph) {
        if (!setUp) {
            setUp = true;
            TornadoExecutionResult r = plan.withGraph(graphIndex.get("setup")).execute();
            if (profile) graphBytes.put("setup", r.getProfilerResult().getTotalDeviceMemoryUsage());
        }
        TornadoExecutionResult r = plan.withGraph(graphIndex.get(graph)).execute();
        launches += graphTasks.get(graph);
        if (profile) {
            TornadoProfilerResult pr = r.getProfilerResult();
            copyIn += pr.getTotalBytesCopyIn();
            copyOut += pr.getTotalBytesCopyOut();
            kernelNanos.merge(graph, pr.getDeviceKernelTime(), Long::sum);
            graphBytes.put(graph, pr.getTotalDeviceMemoryUsage());
            if (taskNanos != null) addTaskTimes(pr.getProfileLog(), taskNanos);
        }
    }

    /**
     * Keeps (or stops keeping) each task's kernel time from TornadoVM's profile log, for {@link #takeTaskProfile()};
     * off by default (the log is parsed after every graph). Needs the plan made with {@code profile}.
     */
    public void profileTasks(boolean on) {
        taskNanos = on ? new LinkedHashMap<>() : null;
    }

    /** Kernel nanoseconds per task ({@code graph.task}) since the last call, then resets; empty when not kept. */
    public Map<String, Long> takeTaskProfile() {
        if (taskNanos == null) return Map.of();
        Map<String, Long> out = new LinkedHashMap<>(taskNanos);
        taskNanos.clear();
        return out;
    }

    /** Adds each task's TASK_KERNEL_TIME from TornadoVM's JSON profile log ({graph: {graph.task: {...}}}). */
    private static void addTaskTimes(String log, Map<String, Long> out) {
        try {
            com.fasterxml.jackson.databind.JsonNode root = new com.fasterxml.jackson.databind.ObjectMapper().readTree(log);
            root.fields().forEachRemaining(g -> g.getValue().fields().forEachRemaining(t -> {
                com.fasterxml.jackson.databind.JsonNode kernel = t.getValue().get("TASK_KERNEL_TIME");
                if (kernel != null) out.merge(t.getKey(), kernel.asLong(), Long::sum);
            }));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("TornadoVM's profile log is not JSON", e);
        }
    }

    @Override
    public void close() {
        Closing.close(plan);
    }

    // ---------------------------------------------------------------- graphs and their stages

    /**
     * The plan's task graphs. TornadoVM hands a persisted buffer only from the graph that ran last to the next one,
     * so every graph consumes and persists every shared buffer (θ, the gradients, the residual stream, the layers'
     * activations, the scratch); the rest (frozen weights, per-graph constants) lives in the graphs that use it.
     */
    private final class Graphs {
        private final List<Graph> list = new ArrayList<>();
        /** Insertion-ordered, by identity: the buffers every graph holds. */
        private final Map<Object, Boolean> shared = new IdentityHashMap<>();

        /** Buffers every graph holds from now on (scratch, activations, θ, ...): allocated once, by setup. */
        void share(Object... buffers) {
            for (Object o : buffers) shared.put(o, true);
        }

        Graph graph(String name) {
            Graph g = new Graph(name, shared);
            graphIndex.put(name, list.size());
            list.add(g);
            return g;
        }

        List<ImmutableTaskGraph> build() {
            List<ImmutableTaskGraph> out = new ArrayList<>();
            for (Graph g : list) {
                out.add(g.build());
                graphTasks.put(g.name, g.launches);
            }
            return out;
        }
    }

    /**
     * One task graph: the buffers its tasks use (the shared ones consumed from the graph that ran before and
     * persisted again; the others brought here on the first run), what it uploads every run, what it downloads.
     */
    private static final class Graph {
        final String name;
        final Map<Object, Boolean> shared;
        final Map<Object, Boolean> seen = new IdentityHashMap<>();
        final List<Object> first = new ArrayList<>(), every = new ArrayList<>(), down = new ArrayList<>();
        final List<Consumer<TaskGraph>> tasks = new ArrayList<>();
        /** The graph that brings the shared buffers to the device, run once before all others. */
        boolean setup;
        /** Tasks in the built graph. */
        int launches;

        Graph(String name, Map<Object, Boolean> shared) {
            this.name = name;
            this.shared = shared;
        }

        /** A named part of the graph; its task names carry the name. */
        Stage stage(String stageName) {
            return new Stage(stageName, this);
        }

        void use(Object o) {
            if (seen.containsKey(o)) return;
            seen.put(o, true);
            if (!shared.containsKey(o)) first.add(o);
        }

        ImmutableTaskGraph build() {
            TaskGraph g = new TaskGraph(name);
            Object[] all = shared.keySet().toArray();
            // The setup graph's tasks name every shared buffer (TornadoVM allocates and uploads only the buffers a
            // task names); the other graphs consume and persist them all, named by their tasks or not: a graph
            // hands on the device buffers it consumed whether its tasks read them or not, so no task is spent
            // on the buffers a graph does not use.
            List<FloatArray> arrays = new ArrayList<>();
            List<VectorFloat16> panels = new ArrayList<>();
            for (Object o : setup ? all : new Object[0]) {
                if (o instanceof VectorFloat16 v) panels.add(v);
                else arrays.add((FloatArray) o);
            }
            // distinct placeholders: an array named twice in one task makes the task depend on itself, and
            // TornadoVM's graph scheduler then never finishes
            while (arrays.size() % PlanKernels.ARITY != 0) {
                FloatArray pad = new FloatArray(1);
                arrays.add(pad);
                first.add(pad);
            }
            if (setup) {
                g.transferToDevice(DataTransferMode.FIRST_EXECUTION, all);
            } else {
                g.consumeFromDevice(all);
            }
            if (!first.isEmpty()) g.transferToDevice(DataTransferMode.FIRST_EXECUTION, first.toArray());
            if (!every.isEmpty()) g.transferToDevice(DataTransferMode.EVERY_EXECUTION, every.toArray());
            tasks.forEach(t -> t.accept(g));
            int keeps = 0;
            for (int i = 0; i < arrays.size(); i += PlanKernels.ARITY) {
                List<FloatArray> k = arrays.subList(i, i + PlanKernels.ARITY);
                g.task("keep" + keeps++, PlanKernels::keep, k.get(0), k.get(1), k.get(2), k.get(3), k.get(4),
                        k.get(5), k.get(6), k.get(7));
            }
            for (VectorFloat16 v : panels) g.task("keep" + keeps++, PlanKernels::keepPanels, v);
            launches = tasks.size() + keeps;
            if (!down.isEmpty()) g.transferToHost(DataTransferMode.EVERY_EXECUTION, down.toArray());
            g.persistOnDevice(all);
            return g.snapshot();
        }
    }

    /** A stage of a graph (embed, a layer's forward, ...): a prefix for its task names and the graph's buffers. */
    private static final class Stage {
        final String name;
        final Graph graph;

        Stage(String name, Graph graph) {
            this.name = name;
            this.graph = graph;
        }

        /** The task name {@code task} within this stage. */
        String n(String task) {
            return name + "_" + task;
        }

        Stage use(Object... buffers) {
            for (Object o : buffers) graph.use(o);
            return this;
        }

        /** Buffers the host writes before every run. */
        Stage everyStep(Object... buffers) {
            for (Object o : buffers) {
                graph.seen.put(o, true);
                graph.every.add(o);
            }
            return this;
        }

        Stage download(Object... buffers) {
            use(buffers);
            graph.down.addAll(List.of(buffers));
            return this;
        }

        Stage add(Consumer<TaskGraph> task) {
            graph.tasks.add(task);
            return this;
        }
    }
}
