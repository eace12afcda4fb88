package dev.tornadolora.fuzz;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tornadolora.io.AdapterCheckpoints;
import dev.tornadolora.io.ModelCheckpoint;
import dev.tornadolora.io.SafeTensors;
import dev.tornadolora.io.SafeTensorsWriter;
import dev.tornadolora.io.StrictJson;
import dev.tornadolora.nn.Activation;
import dev.tornadolora.nn.LoRALinear;
import dev.tornadolora.nn.Module;
import dev.tornadolora.nn.Parameter;
import dev.tornadolora.nn.Sequential;
import dev.tornadolora.tensor.Tensor;
import dev.tornadolora.train.AdamW;
import dev.tornadolora.train.CosineWithWarmup;
import dev.tornadolora.train.Losses;
import dev.tornadolora.train.LrScheduler;
import dev.tornadolora.train.RunIdentity;
import dev.tornadolora.train.Sgd;
import dev.tornadolora.train.RegressionTask;
import dev.tornadolora.train.Trainer;
import dev.tornadolora.train.TrainingState;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.lifecycle.AfterContainer;
import net.jqwik.api.statistics.Statistics;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Fuzzes the three loaders a training run's folder goes through besides the safetensors reader: the model
 * checkpoint ({@link ModelCheckpoint#load}: the architecture JSON in the metadata, the layers it builds), the
 * training state ({@link TrainingState#resume} and {@link RunIdentity#fromState}) and the PEFT adapter folder
 * ({@code adapter_config.json} and {@code adapter_model.safetensors}). Inputs are mutations of files these very
 * classes wrote. Each input must be read or refused with an IllegalArgumentException carrying a message, within
 * the time and the allocation bound of {@link FuzzHarness} (a few hundred bytes per byte of input).
 */
class CheckpointFuzzTest {
    private static final List<byte[]> MODEL_SEEDS = new ArrayList<>();
    private static final List<byte[]> STATE_SEEDS = new ArrayList<>();
    private static final String PEFT_CONFIG;
    private static final byte[] PEFT_WEIGHTS;

    static {
        try {
            Path dir = Files.createTempDirectory("checkpoint-fuzz");
            for (boolean nf4 : new boolean[] {false, true}) {
                for (boolean adapters : new boolean[] {false, true}) {
                    Path f = dir.resolve("m" + nf4 + adapters + ".safetensors");
                    ModelCheckpoint.save(f, model(nf4), adapters);
                    MODEL_SEEDS.add(Files.readAllBytes(f));
                }
            }
            for (boolean sgd : new boolean[] {false, true}) {
                Sequential m = model(false);
                var opt = sgd ? new Sgd(m.parameters(), 0.01, 0.9, 0, 0, false) : new AdamW(m.parameters(), 0.01);
                Tensor x = Tensor.of(new float[2 * 8], 2, 8), target = Tensor.of(new float[2 * 4], 2, 4);
                Trainer t = new Trainer(new RegressionTask(m, Losses::mse, step -> new RegressionTask.Batch(x, target), 2),
                        opt, new CosineWithWarmup(1, 4), 1.0, 4);
                t.step();
                Path f = dir.resolve("state" + sgd + ".safetensors");
                ObjectNode options = StrictJson.writer().createObjectNode().put("seed", 0).put("optimizer", sgd ? "sgd" : "adamw");
                t.save(f, RunIdentity.of(options).stateMetadata());
                STATE_SEEDS.add(Files.readAllBytes(f));
            }
            Path peft = dir.resolve("peft");
            AdapterCheckpoints.savePeft(peft, model(false).loraModules());
            PEFT_CONFIG = Files.readString(peft.resolve(AdapterCheckpoints.PEFT_CONFIG));
            PEFT_WEIGHTS = Files.readAllBytes(peft.resolve(AdapterCheckpoints.PEFT_WEIGHTS));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** fc1 [8 -> 8] and fc2 [8 -> 4] with dropout, so that every architecture field and a dropout position exist. */
    private static Sequential model(boolean nf4) {
        Map<String, Module> m = new LinkedHashMap<>();
        m.put("fc1", LoRALinear.builder(8, 8).rank(2).alpha(4).dropout(0.1f).bias(true).quantizeBase(nf4)
                .quantizationKwarg("block_size", nf4 ? 8 : 0).quantizationKwarg("scaler_block_size", nf4 ? 4 : 0)
                .seed(1).build());
        m.put("act1", Activation.named("silu"));
        m.put("fc2", LoRALinear.builder(8, 4).rank(2).alpha(4).dropout(0.1f).quantizeBase(nf4)
                .quantizationKwarg("block_size", nf4 ? 8 : 0).quantizationKwarg("scaler_block_size", nf4 ? 4 : 0)
                .seed(2).build());
        Sequential s = new Sequential(m);
        SplittableRandom rng = new SplittableRandom(3);
        for (Parameter p : s.parameters()) {
            for (int i = 0; i < p.numel(); i++) p.data()[i] = (float) rng.nextGaussian();
        }
        return s;
    }

    // ------------------------------------------------------------ model checkpoint

    @Property
    void mutatedModelCheckpointsLoadOrAreRefused(@ForAll("mutatedModels") byte[] file) {
        Statistics.collect(FuzzHarness.run("model-checkpoint", file, CheckpointFuzzTest::loadModel));
    }

    @Property
    void generatedArchitecturesLoadOrAreRefused(@ForAll("architectures") byte[] file) {
        Statistics.collect(FuzzHarness.run("model-architecture", file, CheckpointFuzzTest::loadModel));
    }

    private static void loadModel(byte[] bytes) {
        Sequential m = ModelCheckpoint.load(SafeTensors.parse("fuzz", ByteBuffer.wrap(bytes)));
        int in = ((LoRALinear) m.children().values().stream().filter(c -> c instanceof LoRALinear).findFirst()
                .orElseThrow()).inDim();
        m.eval().forward(Tensor.of(new float[in], 1, in));
    }

    @Provide
    Arbitrary<byte[]> mutatedModels() {
        return Mutations.mutatedFiles(MODEL_SEEDS);
    }

    /**
     * The first seed's tensors under an architecture whose fields take edge values: numbers from the mutation
     * vocabulary (0, -1, 2^31, 8.7, 1e400, ...), strings, nulls, booleans, fields dropped.
     */
    @Provide
    Arbitrary<byte[]> architectures() {
        Arbitrary<String> value = Arbitraries.frequencyOf(
                Tuple.of(3, Arbitraries.of(Mutations.NUMBERS)),
                Tuple.of(2, Arbitraries.of("8", "4", "2", "0.1", "4.0", "8.7", "4294967304", "1e400", "-0", "1e-45")),
                Tuple.of(1, Arbitraries.of("\"abc\"", "null", "true", "false", "[]", "{}", "\"8\"")));
        Arbitrary<String> field = Arbitraries.of("in_dim", "out_dim", "rank", "alpha", "dropout", "use_bias",
                "quantize_base", "name", "type");
        Arbitrary<Tuple.Tuple3<Integer, String, String>> edit = Combinators.combine(Arbitraries.integers().between(0, 2),
                field, value.injectNull(0.1)).as(Tuple::of);
        return Combinators.combine(Arbitraries.integers().between(0, MODEL_SEEDS.size() - 1), edit.list().ofMinSize(1).ofMaxSize(4))
                .as((seed, edits) -> {
                    SafeTensors st = SafeTensors.parse("seed", ByteBuffer.wrap(MODEL_SEEDS.get(seed)));
                    var arch = (com.fasterxml.jackson.databind.node.ArrayNode) StrictJson.parse("a",
                            st.requireMetadata(ModelCheckpoint.ARCHITECTURE));
                    List<String> raw = new ArrayList<>();  // values go in as text: NaN and 1e400 are not nodes
                    for (var e : edits) {
                        ObjectNode entry = (ObjectNode) arch.get(e.get1());
                        if (e.get3() == null) {
                            entry.remove(e.get2());
                        } else {
                            entry.put(e.get2(), "@@" + raw.size() + "@@");
                            raw.add(e.get3());
                        }
                    }
                    String archText = arch.toString();
                    for (int i = 0; i < raw.size(); i++) archText = archText.replace("\"@@" + i + "@@\"", raw.get(i));
                    SafeTensorsWriter w = new SafeTensorsWriter();
                    for (String n : st.names()) w.copy(st, n);
                    Map<String, String> meta = new LinkedHashMap<>(st.metadata());
                    meta.put(ModelCheckpoint.ARCHITECTURE, archText);
                    return w.metadata(meta).toBytes();
                });
    }

    // ------------------------------------------------------------ training state

    @Property
    void mutatedTrainingStatesResumeOrAreRefused(@ForAll("mutatedStates") byte[] file) {
        Statistics.collect(FuzzHarness.run("training-state", file, bytes -> {
            SafeTensors st = SafeTensors.parse("fuzz", ByteBuffer.wrap(bytes));
            RunIdentity.fromState(st);
            Sequential m = model(false);
            boolean sgd = "Sgd".equals(st.metadata().get(TrainingState.OPTIMIZER));
            var opt = sgd ? new Sgd(m.parameters(), 0.01, 0.9, 0, 0, false) : new AdamW(m.parameters(), 0.01);
            TrainingState.resume(st, opt, m.loraModules());
            m.train(true).forward(Tensor.of(new float[8], 1, 8));
        }));
    }

    @Provide
    Arbitrary<byte[]> mutatedStates() {
        return Mutations.mutatedFiles(STATE_SEEDS);
    }

    // ------------------------------------------------------------ PEFT adapter folder

    /** A PEFT input: the config text and the weights file, as one byte array for the harness (config length first). */
    record Peft(String config, byte[] weights) {
        byte[] bytes() {
            byte[] c = config.getBytes(StandardCharsets.UTF_8);
            return ByteBuffer.allocate(4 + c.length + weights.length).putInt(c.length).put(c).put(weights).array();
        }
    }

    @Property
    void mutatedPeftFoldersLoadOrAreRefused(@ForAll("pefts") Peft p) {
        Statistics.collect(FuzzHarness.run("peft", p.bytes(), bytes -> {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            byte[] c = new byte[b.getInt()];
            b.get(c);
            var config = StrictJson.parse("adapter_config.json", new String(c, StandardCharsets.UTF_8));
            AdapterCheckpoints.loadPeft("adapter_config.json", config, SafeTensors.parse("adapter_model.safetensors",
                    b.slice()), model(false).loraModules());
        }));
    }

    @Provide
    Arbitrary<Peft> pefts() {
        Arbitrary<String> token = Arbitraries.frequencyOf(
                Tuple.of(2, Arbitraries.of(Mutations.NUMBERS)),
                Tuple.of(2, Arbitraries.of(Mutations.PUNCTUATION)),
                Tuple.of(1, Arbitraries.of(Mutations.STRINGS).map(s -> "\"" + s.replace("\"", "") + "\"")),
                Tuple.of(2, Arbitraries.of("8.7", "4294967304", "1e400", "-0", "null", "true", "[]", "{}", "\"fc3\"",
                        "\"fc1\"", "\"abc\"", "0.0", "2", "{\"fc1\": 3}", "[\"fc1\"]")));
        Arbitrary<Tuple.Tuple3<Integer, Integer, String>> edit = Combinators.combine(
                Arbitraries.integers().between(0, PEFT_CONFIG.length()), Arbitraries.integers().between(0, 12), token)
                .as(Tuple::of);
        Arbitrary<String> config = edit.list().ofMaxSize(3).map(edits -> {
            String s = PEFT_CONFIG;
            for (var e : edits) {
                int at = Math.min(e.get1(), s.length()), end = Math.min(s.length(), at + e.get2());
                s = s.substring(0, at) + e.get3() + s.substring(end);
            }
            return s;
        });
        Arbitrary<byte[]> weights = Arbitraries.frequencyOf(Tuple.of(3, Arbitraries.just(PEFT_WEIGHTS)),
                Tuple.of(1, Mutations.mutatedFiles(List.of(PEFT_WEIGHTS))));
        return Combinators.combine(config, weights).as(Peft::new);
    }

    @AfterContainer
    static void report() {
        System.out.println(FuzzHarness.summary());
        for (String t : List.of("model-checkpoint", "model-architecture", "training-state", "peft")) {
            System.out.println(FuzzHarness.rejections(t));
        }
    }
}
