package dev.tornadolora.nn;

import dev.tornadolora.kernels.Adapters;
import dev.tornadolora.device.Device;
import dev.tornadolora.kernels.LayerKernels;
import dev.tornadolora.kernels.LoraBackend;
import dev.tornadolora.tensor.Nf4Tensor;
import dev.tornadolora.tensor.BaseWeight;
import dev.tornadolora.tensor.DenseWeight;
import dev.tornadolora.tensor.HeapCheck;
import dev.tornadolora.tensor.NonFiniteException;
import dev.tornadolora.tensor.Shapes;
import dev.tornadolora.tensor.Tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * LoRA linear layer as introduced in <a href="https://arxiv.org/abs/2106.09685">LoRA: Low-Rank Adaptation of
 * Large Language Models</a>, with torchtune's {@code LoRALinear} semantics.
 *
 * <p>LoRA perturbs a frozen linear projection W [out, in] by a low-rank product B·A, A [rank, in], B [out, rank]:
 * <pre>
 *   y = x·Wᵀ + b + (alpha / rank) · (dropout(x) · Aᵀ) · Bᵀ
 * </pre>
 * Dropout (inverted: kept values scaled by 1/(1-p)) acts on the LoRA branch only, and only in training mode.
 * Only A and B, and the variant's parameters ({@link #adapterParams()}), receive gradients; W and b are frozen.
 * The scale s is alpha/rank, or rsLoRA's alpha/√rank ({@code use_rslora}); the {@link AdapterVariant} is plain
 * LoRA or {@link DoRA} (a trained magnitude per output row, torchtune's {@code DoRALinear}). With {@code quantizeBase} the
 * base weight is kept only as NF4 (QLoRA), dequantized tile by tile inside the kernels.
 *
 * <p>Parameters carry torchtune's names: {@code weight}, {@code bias}, {@code lora_a.weight},
 * {@code lora_b.weight}. The computation runs on one {@link LayerKernels} binding of a {@link LoraBackend}
 * (a {@link Device}'s, given with {@link #to} or the builder; the scalar reference until then): it owns
 * what the backend derives from the frozen base and bias (packed panels, device buffers) and is rebound when they
 * or the device change; the adapters go to it with every call. {@link #close} frees the binding.
 *
 * <p>Threads: {@code forward} may be called from many threads at once, in eval and in training mode. The layer
 * keeps, per thread, the activations of that thread's last forward for its {@code backward} (as autograd would),
 * and backward passes accumulate into the shared gradients one at a time, so concurrent forward/backward pairs
 * on different threads give the same dx as run alone and gradients that sum theirs (in some order). With dropout,
 * the masks then depend on the threads' interleaving. Changing parameters or settings ({@code load},
 * {@code setBase}, an optimizer step, {@code train}/{@code eval}, {@code to}) must not overlap any forward or
 * backward.
 *
 * <p>Numerical guards: {@link #setCheckFinite} checks inputs, parameters, outputs and gradients for NaN and infinity and names the first offending tensor
 * and element ({@link NonFiniteException}); off, it costs one branch per call.
 */
public final class LoRALinear implements Module, AutoCloseable {

    public static final List<String> ADAPTER_PARAMS = List.of("lora_a.weight", "lora_b.weight");
    /** The NF4 arguments of torchao's {@code to_nf4}, accepted with {@code quantizeBase}. */
    public static final List<String> QUANTIZATION_KWARGS = List.of("block_size", "scaler_block_size");

    private final int inDim;
    private final int outDim;
    private final int rank;
    private final float alpha;
    /** rsLoRA's scale rule: alpha/√rank instead of alpha/rank (PEFT's {@code use_rslora}). */
    private final boolean rslora;
    private final float dropout;
    private final boolean useBias;
    private final boolean quantizeBase;
    private final Map<String, Object> quantizationKwargs;

    private BaseWeight weight;
    private float[] bias;
    private float[] loraA;
    private float[] loraB;
    private float[] gradA;
    private float[] gradB;
    /** What the layer computes beyond LoRA: {@link AdapterVariant#LORA} (nothing) or {@link DoRA}. */
    private AdapterVariant variant;

    private boolean training = true;
    private boolean disabled;
    /** Draws dropout masks; with {@link #dropoutDraws} it is the whole dropout state (see {@link #resumeDropout}). */
    private SplittableRandom dropoutRng;
    private long dropoutDraws;
    private final long seed;
    /** The backend (the reference until {@link #to}) and the binding of base and bias there. */
    private final Binding binding = new Binding();
    /** Each thread's last forward; replaced (forgetting them all) when the adapters get new storage. */
    private volatile ThreadLocal<Saved> saved = new ThreadLocal<>();
    /** Guards what concurrent calls share: the gradients backward accumulates into and the dropout generator. */
    private final Object stateLock = new Object();
    private boolean checkFinite;

    /** The activations autograd would keep between forward and backward, and the binding that holds them. */
    private record Saved(Tensor x, float[] dropMultiplier, Object state, LayerKernels by, boolean adapters) {}

    /** torchtune's constructor; the weights are initialised from seed 0 (see {@link #builder}). */
    public LoRALinear(int inDim, int outDim, int rank, float alpha, float dropout, boolean useBias,
                      boolean quantizeBase, Map<String, ?> quantizationKwargs) {
        this(inDim, outDim, rank, alpha, dropout, useBias, quantizeBase, quantizationKwargs, 0L);
    }

    public LoRALinear(int inDim, int outDim, int rank, float alpha) {
        this(inDim, outDim, rank, alpha, 0f, false, false, Map.of());
    }

    private LoRALinear(int inDim, int outDim, int rank, float alpha, float dropout, boolean useBias,
                       boolean quantizeBase, Map<String, ?> quantizationKwargs, long seed) {
        this(inDim, outDim, rank, alpha, dropout, useBias, quantizeBase, quantizationKwargs, seed, null, false, false);
    }

    private LoRALinear(int inDim, int outDim, int rank, float alpha, float dropout, boolean useBias,
                       boolean quantizeBase, Map<String, ?> quantizationKwargs, long seed, BaseWeight givenBase,
                       boolean rslora, boolean dora) {
        if (inDim <= 0 || outDim <= 0) {
            throw new IllegalArgumentException("in_dim and out_dim must be positive, got in_dim=" + inDim + ", out_dim=" + outDim);
        }
        if (rank <= 0) {
            throw new IllegalArgumentException("rank must be positive, got " + rank);
        }
        if (!Float.isFinite(alpha)) {
            throw new IllegalArgumentException("alpha must be finite, got " + alpha);
        }
        if (!(dropout >= 0f && dropout < 1f)) {
            throw new IllegalArgumentException("dropout must be in [0, 1), got " + dropout);
        }
        // The fp32 base the layer starts from (quantized after, when asked) and the adapters with their gradients.
        HeapCheck.require(HeapCheck.sum(HeapCheck.product(inDim, outDim, 4), HeapCheck.product(rank, (long) inDim + outDim, 8)),
                "a LoRA layer [" + outDim + ", " + inDim + "] of rank " + rank);
        Map<String, Object> kwargs = quantizationKwargs == null ? Map.of() : new LinkedHashMap<>(quantizationKwargs);
        if (!quantizeBase && kwargs.values().stream().anyMatch(LoRALinear::truthy)) {
            // torchtune raises ValueError with this text.
            throw new IllegalArgumentException(
                    "quantize_base is False, but received the following quantization arguments: " + kwargs);
        }
        this.inDim = inDim;
        this.outDim = outDim;
        this.rank = rank;
        this.alpha = alpha;
        this.rslora = rslora;
        this.variant = dora ? new DoRA(outDim) : AdapterVariant.LORA;
        this.dropout = dropout;
        this.useBias = useBias;
        this.quantizeBase = quantizeBase;
        if (quantizeBase) {
            for (String key : kwargs.keySet()) {
                if (!QUANTIZATION_KWARGS.contains(key)) {
                    throw new IllegalArgumentException("unknown quantization argument '" + key
                            + "'; expected one of " + QUANTIZATION_KWARGS);
                }
            }
        }
        this.quantizationKwargs = Map.copyOf(kwargs);
        this.seed = seed;
        this.dropoutRng = newDropoutRng(seed, 0);
        initialize(new SplittableRandom(seed), givenBase);
    }

    /**
     * torchtune's initialisation. The base as {@code nn.Linear}: weight and bias ~ U(±1/√in). {@code lora_a}:
     * kaiming-uniform with a = √5, which is U(±1/√in) as well. {@code lora_b}: zeros, so the layer starts equal
     * to its base.
     */
    private void initialize(SplittableRandom rng, BaseWeight givenBase) {
        float bound = (float) (1.0 / Math.sqrt(inDim));
        if (givenBase == null) {
            float[] w = uniform(rng, Shapes.numel(outDim, inDim), bound);
            weight = quantizeBase ? quantize(w) : new DenseWeight(outDim, inDim, w);
        } else {
            setBase(quantizeBase && !(givenBase instanceof Nf4Tensor) ? quantize(givenBase.dequantize()) : givenBase);
        }
        bias = useBias ? uniform(rng, outDim, bound) : null;
        initializeAdapters(rng);
        variant.initialize(this);
    }

    /**
     * Re-initialises A and B (torchtune's {@code initialize_parameters}) and the variant's parameters from them
     * (DoRA's magnitude: the row norms); the base stays as it is.
     */
    public void initializeParameters() {
        initializeAdapters(new SplittableRandom(seed).split().split());
        variant.initialize(this);
    }

    private void initializeAdapters(SplittableRandom rng) {
        loraA = uniform(rng, Shapes.numel(rank, inDim), (float) (1.0 / Math.sqrt(inDim)));
        loraB = new float[Shapes.numel(outDim, rank)];
        gradA = new float[loraA.length];
        gradB = new float[loraB.length];
    }

    /** The NF4 base of QLoRA: only the quantized record is kept, the fp32 weight is dropped. */
    private BaseWeight quantize(float[] w) {
        return Nf4Tensor.quantize(w, outDim, inDim,
                intKwarg("block_size", Nf4Tensor.DEFAULT_BLOCK_SIZE),
                intKwarg("scaler_block_size", Nf4Tensor.DEFAULT_SCALER_BLOCK_SIZE));
    }

    private int intKwarg(String key, int dflt) {
        Object v = quantizationKwargs.get(key);
        if (v == null) return dflt;
        if (v instanceof Number n && n.doubleValue() == n.intValue()) return n.intValue();
        throw new IllegalArgumentException("quantization argument " + key + " must be an integer, got " + v);
    }

    private static float[] uniform(SplittableRandom rng, int n, float bound) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) ((rng.nextDouble() * 2 - 1) * bound);
        }
        return a;
    }

    private static boolean truthy(Object v) {
        return v != null && !(v instanceof Boolean b && !b) && !(v instanceof Number n && n.doubleValue() == 0)
                && !(v instanceof String s && s.isEmpty());
    }

    // ---------------------------------------------------------------- computation

    /** y = x·Wᵀ + b + (alpha/rank)·(dropout(x)·Aᵀ)·Bᵀ for x of shape (..., in); returns (..., out). */
    @Override
    public Tensor forward(Tensor x) {
        int[] shape = x.shape();
        Shapes.requireLast("x", shape, inDim);
        int tokens = Shapes.leadingRows(shape);
        float[] m = training && dropout > 0 && !disabled ? dropMultiplier(tokens * inDim) : null;
        return forward(x, m);
    }

    /**
     * Forward with a given dropout multiplier (0 or 1/(1-p) per element of x), e.g. a mask stored in a
     * fixture; null for none.
     */
    public Tensor forward(Tensor x, float[] dropMultiplier) {
        int[] shape = x.shape();
        Shapes.requireLast("x", shape, inDim);
        int tokens = Shapes.leadingRows(shape);
        if (dropMultiplier != null && dropMultiplier.length != x.numel()) {
            throw new IllegalArgumentException("dropout mask: expected " + x.numel() + " values but got " + dropMultiplier.length);
        }
        boolean adapters = !disabled;
        if (checkFinite) {
            requireFiniteParameters(x, adapters);
        }
        float[] y = new float[tokens * outDim];
        LayerKernels k = bound();
        Object state = (adapters ? variant : AdapterVariant.LORA).forward(this, k, x.data(), dropMultiplier, tokens,
                adapters ? new Adapters(loraA, loraB) : null, y);
        saved.set(new Saved(x, dropMultiplier, state, k, adapters));
        Tensor out = new Tensor(Shapes.withLast(shape, outDim), y);
        if (checkFinite) {
            NonFiniteException.requireFinite("y", out);
        }
        return out;
    }

    private void requireFiniteParameters(Tensor x, boolean adapters) {
        NonFiniteException.requireFinite("x", x);
        if (bias != null) {
            NonFiniteException.requireFinite("bias", new int[] {outDim}, bias);
        }
        if (adapters) {
            NonFiniteException.requireFinite("lora_a.weight", new int[] {rank, inDim}, loraA);
            NonFiniteException.requireFinite("lora_b.weight", new int[] {outDim, rank}, loraB);
            for (Parameter p : variant.parameters()) NonFiniteException.requireFinite(p.name(), p.shape(), p.data());
        }
    }

    /**
     * Backward of the last forward: returns dx (..., in) and accumulates the gradients of {@code lora_a.weight}
     * and {@code lora_b.weight} (none when the adapters were disabled). The base receives no gradient.
     */
    @Override
    public Tensor backward(Tensor dy) {
        Saved s = saved.get();
        if (s == null) {
            throw new IllegalStateException("backward called before forward on this thread (a layer keeps each"
                    + " thread's last forward for that thread's backward)");
        }
        Shapes.requireEqual("dy", dy.shape(), Shapes.withLast(s.x.shape(), outDim));
        if (checkFinite) {
            NonFiniteException.requireFinite("dy", dy);
        }
        if (!binding.isCurrent(s.by)) {
            throw new IllegalStateException("backward after the layer was rebound (to(), load(\"weight\"/\"bias\"),"
                    + " setBase) since its forward: run the forward again");
        }
        float[] dx = new float[s.x.numel()];
        synchronized (stateLock) {
            (s.adapters ? variant : AdapterVariant.LORA).backward(this, s.by, s.state, dy.data(), dx,
                    s.adapters ? new Adapters(loraA, loraB) : null, s.adapters ? new Adapters(gradA, gradB) : null);
            if (checkFinite && s.adapters) {
                NonFiniteException.requireFinite("lora_a.weight.grad", new int[] {rank, inDim}, gradA);
                NonFiniteException.requireFinite("lora_b.weight.grad", new int[] {outDim, rank}, gradB);
                for (Parameter p : variant.parameters()) {
                    NonFiniteException.requireFinite(p.name() + ".grad", p.shape(), p.grad());
                }
            }
        }
        Tensor out = new Tensor(s.x.shape(), dx);
        if (checkFinite) {
            NonFiniteException.requireFinite("dx", out);
        }
        return out;
    }

    @Override
    public void releaseActivations() {
        saved.remove();
    }

    /**
     * Checks inputs, parameters (adapters and bias), outputs and gradients of every later forward and backward
     * for NaN and infinity, failing with a {@link NonFiniteException} that names the first offending tensor and
     * element. Off by default; the check reads each tensor once.
     */
    public LoRALinear setCheckFinite(boolean check) {
        this.checkFinite = check;
        return this;
    }

    public boolean checksFinite() {
        return checkFinite;
    }

    /**
     * The dropout multiplier (0 or 1/(1-p) per element of x) that this thread's last forward applied to the LoRA
     * branch, or null when it applied none; a copy.
     */
    public float[] lastDropoutMultiplier() {
        Saved s = saved.get();
        return s == null || s.dropMultiplier == null ? null : s.dropMultiplier.clone();
    }

    private float[] dropMultiplier(int n) {
        float keep = 1f / (1f - dropout);
        float[] m = new float[n];
        synchronized (stateLock) {
            for (int i = 0; i < n; ) {
                if (dropoutDraws > 0 && dropoutDraws % DROPOUT_CHUNK == 0) {
                    dropoutRng = newDropoutRng(seed, dropoutDraws / DROPOUT_CHUNK);
                }
                int end = (int) Math.min(n, i + (DROPOUT_CHUNK - dropoutDraws % DROPOUT_CHUNK));
                for (int j = i; j < end; j++) {
                    m[j] = dropoutRng.nextDouble() < dropout ? 0f : keep;
                }
                dropoutDraws += end - i;
                i = end;
            }
        }
        return m;
    }

    /**
     * Dropout numbers come in chunks of 2^20, chunk c from its own generator seeded by (seed, c): a resumed run
     * reaches draw k by seeding chunk k / 2^20 and stepping at most 2^20 - 1 times, however large k is.
     */
    static final long DROPOUT_CHUNK = 1L << 20;

    private static SplittableRandom newDropoutRng(long seed, long chunk) {
        return chunk == 0 ? new SplittableRandom(seed).split()
                : new SplittableRandom(seed ^ (0xD1B54A32D192ED03L * chunk)).split();
    }

    /** How many dropout draws (one per element of x in a training forward) the layer has made since it was built. */
    public long dropoutDraws() {
        synchronized (stateLock) {
            return dropoutDraws;
        }
    }

    /**
     * Puts the dropout generator where a layer built with the same seed stands after {@code draws} draws, so that a
     * resumed training run draws the masks the uninterrupted run would have drawn.
     */
    public void resumeDropout(long draws) {
        if (draws < 0) {
            throw new IllegalArgumentException("dropout draws must be non-negative, got " + draws);
        }
        synchronized (stateLock) {
            dropoutRng = newDropoutRng(seed, draws / DROPOUT_CHUNK);
            for (long i = draws / DROPOUT_CHUNK * DROPOUT_CHUNK; i < draws; i++) {
                dropoutRng.nextDouble();
            }
            dropoutDraws = draws;
        }
    }

    // ---------------------------------------------------------------- parameters

    /** torchtune's {@code adapter_params()}: the names of the trainable parameters. */
    public List<String> adapterParams() {
        return parameters().stream().map(Parameter::name).toList();
    }

    /**
     * The trainable parameters for an optimizer: {@code lora_a.weight}, {@code lora_b.weight} and the variant's
     * (DoRA's {@code magnitude}), live arrays.
     */
    @Override
    public List<Parameter> parameters() {
        List<Parameter> ps = new java.util.ArrayList<>(List.of(
                new Parameter("lora_a.weight", new int[] {rank, inDim}, loraA, gradA),
                new Parameter("lora_b.weight", new int[] {outDim, rank}, loraB, gradB)));
        ps.addAll(variant.parameters());
        return ps;
    }

    /** Parameters by torchtune name; {@code weight} is the dequantized fp32 base when the base is NF4. */
    public Map<String, Tensor> stateDict() {
        Map<String, Tensor> sd = new LinkedHashMap<>();
        sd.put("weight", new Tensor(new int[] {outDim, inDim}, weight.dequantize()));
        if (bias != null) {
            sd.put("bias", new Tensor(new int[] {outDim}, bias.clone()));
        }
        sd.putAll(adapterStateDict());
        return sd;
    }

    /**
     * The adapters, copied: {@code lora_a.weight} [rank, in], {@code lora_b.weight} [out, rank] and the variant's
     * ({@code magnitude} [out] for DoRA).
     */
    public Map<String, Tensor> adapterStateDict() {
        Map<String, Tensor> sd = new LinkedHashMap<>();
        for (Parameter p : parameters()) sd.put(p.name(), new Tensor(p.shape(), p.data().clone()));
        return sd;
    }

    /** Gradients of the adapters by parameter name (live arrays, accumulated by backward). */
    public Map<String, Tensor> adapterGradients() {
        Map<String, Tensor> g = new LinkedHashMap<>();
        for (Parameter p : parameters()) g.put(p.name(), new Tensor(p.shape(), p.grad()));
        return g;
    }

    /**
     * Copies a parameter in by name, checking its shape: {@code weight}, {@code bias}, {@code lora_a.weight},
     * {@code lora_b.weight}.
     */
    public void load(String name, Tensor value) {
        switch (name) {
            case "weight" -> {
                Shapes.requireEqual("weight", value.shape(), outDim, inDim);
                weight = quantizeBase ? quantize(value.data().clone()) : new DenseWeight(outDim, inDim, value.data().clone());
                unbind();
            }
            case "bias" -> {
                if (!useBias) {
                    throw new IllegalArgumentException("bias: this layer was built without bias (use_bias=false)");
                }
                Shapes.requireEqual("bias", value.shape(), outDim);
                bias = value.data().clone();
                unbind();
            }
            case "lora_a.weight" -> {
                Shapes.requireEqual("lora_a.weight", value.shape(), rank, inDim);
                System.arraycopy(value.data(), 0, loraA, 0, loraA.length);
            }
            case "lora_b.weight" -> {
                Shapes.requireEqual("lora_b.weight", value.shape(), outDim, rank);
                System.arraycopy(value.data(), 0, loraB, 0, loraB.length);
            }
            default -> {
                Parameter p = variant.parameters().stream().filter(q -> q.name().equals(name)).findFirst()
                        .orElseThrow(() -> new IllegalArgumentException("unknown parameter '" + name
                                + "'; expected one of weight, bias, " + String.join(", ", adapterParams())));
                Shapes.requireEqual(name, value.shape(), p.shape());
                System.arraycopy(value.data(), 0, p.data(), 0, p.numel());
            }
        }
    }

    /** Replaces the base weight (e.g. an NF4 record read from a checkpoint); its shape must be [out, in]. */
    public void setBase(BaseWeight base) {
        if (base.rows() != outDim || base.cols() != inDim) {
            throw new IllegalArgumentException("weight: expected shape " + Shapes.format(outDim, inDim)
                    + " but got " + Shapes.format(base.rows(), base.cols()));
        }
        this.weight = base;
        unbind();
    }

    /** Zeroes the adapter gradients. */
    public void zeroGrad() {
        synchronized (stateLock) {
            java.util.Arrays.fill(gradA, 0f);
            java.util.Arrays.fill(gradB, 0f);
            variant.zeroGrad();
        }
    }

    /**
     * torchtune's {@code to_empty}: gives the adapters new, uninitialised storage for {@code device} without
     * copying, and leaves the base untouched. The JVM cannot hand out uninitialised arrays, so the new storage
     * reads as zeros; call {@link #initializeParameters()} to fill it.
     */
    public void toEmpty(Device device) {
        LoraBackend k = device.backend();
        loraA = new float[loraA.length];
        loraB = new float[loraB.length];
        gradA = new float[gradA.length];
        gradB = new float[gradB.length];
        variant = variant.fresh(this);
        backend(k);
        saved = new ThreadLocal<>();
    }

    // ---------------------------------------------------------------- modes and accessors

    @Override
    public LoRALinear train(boolean mode) {
        training = mode;
        return this;
    }

    public LoRALinear eval() {
        return train(false);
    }

    public boolean isTraining() {
        return training;
    }

    /** torchtune's {@code disabled}: when true, forward returns the base output alone. */
    public void setDisabled(boolean disabled) {
        this.disabled = disabled;
    }

    public boolean isDisabled() {
        return disabled;
    }

    /** Moves the layer to a device (its projection backend); the next forward binds it there. */
    public LoRALinear to(Device device) {
        return backend(device.backend());
    }

    /** Runs the layer on this backend from the next forward on (the old binding is closed). */
    public LoRALinear backend(LoraBackend b) {
        binding.setBackend(b);
        return this;
    }

    /** The backend: the reference until {@link #to} or {@link #backend(LoraBackend)} set one. */
    public LoraBackend backend() {
        return binding.backend();
    }

    /** The binding of this layer's base and bias on its backend, made when missing. */
    public LayerKernels bound() {
        return binding.bound(b -> b.bind(weight, bias, rank, scale()));
    }

    private void unbind() {
        binding.unbind();
    }

    /** Frees the binding (device buffers, packed weights); a later forward binds again. */
    @Override
    public void close() {
        unbind();
    }

    public int inDim() { return inDim; }
    public int outDim() { return outDim; }
    public int rank() { return rank; }
    /** The alpha the layer was built with (with rsLoRA too: the scale rule changes, not alpha). */
    public float alpha() { return alpha; }
    /** Whether the scale is rsLoRA's alpha/√rank. */
    public boolean rslora() { return rslora; }
    /** The adapter variant: {@link AdapterVariant#LORA} or {@link DoRA}. */
    public AdapterVariant variant() { return variant; }
    /** Whether this is a DoRA layer (PEFT's {@code use_dora}). */
    public boolean dora() { return variant instanceof DoRA; }
    public float dropout() { return dropout; }
    public boolean useBias() { return useBias; }
    public boolean quantizeBase() { return quantizeBase; }
    public Map<String, Object> quantizationKwargs() { return quantizationKwargs; }
    /** The scale s of the LoRA branch: alpha / rank, or rsLoRA's alpha / √rank. */
    public float scale() { return rslora ? (float) (alpha / Math.sqrt(rank)) : alpha / rank; }

    /**
     * The weight this layer computes with, [out, in] fp32: W + s·B·A (NF4 dequantized), rewritten by the variant
     * (DoRA: each row rescaled to its magnitude). Bias stays separate.
     */
    public float[] mergedWeight() {
        float[] w = loraWeight();
        variant.merge(this, w);
        return w;
    }

    /** W + s·B·A [out, in], fp32, a new array (what DoRA normalises). */
    float[] loraWeight() {
        float[] w = weight.dequantize();
        addScaledProduct(w, loraB, loraA, outDim, rank, inDim, scale());
        return w;
    }

    /**
     * w += s · B·A for w [out, in], B [out, r], A [r, in]: the update a merge adds. The product is accumulated in
     * double, then scaled and added in fp32 (as torch adds an fp32 (alpha/r)·B@A).
     */
    public static void addScaledProduct(float[] w, float[] b, float[] a, int out, int r, int in, float s) {
        double[] row = new double[in];
        for (int o = 0; o < out; o++) {
            java.util.Arrays.fill(row, 0);
            for (int k = 0; k < r; k++) {
                double bk = b[o * r + k];
                if (bk == 0) continue;
                for (int i = 0; i < in; i++) row[i] += bk * a[k * in + i];
            }
            for (int i = 0; i < in; i++) w[o * in + i] += s * (float) row[i];
        }
    }
    public BaseWeight base() { return weight; }
    /** [out] or null; frozen: replace it with {@code load("bias", ...)}. */
    public float[] bias() { return bias; }
    /** The live adapter arrays (what the optimizer updates in place). */
    public float[] loraA() { return loraA; }
    public float[] loraB() { return loraB; }

    @Override
    public String toString() {
        return (dora() ? "DoRALinear" : "LoRALinear") + "(in_dim=" + inDim + ", out_dim=" + outDim + ", rank=" + rank
                + ", alpha=" + alpha + ", dropout=" + dropout + ", use_bias=" + useBias + ", quantize_base=" + quantizeBase
                + (rslora ? ", use_rslora=True" : "") + ")";
    }

    // ---------------------------------------------------------------- builder

    public static Builder builder(int inDim, int outDim) {
        return new Builder(inDim, outDim);
    }

    /** {@code LoRALinear.builder(4096, 4096).rank(16).alpha(32).dropout(0.05f).seed(7).build()}. */
    public static final class Builder {
        private final int inDim;
        private final int outDim;
        private int rank = 8;
        private float alpha = 16f;
        private float dropout;
        private boolean useBias;
        private boolean quantizeBase;
        private final Map<String, Object> quantizationKwargs = new LinkedHashMap<>();
        private long seed;
        private Device device;
        private BaseWeight base;
        private boolean rslora;
        private boolean dora;

        private Builder(int inDim, int outDim) {
            this.inDim = inDim;
            this.outDim = outDim;
        }

        public Builder rank(int rank) { this.rank = rank; return this; }
        public Builder alpha(float alpha) { this.alpha = alpha; return this; }
        public Builder dropout(float dropout) { this.dropout = dropout; return this; }
        public Builder bias(boolean useBias) { this.useBias = useBias; return this; }
        public Builder quantizeBase(boolean quantizeBase) { this.quantizeBase = quantizeBase; return this; }
        public Builder quantizationKwarg(String key, Object value) { quantizationKwargs.put(key, value); return this; }
        /** Seeds initialisation and dropout masks: the same seed gives the same layer and masks. */
        public Builder seed(long seed) { this.seed = seed; return this; }
        /** The device the layer runs on (default: the scalar reference, until {@link LoRALinear#to}). */
        public Builder device(Device device) { this.device = device; return this; }
        /** rsLoRA's scale alpha/√rank (PEFT's {@code use_rslora}); alpha stays as given. */
        public Builder rslora(boolean rslora) { this.rslora = rslora; return this; }
        /** DoRA's magnitude vector ({@link DoRA}; PEFT's {@code use_dora}, torchtune's {@code DoRALinear}). */
        public Builder dora(boolean dora) { this.dora = dora; return this; }

        /**
         * Uses this frozen base [out, in] instead of drawing one (loading a checkpoint: no random weight is drawn
         * or quantized only to be replaced). An {@link Nf4Tensor} makes the layer a QLoRA layer with its block
         * sizes; a dense base is quantized when {@link #quantizeBase} is set.
         */
        public Builder base(BaseWeight base) {
            this.base = base;
            if (base instanceof Nf4Tensor q) {
                quantizeBase = true;
                quantizationKwargs.put("block_size", q.blockSize());
                quantizationKwargs.put("scaler_block_size", q.scalerBlockSize());
            }
            return this;
        }

        public LoRALinear build() {
            LoRALinear l = new LoRALinear(inDim, outDim, rank, alpha, dropout, useBias, quantizeBase,
                    quantizationKwargs, seed, base, rslora, dora);
            return device == null ? l : l.to(device);
        }
    }
}
